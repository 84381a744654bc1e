"""HBO settings and set-up errors: named fields, the fix in the message."""

import ml_collections
import pytest

from eurollm_jax.hbo.config import HBOSection, split_job_config
from eurollm_jax.schema import ConfigError
from tests.train.helpers import small_config


def test_split_and_validate():
    config = small_config()
    config.hbo = ml_collections.ConfigDict({"mode": "global", "tau": "inf", "every": 10})
    train_config, hbo = split_job_config(config)
    assert "hbo" not in train_config and "hbo" in config  # the caller's config is untouched
    assert hbo.mode == "global" and hbo.tau == float("inf") and hbo.every == 10
    assert hbo.learns_global and not hbo.learns_local
    assert split_job_config(small_config())[1] == HBOSection()


@pytest.mark.parametrize("values, message", [
    ({"mode": "globl"}, 'hbo.mode: .*did you mean "global"'),
    ({"tau": 0}, "hbo.tau: must be > 0"),
    ({"every": 0}, "hbo.every: must be >= 1"),
    ({"evry": 3}, 'hbo.evry: unknown key; did you mean "every"'),
])
def test_bad_settings_name_the_field(values, message):
    config = small_config()
    config.hbo = ml_collections.ConfigDict(values)
    with pytest.raises(ConfigError, match=message):
        split_job_config(config)
