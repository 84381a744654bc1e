"""Activation collection for ExpertSteer, through the inference engine, cached on disk.

``collect_states(engine, prompts, layers, pooling=..., cache_dir=...)`` returns the
residual stream after every requested layer for every prompt ([N, L, D] float32,
``inference.capture_activations``: last-token or mean pooling), and
``collect_residual_norms`` the typical residual norm per layer
(``inference.residual_norms``). Both are cached as ``.npy`` files under ``cache_dir``
named by a key over everything that decides the result: a fingerprint of the model (its
config and a checksum of every parameter array), the prompts, the layers, the pooling and
BOS handling. A cache hit is read back; a miss computes and writes atomically, so an
interrupted run never leaves a truncated array under a final name.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from typing import Sequence

import jax
import numpy as np

from eurollm_jax.fileio import atomic_open
from eurollm_jax.inference import capture_activations, residual_norms


def model_fingerprint(engine) -> str:
    """A short hash of the model's config and parameters (sum and sum of squares of every
    array, in float64): two checkpoints with the same shapes still differ."""
    h = hashlib.sha256(json.dumps(engine.cfg.to_dict(), sort_keys=True, default=str).encode())
    for path, leaf in sorted(
        jax.tree_util.tree_flatten_with_path(engine.params)[0], key=lambda kv: str(kv[0])
    ):
        arr = np.asarray(jax.device_get(leaf), np.float64)
        h.update(str(path).encode())
        h.update(np.array([arr.sum(), np.square(arr).sum()], np.float64).tobytes())
    return h.hexdigest()[:16]


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _cached(path: str | None, compute):
    if path and os.path.exists(path):
        return np.load(path)
    arr = np.asarray(compute(), np.float32)
    if path:
        buf = io.BytesIO()
        np.save(buf, arr)
        with atomic_open(path, "wb", encoding=None) as f:
            f.write(buf.getvalue())
    return arr


def _prompt_list(prompts) -> list:
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of prompts (strings or token-id lists)")
    prompts = [p if isinstance(p, str) else [int(t) for t in p] for p in prompts]
    if not prompts:
        raise ValueError("no prompts to collect activations for")
    return prompts


def collect_states(
    engine,
    prompts: Sequence,
    layers: Sequence[int] | None = None,
    *,
    pooling: str = "last",
    cache_dir: str | None = None,
    fingerprint: str | None = None,
    add_bos: bool = True,
    max_batch_tokens: int = 8192,
) -> np.ndarray:
    """[N, len(layers), D] pooled residual states (all layers when ``layers`` is None)."""
    if pooling not in ("last", "mean"):
        raise ValueError(f"pooling must be 'last' or 'mean' for steering data, got {pooling!r}")
    prompts = _prompt_list(prompts)
    layers = list(range(engine.cfg.num_layers)) if layers is None else [int(x) for x in layers]
    path = None
    if cache_dir:
        fp = fingerprint or model_fingerprint(engine)
        path = os.path.join(
            cache_dir, f"states-{fp}-{_key(prompts, layers, pooling, add_bos)}.npy"
        )
    return _cached(
        path,
        lambda: capture_activations(
            engine, prompts, layers, pooling=pooling, add_bos=add_bos,
            max_batch_tokens=max_batch_tokens,
        ),
    )


def collect_residual_norms(
    engine,
    prompts: Sequence,
    layers: Sequence[int] | None = None,
    *,
    cache_dir: str | None = None,
    fingerprint: str | None = None,
    add_bos: bool = True,
) -> np.ndarray:
    """[len(layers)] mean L2 norm of the residual stream over all real tokens of ``prompts``."""
    prompts = _prompt_list(prompts)
    layers = list(range(engine.cfg.num_layers)) if layers is None else [int(x) for x in layers]
    path = None
    if cache_dir:
        fp = fingerprint or model_fingerprint(engine)
        path = os.path.join(cache_dir, f"norms-{fp}-{_key(prompts, layers, add_bos)}.npy")
    return _cached(path, lambda: residual_norms(engine, prompts, layers, add_bos=add_bos))
