"""Orbax params directories: save on one mesh, restore onto another."""

import jax.numpy as jnp
import numpy as np
import pytest

import eurollm_jax
from tests.model.helpers import small_config


def test_params_round_trip_across_meshes(tmp_path):
    model = eurollm_jax.create_model(small_config(), mesh=eurollm_jax.create_mesh((2, 2, 2)), seed=3)
    eurollm_jax.save_params(model, str(tmp_path / "p"))
    restored = eurollm_jax.load_params(str(tmp_path / "p"), mesh=eurollm_jax.create_mesh((1, 8, 1)))
    assert restored.cfg == model.cfg
    assert restored.layers.mlp.gate_proj[...].sharding.spec[1] == "fsdp"
    ids = jnp.arange(40).reshape(2, 20) % 301
    np.testing.assert_allclose(model(ids), restored(ids), atol=1e-5)
    with pytest.raises(FileExistsError):
        eurollm_jax.save_params(model, str(tmp_path / "p"))
    with pytest.raises(FileNotFoundError, match="model_config.json"):
        eurollm_jax.load_params(str(tmp_path / "nothing"))
