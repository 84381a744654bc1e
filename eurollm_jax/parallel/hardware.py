"""Per-chip peak dense bf16 FLOP/s and HBM, for MFU and fit checks (one table for all stages).

Matched against jax's ``device_kind`` (case-insensitive substring; the first match wins,
so specific names come first). CPUs and unknown chips have no entry: MFU is not reported.
"""

from __future__ import annotations

CHIPS: list[tuple[str, str, float, float]] = [
    # (name, device_kind pattern, peak FLOP/s, HBM bytes)
    ("v6e", "v6 lite", 918e12, 32 * 2**30),
    ("v6e", "v6e", 918e12, 32 * 2**30),
    ("v5e", "v5 lite", 197e12, 16 * 2**30),
    ("v5e", "v5e", 197e12, 16 * 2**30),
    ("v5p", "v5p", 459e12, 95 * 2**30),
    ("v5p", "tpu v5", 459e12, 95 * 2**30),
    ("v4", "tpu v4", 275e12, 32 * 2**30),
    ("H200", "h200", 989e12, 141e9),
    ("H100", "h100", 989e12, 80e9),
    ("A100", "a100", 312e12, 80e9),
]


def chip_info(device_kind: str) -> tuple[str, float, float] | None:
    """(name, peak FLOP/s, HBM bytes) for a jax ``device_kind``; None if unknown (CPU)."""
    kind = device_kind.lower()
    for name, pattern, peak, hbm in CHIPS:
        if pattern in kind:
            return name, peak, hbm
    return None


def peak_flops(device_kind: str) -> float | None:
    info = chip_info(device_kind)
    return None if info is None else info[1]


def mfu(flops_per_token: float, tokens_per_s: float, device_kind: str, num_devices: int) -> float | None:
    peak = peak_flops(device_kind)
    if peak is None or num_devices <= 0:
        return None
    return flops_per_token * tokens_per_s / (peak * num_devices)
