"""Image data and chapter 05 (paper §3.5, Figures 7-8): loaders, dequantisation, profiles, the sample grid."""
import dataclasses
import pickle

import numpy as np
import pytest
import torch

from ebmflow.book.claims import render
from ebmflow.book.config import ConfigError, resolve_config
from ebmflow.checks import InputError
from ebmflow.data import CIFAR10_FILES, Dequantize, ImageDataError, imbalanced_subset, load_cifar10, load_digits
from ebmflow.experiments import images


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def write_cifar(folder, n_per_file=3):
    """Six pickles in the format of cifar-10-batches-py: b'data' (n, 3072) uint8 rows R|G|B, b'labels'."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for name in CIFAR10_FILES:
        data = rng.integers(0, 256, size=(n_per_file, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n_per_file).tolist()
        with open(folder / name, "wb") as handle:
            pickle.dump({b"batch_label": name.encode(), b"data": data, b"labels": labels,
                         b"filenames": [b"x.png"] * n_per_file}, handle)
        written[name] = (data, labels)
    return written


def test_cifar10_reader_reads_the_standard_pickles(tmp_path):
    written = write_cifar(tmp_path / "cifar-10-batches-py")
    data = load_cifar10(tmp_path)
    assert data.train.shape == (15, 3, 32, 32) and data.test.shape == (3, 3, 32, 32)
    assert data.train.dtype == torch.uint8 and data.levels == 256 and data.flips
    first, labels = written["data_batch_1"]
    # a row is 1024 red, then 1024 green, then 1024 blue values, each row-major over 32×32
    assert data.train[0, 1, 2, 5] == first[0, 1024 + 2 * 32 + 5]
    assert data.train_labels[:3].tolist() == labels
    assert data.test_labels.tolist() == written["test_batch"][1]
    assert torch.equal(data.train[12:].flatten(1), torch.from_numpy(written["data_batch_5"][0]))


def test_cifar10_reader_names_the_missing_files(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(ImageDataError, match=r"data_batch_1, .*test_batch.*missing: test_batch.*Nothing is downloaded"):
        load_cifar10(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing: data_batch_1"):
        load_cifar10(tmp_path / "nowhere")


def test_paper_profile_reads_cifar10_from_data_root_and_names_what_is_missing(tmp_path):
    config = resolve_config(images.Config, images.PROFILES, "paper", data_root=str(tmp_path), device="cpu")
    with pytest.raises(InputError, match=r"CIFAR-10 not found: expected the files data_batch_1, .*test_batch"):
        images.load_data(config)


def test_paper_profile_keeps_the_papers_cifar10_settings():
    paper = resolve_config(images.Config, images.PROFILES, "paper")
    expected = dict(dataset="cifar10", epochs=70, batch_size=128, n_persistent=1024, lr=1e-4, lr_decay=0.99,
                    lr_decay_every=50, energy_l2=1e-4, n_particles=128, flowmc_schedule=("G" + "L" * 32) * 3)
    assert {k: getattr(paper, k) for k in expected} == expected


def test_dequantisation_stays_in_the_pixel_box_and_averages_back_to_the_levels():
    data = load_digits(0.2, gen(0))
    assert len(data.train) + len(data.test) == 1797 and data.image_shape == (1, 8, 8) and not data.flips
    dequantize = Dequantize(data.levels, data.image_shape)
    levels = data.train[:64].flatten(1)
    draws = torch.stack([dequantize(levels, gen(seed)) for seed in range(400)])
    assert draws.shape == (400, 64, 64) and draws.min() >= -1 and draws.max() <= 1
    # the noise stays inside each level's cell (flooring recovers the level) and averages to its centre
    assert torch.equal(((draws + 1) / 2 * data.levels).floor().long(), levels.long().expand(400, -1, -1))
    torch.testing.assert_close(draws.mean(0), dequantize.centres(levels), atol=0.01, rtol=0)


def test_flips_mirror_some_images_left_right():
    levels = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4).repeat(64, 1, 1, 1)
    x = Dequantize(16, (1, 4, 4), flips=True)(levels, gen(0))
    recovered = ((x + 1) / 2 * 16).floor().long()
    flipped = (recovered == levels.long().flip(-1)).flatten(1).all(1)
    assert 10 < flipped.sum() < 54 and (flipped | (recovered == levels.long()).flatten(1).all(1)).all()


def test_imbalanced_subset_has_the_requested_proportions_and_names_a_missing_class():
    data = load_digits(0.2, gen(0))
    x, y = imbalanced_subset(data.train, data.train_labels, (0, 1, 7), (0.6, 0.3, 0.1), gen(0))
    counts = torch.bincount(y, minlength=3).float()
    assert np.allclose((counts / counts.sum()).numpy(), [0.6, 0.3, 0.1], atol=0.01)
    available = torch.tensor([int((data.train_labels == c).sum()) for c in (0, 1, 7)])
    assert (counts <= available).all() and (counts == available).any()  # the largest such subset
    with pytest.raises(InputError, match=r"class\(es\) \[2\] have no image"):
        imbalanced_subset(torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 0, 1]), (0, 2), (0.5, 0.5), gen(0))


def test_profiles_resolve_and_bad_input_is_named():
    for profile in images.PROFILES:
        resolve_config(images.Config, images.PROFILES, profile, device="cpu")
    with pytest.raises(ConfigError, match="dataset must be 'digits' or 'cifar10'"):
        resolve_config(images.Config, images.PROFILES, "cpu", dataset="mnist")
    with pytest.raises(ConfigError, match="flowMC schedule"):
        resolve_config(images.Config, images.PROFILES, "cpu", flowmc_schedule="LLL")


def test_sample_grid_has_white_gaps_between_samples():
    samples = -torch.ones(8, 64)  # black images
    grid = images.image_grid(samples, (1, 8, 8), rows=2, pad=1)
    assert grid.shape == (2 * 9 + 1, 4 * 9 + 1, 1)
    assert (grid[::9] == 1).all() and (grid[:, ::9] == 1).all()  # white lines around every image
    assert (grid[1:9, 1:9] == 0).all() and (grid[10:18, 28:36] == 0).all()


def test_claims_render_from_the_numbers_the_chapter_glues():
    glued = {images.key(7, f"energy_{w}_{s}"): 1.0 for w in ("neg", "train", "test") for s in ("mean", "std")}
    glued.update({images.key(8, "global_acceptance"): 0.2, images.key(8, "local_acceptance"): 0.5,
                  images.key(8, "diverged_at"): 0})
    for item in images.ITEMS:
        for claim in item.claims:
            render(claim.ours, glued)
            assert claim.check(glued) in (True, False)


@pytest.mark.slow
def test_chapter_05_trains_samples_and_numbers_at_the_smoke_profile():
    config = resolve_config(images.Config, images.PROFILES, "smoke", stop_after=4)
    data = images.load_data(config)
    run = images.train_method(config, images.methods(config)["flowmc"], data.train, data, "test")
    assert run.history.iterations == 4 and run.method.flow.sizes["n_couplings"] == config.flow_couplings
    samples = images.figure8_samples(run, config)
    assert samples.shape == (64, 64) and samples.abs().max() < 1 / 0.9  # the tilt's support (logit layer, alpha 0.05)
    values = images.figure7_energies(run, data, config)
    assert [len(v) for v in values.values()] == [config.n_persistent, len(data.train), len(data.test)]
    numbers = images.numbers(run, values)
    assert all(np.isfinite(v) for v in numbers.values()) and 0 <= numbers["fig8_global_acceptance"] <= 1
    again = images.train_method(dataclasses.replace(config), images.methods(config)["flowmc"], data.train, data, "t")
    assert torch.equal(again.bank_positions(), run.bank_positions())  # same seed, same run
