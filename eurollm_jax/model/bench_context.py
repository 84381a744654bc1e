"""Benchmark: context parallelism against row length (``python -m launch.bench context``).

For each row length, the tiny model's forward + backward (remat "full", fp32, batch 1) is
compiled three ways on emulated CPU devices: on one device with the reference attention
(today's path), and split over a ``sequence`` axis of ``--shards`` devices with ring and
with all-gather attention. Printed per row: compiled per-device temporary memory (XLA's
memory analysis) and, where that fits ``--max_gb``, the median tokens/s over ``--iters``
timed steps; then each context-parallel variant's memory and speed as ratios to the
single-device run at the same length. On a CPU host the devices share the same cores, so
tokens/s measures the overhead of the split, not a speed-up; memory is what it buys.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time


def _ensure_devices(count: int) -> None:
    """Ask for ``count`` emulated CPU devices (read when jax's backend starts, which has not
    happened yet when this runs as ``launch.bench context``)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def measure(seq_len: int, shards: int, impl: str | None, iters: int, max_bytes: float) -> dict:
    """Compile (and, if it fits, time) one forward + backward of the tiny model."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from eurollm_jax.model import create_model, get_preset
    from eurollm_jax.parallel import create_mesh

    cfg = dataclasses.replace(get_preset("tiny"), compute_dtype="float32", max_seq_len=seq_len,
                              remat_policy="full", attention_impl="xla",
                              context_parallel=impl or "ring")
    n = shards if impl else 1
    mesh = create_mesh((1, 1, n, 1), devices=jax.devices()[:n])
    model = create_model(cfg, mesh=mesh)

    def loss(m, ids):
        logits = m(ids)
        gold = jnp.take_along_axis(logits, ids[..., None], -1)[..., 0]
        return jnp.mean(jax.nn.logsumexp(logits, -1) - gold)

    step = nnx.jit(nnx.value_and_grad(loss))
    ids = jnp.asarray(np.random.RandomState(0).randint(0, cfg.vocab_size, (1, seq_len)),
                      jnp.int32)
    with jax.set_mesh(mesh):
        start = time.perf_counter()
        compiled = step.lower(model, ids).compile()
        compile_s = time.perf_counter() - start
        temp = compiled.memory_analysis().temp_size_in_bytes
        row = {"seq_len": seq_len, "variant": impl or "single", "devices": n,
               "temp_bytes": int(temp), "compile_s": compile_s, "tokens_per_s": None}
        if temp * n <= max_bytes:
            jax.block_until_ready(step(model, ids))  # warm-up
            times = []
            for _ in range(iters):
                start = time.perf_counter()
                jax.block_until_ready(step(model, ids))
                times.append(time.perf_counter() - start)
            row["tokens_per_s"] = seq_len / statistics.median(times)
    return row


def main(argv=None) -> int:
    argv = list(sys.argv if argv is None else argv)
    p = argparse.ArgumentParser(prog=argv[0], description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", default="4096,8192,16384",
                   help="comma-separated row lengths (each a multiple of 2 x --shards)")
    p.add_argument("--shards", type=int, default=8, help="size of the sequence axis")
    p.add_argument("--iters", type=int, default=3, help="timed steps per run (median)")
    p.add_argument("--max_gb", type=float, default=8.0,
                   help="time a run only when its compiled temp memory over all devices fits")
    args = p.parse_args(argv[1:])
    _ensure_devices(args.shards)
    import jax

    if jax.device_count() < args.shards:
        print(f"needs {args.shards} devices, found {jax.device_count()} (set XLA_FLAGS="
              f"--xla_force_host_platform_device_count={args.shards} before jax starts)",
              file=sys.stderr)
        return 2
    print(f"tiny model, fp32, remat full, batch 1; sequence axis {args.shards} on "
          f"{jax.devices()[0].platform} ({os.cpu_count()} cores)")
    print(f"{'tokens':>7} {'variant':>10} {'MB/device':>10} {'tok/s':>9} {'mem ratio':>9} "
          f"{'speed ratio':>11}")
    for seq_len in (int(x) for x in args.lengths.split(",")):
        base = None
        for impl in (None, "ring", "allgather"):
            row = measure(seq_len, args.shards, impl, args.iters, args.max_gb * 2**30)
            base = base or row
            mem_ratio = row["temp_bytes"] / max(base["temp_bytes"], 1)
            speed = (f"{row['tokens_per_s'] / base['tokens_per_s']:.2f}x"
                     if row["tokens_per_s"] and base["tokens_per_s"] else "-")
            tps = f"{row['tokens_per_s']:,.0f}" if row["tokens_per_s"] else "(no run)"
            print(f"{seq_len:>7} {row['variant']:>10} {row['temp_bytes'] / 2**20:>10,.1f} "
                  f"{tps:>9} {mem_ratio:>9.3f} {speed:>11}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
