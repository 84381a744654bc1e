"""Conversion between Hugging Face checkpoints and Orbax params directories.

``python -m launch.convert --to=orbax --input=HF_DIR --output=PARAMS_DIR`` and
``--to=hf``; the logic lives here so that tests reach it.
"""

from __future__ import annotations

import os

from eurollm_jax.checkpoint.hf import load_hf_checkpoint, save_hf_checkpoint
from eurollm_jax.checkpoint.params import CONFIG_FILE, load_params, save_params
from eurollm_jax.parallel.mesh import create_mesh


def convert(direction: str, input_path: str, output_path: str, *, mesh_shape=(1, -1, 1),
            dtype: str | None = None, force: bool = False) -> str:
    """Convert ``input_path`` to ``output_path``; ``direction`` is "orbax" or "hf".

    The model is loaded sharded over ``mesh_shape`` (default: FSDP over all devices), so
    a checkpoint larger than one device's memory converts on a multi-device host.
    """
    if direction not in ("orbax", "hf"):
        raise ValueError(f"--to must be 'orbax' or 'hf', got {direction!r}")
    if not os.path.exists(input_path):
        raise FileNotFoundError(f"input {input_path} does not exist")
    if os.path.exists(output_path) and os.listdir(output_path) and not force:
        raise FileExistsError(f"output {output_path} is not empty; pass --force to overwrite")
    mesh = create_mesh(mesh_shape)
    if direction == "orbax":
        model = load_hf_checkpoint(input_path, mesh=mesh, param_dtype=dtype or "float32")
        save_params(model, output_path, force=force)
    else:
        if not os.path.exists(os.path.join(input_path, CONFIG_FILE)):
            raise FileNotFoundError(f"{input_path} has no {CONFIG_FILE}: not a params directory")
        model = load_params(input_path, mesh=mesh)
        save_hf_checkpoint(model, output_path, dtype=dtype)
    return output_path
