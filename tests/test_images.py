"""Image data, image models and the class-weight estimator (paper §3.5; issue 5)."""
import pickle

import numpy as np
import pytest
import torch

from ebmflow.data import CIFAR10_FILES, Dequantize, ImageDataError, imbalanced_subset, load_cifar10, load_digits
from ebmflow.experiments import images
from ebmflow.image_energy import ConvEnergy
from ebmflow.image_flows import ImageRealNVP, LogitGaussian, LogitPreprocessing
from ebmflow.samplers import FlowMCKernel, init_state, isir_step, ula_step
from ebmflow.training import FlowMCNegatives, fit_ebm


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
    with pytest.raises(ImageDataError, match="missing: data_batch_1"):
        load_cifar10(tmp_path / "nowhere")


def test_digits_split_and_dequantisation():
    data = load_digits(0.2, torch.Generator().manual_seed(0))
    assert len(data.train) + len(data.test) == 1797 and data.image_shape == (1, 8, 8) and not data.flips
    dequantize = Dequantize(data.levels, data.image_shape)
    x = dequantize(data.train.flatten(1), torch.Generator().manual_seed(1))
    assert x.shape == (len(data.train), 64) and x.min() >= -1 and x.max() < 1
    # the noise stays inside each level's cell: flooring recovers the levels exactly
    assert torch.equal(((x + 1) / 2 * data.levels).floor().long(), data.train.flatten(1).long())


def test_flips_mirror_some_images_left_right():
    levels = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4).repeat(64, 1, 1, 1)
    x = Dequantize(16, (1, 4, 4), flips=True)(levels, torch.Generator().manual_seed(0))
    recovered = ((x + 1) / 2 * 16).floor().long()
    flipped = (recovered == levels.long().flip(-1)).flatten(1).all(1)
    assert 10 < flipped.sum() < 54 and (flipped | (recovered == levels.long()).flatten(1).all(1)).all()


def test_imbalanced_subset_has_the_requested_proportions():
    data = load_digits(0.2, torch.Generator().manual_seed(0))
    x, y = imbalanced_subset(data.train, data.train_labels, (0, 1, 7), (0.6, 0.3, 0.1), torch.Generator().manual_seed(0))
    counts = torch.bincount(y, minlength=3).float()
    assert np.allclose((counts / counts.sum()).numpy(), [0.6, 0.3, 0.1], atol=0.01)
    available = torch.tensor([int((data.train_labels == c).sum()) for c in (0, 1, 7)])
    assert (counts <= available).all() and (counts == available).any()  # the largest such subset


def test_logit_preprocessing_round_trips_and_log_dets_cancel():
    x = torch.rand(8, 3, 4, 4) * 2 - 1
    pre = LogitPreprocessing()
    y, logdet = pre(x)
    back, logdet_inverse = pre.inverse(y)
    assert torch.allclose(back, x, atol=1e-5) and torch.allclose(logdet + logdet_inverse, torch.zeros(8), atol=1e-4)
    eps = 1e-3  # the log-det is the log of the derivative, checked by finite differences on one pixel
    shifted = x.clone()
    shifted[:, 0, 0, 0] += eps
    derivative = (pre(shifted)[0] - y)[:, 0, 0, 0] / eps
    one_pixel = LogitPreprocessing()(x[:, :1, :1, :1])[1]
    assert torch.allclose(derivative.log(), one_pixel, atol=1e-2)


def test_image_flow_starts_at_the_tilt_and_its_density_matches_its_samples():
    tilt = LogitGaussian((1, 8, 8))
    flow = ImageRealNVP(tilt, n_couplings=4, hidden=8, n_blocks=1)
    generator = torch.Generator().manual_seed(0)
    x, _ = tilt.sample_with_log_prob(16, generator)
    assert torch.allclose(flow.log_prob(x), tilt.log_prob(x), atol=1e-4)  # T = Id at initialisation
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))
        samples, log_q = flow.sample_with_log_prob(16, generator)
        assert samples.shape == (16, 64)
        assert torch.allclose(flow.log_prob(samples), log_q, atol=1e-3)  # data -> flow space -> data


def test_conv_energy_is_zero_at_init_takes_flat_or_4d_images_and_has_the_paper_size():
    energy = ConvEnergy((1, 8, 8), width=8)
    x = torch.randn(5, 1, 8, 8)
    assert torch.equal(energy(x), torch.zeros(5)) and energy(x.flatten(1)).shape == (5,)
    paper = sum(p.numel() for p in ConvEnergy((3, 32, 32), width=88).parameters())
    assert 4.0e6 < paper < 5.0e6  # "≈4.5 M parameters" (paper §3.5)
    with pytest.raises(ValueError, match="power-of-two side"):
        ConvEnergy((1, 6, 6))


def test_class_proportion_estimator_is_exact_on_labelled_data():
    from sklearn.neighbors import KNeighborsClassifier

    data = load_digits(0.2, torch.Generator().manual_seed(0))
    x, y = imbalanced_subset(data.train, data.train_labels, (0, 1, 7), (0.6, 0.3, 0.1), torch.Generator().manual_seed(0))
    x = x.flatten(1).float()
    classifier = KNeighborsClassifier(n_neighbors=1).fit(x.numpy(), y.numpy())
    estimated = images.class_proportions(classifier.predict, x, 3)
    assert np.array_equal(estimated, np.bincount(y.numpy(), minlength=3) / len(y))


def test_samplers_accept_image_shaped_chains():
    log_density = lambda x: -0.5 * x.flatten(1).pow(2).sum(-1)  # noqa: E731
    generator = torch.Generator().manual_seed(0)
    state = init_state(torch.rand(6, 1, 4, 4) * 2 - 1, log_density)
    state, info = ula_step(state, log_density, 0.5, generator, bounds=(-1.0, 1.0))
    assert state.position.shape == (6, 1, 4, 4) and state.position.abs().max() <= 1
    assert info.mean_displacement > 0

    class ImageGaussian:
        def log_prob(self, x):
            return log_density(x)

        def sample_with_log_prob(self, n, generator):
            z = torch.randn(n, 1, 4, 4, generator=generator)
            return z, log_density(z)

    state, info = isir_step(state, log_density, ImageGaussian(), 8, generator)
    assert state.position.shape == (6, 1, 4, 4) and 0 <= info.acceptance_rate <= 1


def test_fit_ebm_decays_both_learning_rates_and_applies_the_batch_transform():
    tilt = LogitGaussian((1, 4, 4))
    flow = ImageRealNVP(tilt, n_couplings=2, hidden=4, n_blocks=1)
    sampler = FlowMCNegatives(flow, FlowMCKernel("GL", 1e-3, 4), lr=1e-2)
    seen = []

    def transform(batch, generator):
        seen.append(batch)
        return batch * 0.5

    levels = torch.zeros(32, 16)
    history = fit_ebm(levels, ConvEnergy((1, 4, 4), 4), tilt, sampler, epochs=2, batch_size=8, n_persistent=16,
                      lr=1e-2, generator=torch.Generator().manual_seed(0), energy_l2=1.0, lr_decay=(0.5, 2),
                      batch_transform=transform)
    assert len(history.steps["loss"]) == 8 and len(seen) == 8
    assert sampler.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 * 0.5**4)


def test_image_profiles_resolve_and_bad_input_is_named():
    from ebmflow.config import ConfigError, resolve_config

    for profile in images.PROFILES:
        config = resolve_config(images.ImagesConfig, images.PROFILES, profile)
        assert images.parse_classes(config)[0] == (0, 1, 7)
    with pytest.raises(ConfigError, match="dataset must be 'digits' or 'cifar10'"):
        resolve_config(images.ImagesConfig, images.PROFILES, "cpu", dataset="mnist")
    with pytest.raises(ConfigError, match="one proportion per class, summing to 1"):
        resolve_config(images.ImagesConfig, images.PROFILES, "cpu", cw_proportions="0.5,0.5")
    with pytest.raises(ConfigError, match="comma-separated numbers"):
        resolve_config(images.ImagesConfig, images.PROFILES, "cpu", cw_classes="zero,one,seven")


def test_imbalanced_subset_names_a_missing_class():
    import torch

    from ebmflow.data.images import imbalanced_subset

    images, labels = torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"class\(es\) \[2\] have no image"):
        imbalanced_subset(images, labels, (0, 2), (0.5, 0.5), torch.Generator().manual_seed(0))
