"""Chapter configurations: profiles resolve, bad values are refused with a message naming the parameter."""
import pytest

from ebmflow.book.config import ConfigError, resolve_config
from ebmflow.experiments.motivating import PROFILES, Config


def test_profiles_resolve():
    for profile in PROFILES:
        assert resolve_config(Config, PROFILES, profile).epochs > 0


@pytest.mark.parametrize("profile, overrides, message", [
    ("gpu", {}, "unknown profile 'gpu'; accepted profiles: smoke, cpu, paper"),
    ("cpu", {"epoch": 3}, "unknown parameter(s) 'epoch'; accepted parameters: seed"),
    ("cpu", {"epochs": "3"}, "parameter 'epochs' must be of type int"),
    ("cpu", {"epochs": 2.5}, "parameter 'epochs' must be of type int"),
    ("cpu", {"batch_size": 0}, "parameter 'batch_size' must be positive"),
    ("cpu", {"ula_steps": -1}, "parameter 'ula_steps' must be positive"),
    ("cpu", {"seed": -1}, "parameter 'seed' must be non-negative"),
    ("cpu", {"stop_after": -1}, "parameter 'stop_after' must be non-negative"),
    ("cpu", {"device": "tpu"}, "device"),
])
def test_bad_input_is_rejected_with_a_message(profile, overrides, message):
    with pytest.raises(ConfigError) as error:
        resolve_config(Config, PROFILES, profile, **overrides)
    assert message in str(error.value)


def test_none_means_profile_default_and_ints_widen_to_float():
    config = resolve_config(Config, PROFILES, "smoke", epochs=None, lr=1)
    assert config.epochs == PROFILES["smoke"]["epochs"] and config.lr == 1.0


def test_seed_device_and_stop_after_are_chapter_parameters():
    config = resolve_config(Config, PROFILES, "smoke", seed=7, device="cpu", stop_after=0)
    assert (config.seed, config.device, config.stop_after) == (7, "cpu", 0)
