"""Claims of the images chapter, checked on the numbers the committed (cpu-profile) chapter glued."""
import pytest

from ebmflow.chapters import CHAPTERS
from ebmflow.glued import read_glued


@pytest.fixture(scope="module")
def glued():
    return read_glued(CHAPTERS["05_images"].notebook)


def test_flow_proposals_keep_being_accepted(glued):
    # Paper §3.5: global (flow) proposals accepted 5–10 % of the time on CIFAR-10, so the chains mix.
    assert 0.05 <= glued["fig8_global_acceptance"] < 1


def test_the_classifier_measuring_class_weights_is_accurate(glued):
    assert glued["images_classifier_accuracy"] > 0.9


@pytest.mark.xfail(strict=True, reason=(
    "cpu profile, digits 0/1/7 in proportions 0.6/0.3/0.1, 240 epochs, 2 seeds: largest class-proportion error "
    "flowMC-EBM 0.228 (seeds 0.220, 0.236) vs ULA-EBM 0.102 (seeds 0.111, 0.093); flowMC-EBM's samples "
    "over-weight the majority class (0.82, 0.84 vs 0.60)"))
def test_flowmc_ebm_estimates_class_weights_better_than_ula_ebm(glued):
    # Beyond the paper: its motivation (relative importance of classes) measured on real images.
    assert glued["images_classweights_flowmc_err"] < glued["images_classweights_ula_err"]
