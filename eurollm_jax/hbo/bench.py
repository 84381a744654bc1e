"""``python -m launch.bench hbo``: wall-clock overhead of HBO against the same run without it.

Builds a bucketed SFT file (``--subsets`` languages-like subsets x 4 buckets of synthetic
conversations of growing difficulty), then trains the tiny HBO job twice in this process:
``hbo.mode=static`` (the same mixture, never updated: the run without HBO) and
``hbo.mode=hbo`` (rewards and actor updates every ``--every`` steps). Both are first run
briefly to compile (train step and reward functions), so the timed runs measure steady
state. Prints the wall time of each, HBO's reward time, and the overhead (the paper
reports about 15% at its scale, F = 200).
"""

from __future__ import annotations

import argparse
import os
import random
import string
import tempfile
import time


def _records(subsets: int, per_bucket: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for s in range(subsets):
        for j in range(4):
            for _ in range(per_bucket):
                n = 8 + 8 * j
                answer = "".join(rng.choice(string.ascii_lowercase[: 4 + 6 * j]) for _ in range(n))
                out.append({"messages": [{"role": "user", "content": f"task {s}: echo"},
                                         {"role": "assistant", "content": answer}],
                            "source": f"s{s}/b{j}"})
    return out


def _config(sft_file: str, steps: int, every: int, mode: str, mesh: str):
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, root)
    from configs.hbo_tiny8 import get_config

    config = get_config()
    config.data.sft_file = sft_file
    config.train.steps = steps
    config.train.log_every = every
    config.checkpoint.every = 0
    config.optimizer.warmup_steps = 2
    config.mesh.data, config.mesh.fsdp, config.mesh.tensor = (int(x) for x in mesh.split(","))
    config.hbo.mode = mode
    config.hbo.every = every
    config.hbo.plots = False
    return config


def _timed(config, workdir: str):
    from eurollm_jax.hbo.run import run

    start = time.perf_counter()
    _, _, hook = run(config, workdir)
    return time.perf_counter() - start, hook


def main(argv=None):
    parser = argparse.ArgumentParser(prog=(argv or ["hbo"])[0], description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--every", type=int, default=100, help="HBO's F (reward interval)")
    parser.add_argument("--subsets", type=int, default=4)
    parser.add_argument("--per_bucket", type=int, default=32)
    parser.add_argument("--mesh", default="1,-1,1", help="data,fsdp,tensor")
    args = parser.parse_args((argv or ["hbo"])[1:])
    from eurollm_jax.fileio import write_jsonl

    with tempfile.TemporaryDirectory() as tmp:
        sft = os.path.join(tmp, "buckets.jsonl")
        write_jsonl(sft, _records(args.subsets, args.per_bucket))
        for mode in ("static", "hbo"):  # compile the train step and the reward functions:
            warm = _config(sft, args.steps, 1, mode, args.mesh)  # one step, one update
            warm.train.stop_after = 1  # (stop_after is not part of the compiled step)
            _timed(warm, os.path.join(tmp, f"warm_{mode}"))
        t_static, _ = _timed(_config(sft, args.steps, args.every, "static", args.mesh),
                             os.path.join(tmp, "static"))
        t_hbo, hook = _timed(_config(sft, args.steps, args.every, "hbo", args.mesh),
                             os.path.join(tmp, "hbo"))
    n_sub = args.subsets
    print(f"HBO overhead: {args.steps} steps, rewards every {args.every} "
          f"({hook.updates} updates), {n_sub} subsets x 4 buckets, "
          f"{hook.settings.global_batches} gradient batches per subset, "
          f"{hook.settings.local_examples} probes per bucket")
    print(f"  without HBO (static mixture): {t_static:8.2f} s")
    print(f"  with HBO:                     {t_hbo:8.2f} s  (rewards + actor updates "
          f"{hook.reward_seconds:.2f} s)")
    print(f"  overhead: {100 * (t_hbo / t_static - 1):+.1f}% wall clock; rewards alone "
          f"{100 * hook.reward_seconds / t_static:.1f}% of the run without HBO, "
          f"{100 * hook.reward_seconds / (t_hbo - hook.reward_seconds):.1f}% of the rest of the "
          f"HBO run (the same load; paper: ~15% at F=200)")
    print(f"  per update: {hook.reward_seconds / max(hook.updates, 1):.2f} s = "
          f"{hook.reward_seconds / max(hook.updates, 1) / (t_static / args.steps):.1f} steps "
          f"of the run without HBO")
    return 0
