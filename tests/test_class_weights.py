"""Chapter 06 (class weights, beyond the paper): the classifier, the common sampler, the labels' R-hat and
switches, and the aggregation over seeds."""
import math

import numpy as np
import pytest
import torch

from ebmflow.book.claims import render
from ebmflow.book.config import ConfigError, resolve_config
from ebmflow.data import (REJECTED, Dequantize, PrincipalComponents, RejectingClassifier, class_switches, label_rhat,
                          load_digits, measure_mix)
from ebmflow.experiments import class_weights as cw
from ebmflow.models import DiagonalGaussian, LogitGaussian
from ebmflow.targets import GaussianMixture


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def digits():
    return load_digits(0.2, gen(0))


@pytest.fixture(scope="module")
def classifier(digits):
    return RejectingClassifier.fit(digits, gen(1))


def test_classifier_labels_real_digits_and_rejects_noise(digits, classifier):
    assert classifier.n_classes == 10
    assert classifier.test_accuracy > 0.97 and classifier.test_rejected < 0.15
    noise = {"uniform": torch.rand(300, 64, generator=gen(2)) * 2 - 1,
             "rho": LogitGaussian((1, 8, 8)).sample_with_log_prob(300, gen(3))[0],
             "blank": torch.full((5, 64), -0.97), "saturated": torch.full((5, 64), 0.97),
             "non-finite": torch.full((2, 64), float("nan"))}
    for name, x in noise.items():
        assert (classifier.labels(x) == REJECTED).float().mean() >= 0.98, name
    shares, rejected = classifier.proportions(noise["uniform"][:10])
    assert rejected == 1 and torch.isnan(shares).all()  # no mix when everything is rejected
    # real images of one class are labelled with that class
    sevens = Dequantize(digits.levels, digits.image_shape)(digits.test[digits.test_labels == 7].flatten(1), gen(4))
    shares, rejected = classifier.proportions(sevens)
    assert shares[7] > 0.95 and rejected < 0.2


def test_label_rhat_separates_mixed_from_stuck_chains():
    mixed = torch.randint(0, 3, (200, 8), generator=gen(0))  # every chain draws from the same mix
    assert label_rhat(mixed, 10) < 1.05
    stuck = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]).expand(200, 8)  # each chain keeps its start's class
    assert label_rhat(stuck, 10) == math.inf
    half = mixed.clone()
    half[:, :4] = torch.where(torch.rand(200, 4, generator=gen(1)) < 0.9, 0, REJECTED)  # start-dependent mix
    assert label_rhat(half, 10) > 1.2


def test_class_switches_count_changes_of_class_through_rejected_images():
    labels = torch.tensor([[0, 1], [0, REJECTED], [1, REJECTED], [1, 1], [REJECTED, 2]])
    # chain 0: 0 -> 1 (one switch); chain 1: 1 -> (rejected) -> 1 (none) -> 2 (one switch); 8 chain-steps
    assert class_switches(labels) == pytest.approx(2 / 8)


@pytest.mark.parametrize("start", ["exact", "minority mode"])
def test_common_sampler_leaves_a_known_class_mix_invariant(start):
    """Toy case: 2-D mixture with weights 0.7 / 0.3, labels by nearest mean; from exact samples the mix stays,
    from the minority mode it is reached, and the labels' R-hat says so (in 200 to 260 steps over seeds: the
    budget of 400 leaves room)."""
    target = GaussianMixture(torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), torch.tensor([0.3, 0.3]),
                             torch.tensor([0.7, 0.3]))
    n = 256
    starts = target.sample(n, gen(5)) if start == "exact" else torch.tensor([2.0, 0.0]) + 0.3 * torch.randn(n, 2,
                                                                                                       generator=gen(5))
    result = measure_mix(target.log_prob, DiagonalGaussian(2, std=3.0), starts, lambda x: (x[:, 0] > 0).long(),
                            2, schedule="GLL", n_particles=16, block=20, max_steps=400, rhat_target=1.05,
                            generator=gen(6), step_size=0.05)
    assert result.converged and result.rhat < 1.05 and result.rejected == 0
    assert result.shares[0] == pytest.approx(0.7, abs=0.04)
    assert result.switches > 0.05  # the flow proposals move chains between the modes


def test_paired_interval_contains_the_true_difference_on_synthetic_seeds():
    rng = np.random.default_rng(0)
    true_difference, covered, n_repeats = 0.05, 0, 400
    for _ in range(n_repeats):
        seed_effect = rng.normal(0.2, 0.1, size=5)  # shared by both methods of a seed (pairing matters)
        per_seed = [{"cw_maxerr_flowmc": s + true_difference + rng.normal(0, 0.02),
                     "cw_maxerr_ula": s + rng.normal(0, 0.02)} for s in seed_effect]
        summary = cw.summarize_seeds(per_seed)
        covered += summary["cw_maxerr_diff_low"] <= true_difference <= summary["cw_maxerr_diff_high"]
    assert 0.91 <= covered / n_repeats <= 0.99
    fixed = cw.summarize_seeds([{"cw_maxerr_flowmc": a, "cw_maxerr_ula": b} for a, b in [(0.1, 0.2), (0.3, 0.2)]])
    assert fixed["n_seeds"] == 2 and fixed["cw_maxerr_flowmc_mean"] == pytest.approx(0.2)
    assert fixed["cw_maxerr_flowmc_sd"] == pytest.approx(math.sqrt(0.02)) and fixed["cw_maxerr_ula_sd"] == 0
    assert fixed["cw_maxerr_diff_mean"] == pytest.approx(0.0)
    assert fixed["cw_maxerr_diff_high"] - fixed["cw_maxerr_diff_mean"] == pytest.approx(12.706 * 0.1, rel=1e-3)


def test_profiles_resolve_and_bad_classes_are_named():
    for profile in cw.PROFILES:
        resolve_config(cw.Config, cw.PROFILES, profile, device="cpu")
    with pytest.raises(ConfigError, match="one proportion per distinct digit"):
        resolve_config(cw.Config, cw.PROFILES, "cpu", proportions=(0.5, 0.5))
    with pytest.raises(ConfigError, match="list of int values"):
        resolve_config(cw.Config, cw.PROFILES, "cpu", classes=("zero", "one", "seven"))
    with pytest.raises(ConfigError, match="summing to 1"):
        resolve_config(cw.Config, cw.PROFILES, "cpu", proportions=(0.6, 0.3, 0.3))


def test_training_set_has_the_stated_unequal_proportions_and_a_projected_classifier():
    config = resolve_config(cw.Config, cw.PROFILES, "cpu")
    study = cw.load_data(config)
    true = study.truth
    assert len(study.subset) == len(study.labels) and true.sum() == pytest.approx(1)
    assert true[[0, 1, 7]].tolist() == pytest.approx([0.6, 0.3, 0.1], abs=0.01)
    assert study.classifier.test_accuracy > 0.97 and study.classifier.test_rejected < 0.2
    assert study.centres().shape == (len(study.labels), config.n_components)
    # real training images of each class, encoded, are labelled with their class
    for c in (0, 1, 7):
        labels = study.labeller(study.images(gen(c))[study.labels == c])
        assert (labels == c).float().mean() > 0.8


def test_principal_components_whiten_round_trip_and_dequantise_like_the_images():
    digits = load_digits(0.2, gen(0))
    dequantize = Dequantize(digits.levels, digits.image_shape)
    centres = dequantize.centres(digits.train.flatten(1))
    pca = PrincipalComponents.fit(centres, 16)
    z = pca.encode(centres)
    torch.testing.assert_close(z.mean(0), torch.zeros(16), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(16), atol=1e-3, rtol=0)
    torch.testing.assert_close(pca.encode(pca.decode(z)), z, atol=1e-4, rtol=0)  # decode is a right inverse
    full = PrincipalComponents.fit(centres, 64)
    torch.testing.assert_close(full.decode(full.encode(centres)), centres, atol=1e-4, rtol=0)
    # dequantising in the component space = encoding dequantised images (same uniform draws)
    levels = digits.train[:50].flatten(1)
    torch.testing.assert_close(pca.dequantizer(digits.levels)(pca.encode(dequantize.centres(levels)), gen(9)),
                               pca.encode(dequantize(levels, gen(9))), atol=1e-4, rtol=0)


@pytest.mark.slow
def test_chapter_06_end_to_end_at_the_smoke_profile():
    config = resolve_config(cw.Config, cw.PROFILES, "smoke")
    study = cw.load_data(config)
    runs = cw.train_all(config, study)
    assert set(runs) == {"flowmc", "ula"}
    assert len(runs["ula"].history.evaluations["mix_rejected"]) == runs["ula"].history.iterations // 2 + 1
    measured = {n: cw.measure(r, config, study) for n, r in runs.items()}
    own = {n: cw.own_switches(r, config, study) for n, r in runs.items()}
    numbers = cw.numbers(runs, measured, own, study)
    assert set(cw.verdicts(numbers)) == {"cw_verdict", "cw_truth_text", "cw_converged_text_flowmc",
                                         "cw_converged_text_ula"}
    for name in ("flowmc", "ula"):
        for quantity in ("maxerr", "rejected", "rhat", "switches", "steps", "converged", "own_switches",
                         "train_maxerr", "train_drift", "p0", "train_p7"):
            assert cw.key(quantity, name) in numbers
        assert 0 <= numbers[cw.key("rejected", name)] <= 1
        assert numbers[cw.key("steps", name)] <= config.measure_max_steps
    assert math.isnan(numbers["cw_maxerr_diff"]) or numbers["cw_maxerr_diff"] == pytest.approx(
        numbers["cw_maxerr_flowmc"] - numbers["cw_maxerr_ula"])
    for item in cw.ITEMS:
        for claim in item.claims:
            render(claim.ours, numbers)
