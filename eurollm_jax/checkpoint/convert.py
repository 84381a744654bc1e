"""Conversion between Hugging Face checkpoints and Orbax params directories.

``python -m launch.convert --to=orbax --input=HF_DIR --output=PARAMS_DIR`` and
``--to=hf``; the logic lives here so that tests reach it. The tokenizer travels with the
weights: ``--to=hf`` writes the HF tokenizer files (``checkpoint.hf_tokenizer``) from
``tokenizer=`` or from a ``tokenizer.model`` in the params directory; ``--to=orbax`` keeps
the HF directory's tokenizer (its ``tokenizer.model``, or one rebuilt from its
``tokenizer.json``; or ``tokenizer=``) as ``tokenizer.model`` in the params directory.
"""

from __future__ import annotations

import os

import jax

from eurollm_jax.checkpoint.hf import load_hf_checkpoint, save_hf_checkpoint
from eurollm_jax.checkpoint.hf_tokenizer import TOKENIZER_JSON, TOKENIZER_MODEL, read_hf_tokenizer
from eurollm_jax.checkpoint.params import CONFIG_FILE, load_params, save_params
from eurollm_jax.parallel.mesh import create_mesh
from eurollm_jax.tokenizer import Tokenizer


def convert(direction: str, input_path: str, output_path: str, *, mesh_shape=(1, -1, 1),
            dtype: str | None = None, force: bool = False,
            tokenizer: str | None = None) -> str:
    """Convert ``input_path`` to ``output_path``; ``direction`` is "orbax" or "hf".

    The model is loaded sharded over ``mesh_shape`` (default: FSDP over all devices), so
    a checkpoint larger than one device's memory converts on a multi-device host.
    ``tokenizer``: a ``tokenizer.model`` (or a directory holding one) to ship with the
    output; default: the input directory's own ``tokenizer.model`` when it has one.
    """
    if direction not in ("orbax", "hf"):
        raise ValueError(f"--to must be 'orbax' or 'hf', got {direction!r}")
    if not os.path.exists(input_path):
        raise FileNotFoundError(f"input {input_path} does not exist")
    if os.path.exists(output_path) and os.listdir(output_path) and not force:
        raise FileExistsError(f"output {output_path} is not empty; pass --force to overwrite")
    has = lambda name: os.path.exists(os.path.join(input_path, name))  # noqa: E731
    if tokenizer is None and (has(TOKENIZER_MODEL) or (direction == "orbax" and has(TOKENIZER_JSON))):
        tokenizer = input_path
    tok = None
    if tokenizer is not None:  # load before the (long) weight conversion: fail early
        tok = (read_hf_tokenizer(tokenizer) if os.path.isdir(tokenizer) and direction == "orbax"
               else Tokenizer.load(tokenizer))
    mesh = create_mesh(mesh_shape)
    if direction == "orbax":
        model = load_hf_checkpoint(input_path, mesh=mesh, param_dtype=dtype or "float32")
        save_params(model, output_path, force=force)
        if tok is not None and jax.process_index() == 0:
            tok.save(os.path.join(output_path, TOKENIZER_MODEL))
    else:
        if not os.path.exists(os.path.join(input_path, CONFIG_FILE)):
            raise FileNotFoundError(f"{input_path} has no {CONFIG_FILE}: not a params directory")
        model = load_params(input_path, mesh=mesh)
        save_hf_checkpoint(model, output_path, dtype=dtype, tokenizer=tok)
    return output_path
