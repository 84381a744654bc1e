"""Remat policies change what the backward pass keeps, not what it computes.

``test_remat_policies_give_same_gradients`` (test_transformer.py) checks the values; this
checks the mechanism: the residuals that the forward pass saves for the backward pass
(``jax.ad_checkpoint.print_saved_residuals``) must shrink in the order of the policies. A remat
policy that was silently ignored would save as much as ``none`` and fail here.
"""

import contextlib
import io
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eurollm_jax.model import create_model
from tests.model.helpers import small_config


def _saved_bytes(policy: str, scan_layers: bool) -> int:
    model = create_model(small_config(remat_policy=policy, scan_layers=scan_layers), seed=0)
    graphdef, params = nnx.split(model)
    ids = jnp.asarray(np.random.RandomState(0).randint(0, 301, (2, 32)), jnp.int32)

    def loss(p):
        return jnp.mean(nnx.merge(graphdef, p)(ids))

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        jax.ad_checkpoint.print_saved_residuals(loss, params)
    total = 0
    for line in out.getvalue().splitlines():  # e.g. "f32[2,32,64] from the argument p"
        match = re.match(r"\s*([a-z]+)(\d*)\[([\d,]*)\]", line)
        assert match, line
        dims = [int(d) for d in match.group(3).split(",") if d]
        bits = int(match.group(2) or 8)  # bool has no width in the name: 1 byte
        total += int(np.prod(dims)) * bits // 8
    return total


@pytest.mark.parametrize(
    "scan_layers", [True, pytest.param(False, marks=pytest.mark.slow)], ids=["scan", "loop"]
)
def test_policies_save_less_in_order(scan_layers):
    saved = {p: _saved_bytes(p, scan_layers) for p in ("none", "dots_all", "dots", "qkv_proj",
                                                       "full")}
    assert saved["full"] < saved["qkv_proj"] < saved["dots"] < saved["dots_all"], saved
    assert saved["dots_all"] <= saved["none"], saved
    assert saved["full"] < 0.5 * saved["none"], saved
