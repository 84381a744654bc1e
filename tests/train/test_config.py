"""The trainer's typed schema: defaults once, coercion, errors that name the field."""

import pytest

from configs.base import base_config
from eurollm_jax.schema import ConfigError
from eurollm_jax.train.config import DataSection, TrainJobConfig, TrainSection, default_sections


def test_config_files_take_their_defaults_from_the_schema():
    config = base_config("tiny")
    settings = TrainJobConfig.from_config(config)
    assert settings.train == TrainSection()
    assert settings.data == DataSection()
    for name, values in default_sections().items():
        assert config[name].to_dict() == values


def test_command_line_strings_are_coerced():
    config = base_config("tiny")
    config.train.steps = "12"  # what a hand-edited override may carry
    config.checkpoint.async_save = "false"
    config.train.freeze = "lm_head"
    settings = TrainJobConfig.from_config(config)
    assert settings.train.steps == 12 and settings.checkpoint.async_save is False
    assert settings.train.freeze == ("lm_head",)


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("train", "batch_size", "eight", "train.batch_size: expected an integer"),
        ("train", "steps", 0, "train.steps: must be a positive integer"),
        ("train", "loss_chunk", 7, "train.loss_chunk"),
        ("data", "source", "synthetc", 'data.source: unknown source \'synthetc\'; did you mean "synthetic"'),
        ("optimizer", "name", "adam", "optimizer.name: unknown optimizer"),
        ("checkpoint", "keep", 0, "checkpoint.keep: must be positive"),
    ],
)
def test_bad_values_name_the_field(section, key, value, message):
    config = base_config("tiny")
    config[section][key] = value
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        TrainJobConfig.from_config(config)


def test_unknown_keys_name_the_nearest_valid_key():
    config = base_config("tiny")
    config.train.stepz = 5
    with pytest.raises(ConfigError, match='train.stepz: unknown key; did you mean "steps"'):
        TrainJobConfig.from_config(config)
    config = base_config("tiny")
    config.trian = {}
    with pytest.raises(ConfigError, match='trian: unknown section; did you mean "train"'):
        TrainJobConfig.from_config(config)


def test_device_checks_name_the_batch_and_mesh():
    config = base_config("tiny")
    config.train.batch_size = 6
    config.mesh.data, config.mesh.fsdp, config.mesh.tensor = 2, 2, 2
    settings = TrainJobConfig.from_config(config)
    with pytest.raises(ConfigError, match="multiple of 4 or change the mesh"):
        settings.check_devices(8)
    with pytest.raises(ConfigError, match="mesh:"):
        settings.check_devices(3)


def test_sequence_defaults_are_tuples_so_the_command_line_can_override_them():
    # ml_collections' config_flags overrides tuples ('--config.data.languages=(en, de)') but
    # refuses lists, so every sequence default must reach the ConfigDict as a tuple.
    config = base_config("tiny")
    for name in default_sections():
        for key, value in config[name].items():
            assert not isinstance(value, list), f"{name}.{key} is a list"
    assert isinstance(config.data.languages, tuple) and isinstance(config.train.freeze, tuple)
