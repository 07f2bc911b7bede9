import pytest

from ebmflow.config import ConfigError, resolve_config
from ebmflow.experiments.motivating import PROFILES, MotivatingConfig


def test_profiles_resolve():
    for profile in PROFILES:
        assert resolve_config(MotivatingConfig, PROFILES, profile).epochs > 0


@pytest.mark.parametrize("profile, overrides, message", [
    ("gpu", {}, "unknown profile 'gpu'; accepted profiles: smoke, cpu, paper"),
    ("cpu", {"epoch": 3}, "unknown parameter(s) 'epoch'; accepted parameters: seed"),
    ("cpu", {"epochs": "3"}, "parameter 'epochs' must be of type int"),
    ("cpu", {"epochs": 2.5}, "parameter 'epochs' must be of type int"),
    ("cpu", {"batch_size": 0}, "parameter 'batch_size' must be positive"),
    ("cpu", {"ula_steps": -1}, "parameter 'ula_steps' must be positive"),
    ("cpu", {"seed": -1}, "parameter 'seed' must be non-negative"),
    ("cpu", {"flowmc_schedule": "LLX"}, "flowMC schedule must be a non-empty string of 'L'"),
])
def test_bad_input_is_rejected_with_a_message(profile, overrides, message):
    with pytest.raises(ConfigError) as error:
        resolve_config(MotivatingConfig, PROFILES, profile, **overrides)
    assert message in str(error.value)


def test_none_means_profile_default_and_ints_widen_to_float():
    config = resolve_config(MotivatingConfig, PROFILES, "smoke", epochs=None, lr=1)
    assert config.epochs == PROFILES["smoke"]["epochs"] and config.lr == 1.0


def test_a_config_may_declare_knobs_that_can_be_zero():
    from ebmflow.experiments import images

    config = resolve_config(images.ImagesConfig, images.PROFILES, "smoke", energy_l2=0.0)
    assert config.energy_l2 == 0.0
    with pytest.raises(ConfigError, match="parameter 'energy_l2' must be non-negative"):
        resolve_config(images.ImagesConfig, images.PROFILES, "smoke", energy_l2=-1.0)
