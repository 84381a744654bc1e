"""Every GPU goal in one prepared run: ``python -m launch.gpu_bench --out=DIR [--tiny]``.

(``bash launch/gpu_bench.sh`` installs what a fresh GPU host lacks first, then runs this.)
Stages, each timed and recorded even when another fails, into ``DIR/gpu_bench.json``:

- ``forward_backward``: loss + gradient of the model (``launch.bench forward``'s step) at
  the EuroLLM-1.7B shape, batch 4 x 4,096, bf16 compute, fp32 params: tokens/s and MFU;
- ``train_step``: the trainer's jitted step (AdamW, fp32 params, bf16 compute, the LM head's
  loss in 1,024-position chunks) on the same shape: tokens/s and MFU;
- ``decode``: greedy decoding at batch 64, prompt 512, 256 new tokens, bf16 weights
  (``launch.bench decode --shape=1.7b``): new tokens/s;
- ``gpu_tests``: the GPU-only tests (the real cuDNN attention calls, bf16 paths) with pytest;
  counts of passed / failed / skipped.

The goals they are checked against (docs/performance.md): train step MFU >= 55%, decode
>= 10,000 new tokens/s at batch 64. ``--tiny`` runs the same stages at the tiny preset's
size on any host (how the test suite checks this script on CPU); the goals are then not
checked. A stage that raises is recorded with its error and the others still run; the exit
status is 1 when a stage failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOALS = {"train_step_mfu": 0.55, "decode_new_tokens_per_s": 10_000.0}
FULL = dict(preset="eurollm-1.7b", batch=4, seq=4096, iters=5, decode_shape="1.7b",
            decode_batch=64, prompt_len=512, new_tokens=256)
TINY = dict(preset="tiny", batch=2, seq=128, iters=2, decode_shape="cpu",
            decode_batch=2, prompt_len=16, new_tokens=8)
GPU_TESTS = ["tests/model/test_attention.py", "tests/model/test_dtypes.py"]
GPU_TEST_FILTER = "cudnn or real_gpu or dtype"


def forward_backward(shape: dict) -> dict:
    from eurollm_jax.model import get_preset
    from eurollm_jax.model.bench import time_jax

    cfg = get_preset(shape["preset"], compute_dtype="bfloat16", param_dtype="float32",
                     max_seq_len=max(shape["seq"], 128))
    return time_jax(cfg, shape["batch"], shape["seq"], shape["iters"], (1, -1, 1))


def train_step(shape: dict) -> dict:
    from configs.base import base_config
    from eurollm_jax.train.bench import make_jax_step

    config = base_config(shape["preset"], compute_dtype="bfloat16", param_dtype="float32",
                         max_seq_len=max(shape["seq"], 128))
    t = config.train
    t.batch_size, t.seq_len, t.loss_chunk = shape["batch"], shape["seq"], min(1024, shape["seq"])
    config.data.source = "synthetic"
    config.data.num_docs = 64
    step, info = make_jax_step(config)
    step()  # after compilation: one untimed step
    times = []
    for _ in range(shape["iters"]):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    tokens_per_s = shape["batch"] * shape["seq"] / seconds
    return {"tokens_per_s": tokens_per_s, "step_s": seconds, "compile_s": info["compile_s"],
            "mfu": info["mfu"](tokens_per_s), "device": info["device"], "devices": info["devices"],
            "params": info["params"]}


def decode(shape: dict, out_dir: str) -> dict:
    from eurollm_jax.inference.bench import main as decode_main

    path = os.path.join(out_dir, "decode.json")
    rc = decode_main(["decode", "--shape", shape["decode_shape"], "--batch",
                      str(shape["decode_batch"]), "--prompt_len", str(shape["prompt_len"]),
                      "--new_tokens", str(shape["new_tokens"]), "--repeats", "2",
                      "--no_peer", "--json", path])
    if rc:
        raise RuntimeError(f"decode benchmark exited {rc}")
    with open(path, encoding="utf-8") as f:
        summary = json.load(f)
    best = summary["results"][0]
    return {"new_tokens_per_s": best["new_tokens_per_s"], "median_s": best["median_s"],
            "first_call_s": best["compile_and_first_run_s"], "batch": summary["batch"]}


def gpu_tests(out_dir: str) -> dict:
    """The GPU-only tests in a child pytest (junit XML parsed for the counts)."""
    import xml.etree.ElementTree as ET

    xml = os.path.join(out_dir, "gpu_tests.xml")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
           "-k", GPU_TEST_FILTER, *GPU_TESTS]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    suite = ET.parse(xml).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    counts["returncode"] = proc.returncode
    counts["tail"] = proc.stdout[-2000:]
    if proc.returncode not in (0, 5) or counts["failures"] or counts["errors"]:
        raise RuntimeError(f"GPU tests failed: {counts}")
    return counts


def run_stages(out_dir: str, tiny: bool, stages=None) -> dict:
    import jax

    devices = jax.devices()
    # tiny: one row per device, so any emulated device count divides the batch
    shape = dict(TINY, batch=max(TINY["batch"], len(devices))) if tiny else FULL
    report = {
        "mode": "tiny" if tiny else "full",
        "shape": shape,
        "host": {"python": platform.python_version(), "jax": jax.__version__,
                 "platform": devices[0].platform, "device_kind": devices[0].device_kind,
                 "device_count": len(devices)},
        "stages": {},
    }
    todo = {
        "forward_backward": lambda: forward_backward(shape),
        "train_step": lambda: train_step(shape),
        "decode": lambda: decode(shape, out_dir),
        "gpu_tests": lambda: gpu_tests(out_dir),
    }
    for name in stages or list(todo):
        start = time.perf_counter()
        try:
            result = {"ok": True, **todo[name]()}
        except Exception as e:  # recorded; the other stages still run
            result = {"ok": False, "error": f"{type(e).__name__}: {e}",
                      "traceback": traceback.format_exc(limit=8)}
        result["seconds"] = time.perf_counter() - start
        report["stages"][name] = result
        print(f"[gpu_bench] {name}: {'ok' if result['ok'] else result['error']} "
              f"({result['seconds']:.1f} s)", flush=True)
        _write(out_dir, report)
    if not tiny:
        st = report["stages"]
        report["goals"] = {
            "train_step_mfu": {"goal": GOALS["train_step_mfu"],
                               "measured": st.get("train_step", {}).get("mfu")},
            "decode_new_tokens_per_s": {"goal": GOALS["decode_new_tokens_per_s"],
                                        "measured": st.get("decode", {}).get("new_tokens_per_s")},
        }
        for goal in report["goals"].values():
            goal["met"] = goal["measured"] is not None and goal["measured"] >= goal["goal"]
    _write(out_dir, report)
    return report


def _write(out_dir: str, report: dict) -> None:
    from eurollm_jax.fileio import write_json

    write_json(os.path.join(out_dir, "gpu_bench.json"), report, sort_keys=False)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m launch.gpu_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="directory for gpu_bench.json (created)")
    p.add_argument("--tiny", action="store_true", help="tiny shapes, any host (no goals)")
    p.add_argument("--stages", default="", help="comma-separated subset of the stages")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    stages = [s for s in args.stages.split(",") if s] or None
    report = run_stages(args.out, args.tiny, stages)
    return 0 if all(s["ok"] for s in report["stages"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
