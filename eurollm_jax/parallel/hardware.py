"""Peak dense bf16 FLOP/s per device, for MFU. None where no meaningful peak exists (CPU)."""

from __future__ import annotations

import jax

# Dense bf16 peak per chip/GPU (vendor figures, no sparsity).
PEAK_BF16_FLOPS: dict[str, float] = {
    "tpu v4": 275e12,
    "tpu v5 lite": 197e12,  # v5e
    "tpu v5e": 197e12,
    "tpu v5p": 459e12,
    "tpu v5": 459e12,
    "tpu v6 lite": 918e12,  # v6e (Trillium)
    "tpu v6e": 918e12,
    "nvidia a100": 312e12,
    "nvidia h100": 989e12,
    "nvidia h200": 989e12,
}

# HBM per chip in bytes (for fit checks).
HBM_BYTES: dict[str, float] = {
    "tpu v4": 32 * 2**30,
    "tpu v5 lite": 16 * 2**30,
    "tpu v5e": 16 * 2**30,
    "tpu v5p": 95 * 2**30,
    "tpu v5": 95 * 2**30,
    "tpu v6 lite": 32 * 2**30,
    "tpu v6e": 32 * 2**30,
    "nvidia a100": 80 * 2**30,
    "nvidia h100": 80 * 2**30,
    "nvidia h200": 141 * 2**30,
}


def _lookup(table: dict[str, float], device_kind: str) -> float | None:
    kind = device_kind.lower()
    for key in sorted(table, key=len, reverse=True):  # most specific first
        if kind.startswith(key) or key in kind:
            return table[key]
    return None


def peak_flops(device: jax.Device | None = None) -> float | None:
    """Peak bf16 FLOP/s of ``device`` (default: the first device); None on CPU/unknown."""
    device = device or jax.devices()[0]
    if device.platform == "cpu":
        return None
    return _lookup(PEAK_BF16_FLOPS, device.device_kind)


def hbm_bytes(device_kind: str) -> float | None:
    return _lookup(HBM_BYTES, device_kind)
