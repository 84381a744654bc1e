"""HF import benchmark: host peak memory and wall time of ``load_hf_checkpoint``.

``python -m launch.bench hf_load`` (or ``python -m eurollm_jax.checkpoint.bench``)
writes a random Llama checkpoint in safetensors with numpy (tensor by tensor, never the
whole model in memory), then loads it onto emulated CPU devices, once per mesh, each
time in a fresh subprocess. Each run reports the process's peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``), the part of it above the baseline taken
after imports and mesh creation, and the load's wall time and CPU time (user + system,
all threads; steadier than wall time on a shared machine). On CPU the devices' buffers
are host memory too, so the peak includes the loaded model itself (``model_mb``: the
bytes this host's devices hold, each replica counted; on CPU, page-aligned host
buffers are adopted by XLA without a copy, and replicas can then share one). The
checkpoint's files are read once before every measurement, so all runs start from the
page cache.

``--compare-with DIR`` repeats every measurement with the ``eurollm_jax`` package of
another checkout (e.g. ``git worktree add /tmp/before HEAD``) put first on
``PYTHONPATH``, checks that both loads give the same parameters (a per-parameter
fingerprint), and prints the ratios. The checkpoint is deleted afterwards unless
``--keep`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

# Run in a fresh interpreter per measurement, so that peak RSS is this load's alone. It
# imports only the public loader, so it works against older checkouts too.
_CHILD = r"""
import json, os, resource, sys, time
args = json.loads(sys.argv[1])
import jax, numpy as np
from flax import nnx
import eurollm_jax
from eurollm_jax.checkpoint import load_hf_checkpoint
from eurollm_jax.parallel.mesh import create_mesh
mesh = create_mesh(tuple(args["mesh"]))
kib = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cpu = lambda: (lambda r: r.ru_utime + r.ru_stime)(resource.getrusage(resource.RUSAGE_SELF))
base, cpu0 = kib(), cpu()
start = time.perf_counter()
model = load_hf_checkpoint(args["dir"], mesh=mesh, param_dtype=args["param_dtype"])
leaves = jax.tree.leaves(nnx.state(model))
jax.block_until_ready(leaves)
seconds, cpu_seconds = time.perf_counter() - start, cpu() - cpu0
peak = kib()
held = sum(s.data.nbytes for x in leaves for s in x.addressable_shards)
prints = [float(jax.device_get(jax.numpy.sum(x.astype(jax.numpy.float32) * (1.0 + 1e-3 * (i % 7)))))
          for i, x in enumerate(leaves)]
print("RESULT " + json.dumps(dict(
    package=os.path.dirname(eurollm_jax.__file__), devices=jax.device_count(), seconds=seconds,
    cpu_seconds=cpu_seconds,
    baseline_mb=base / 1024, peak_mb=peak / 1024, delta_mb=(peak - base) / 1024,
    model_mb=held / 2**20, fingerprint=prints)))
"""


def bench_config(num_layers: int = 10, preset: str = "eurollm-1.7b"):
    """A preset's widths with ``num_layers`` layers. EuroLLM-1.7B widths (d_model 2048,
    16/8 heads, head_dim 128, ffn 5632, vocab 128k, untied) with 10 layers: 1.0B params."""
    from eurollm_jax.model.config import get_preset

    return get_preset(preset, num_layers=num_layers)


def write_random_checkpoint(cfg, directory: str, *, dtype: str = "bfloat16", seed: int = 0,
                            max_shard_bytes: int = 2**30, chunk_rows: int = 8192) -> int:
    """A random HF checkpoint of ``cfg`` in ``directory``; returns its tensor bytes.

    Each tensor is generated in ``chunk_rows`` blocks into its own buffer and written
    before the next one is made, so the writer holds one tensor at a time.
    """
    from eurollm_jax.checkpoint.hf import expected_hf_shapes
    from eurollm_jax.checkpoint.safetensors_io import write_sharded
    from eurollm_jax.fileio import write_json

    import jax.numpy as jnp

    np_dtype = np.dtype(jnp.dtype(dtype))
    shapes = expected_hf_shapes(cfg)
    specs = [(name, np_dtype, shape) for name, shape in shapes.items()]
    rng = np.random.default_rng(seed)

    def fetch(name):
        shape = shapes[name]
        out = np.empty(shape, np_dtype)
        for r0 in range(0, shape[0], chunk_rows):
            block = rng.standard_normal((min(chunk_rows, shape[0] - r0), *shape[1:]), dtype=np.float32)
            out[r0:r0 + chunk_rows] = 1.0 + 0.1 * block if name.endswith("norm.weight") else 0.02 * block
        return out

    os.makedirs(directory, exist_ok=True)
    write_sharded(directory, specs, fetch, max_shard_bytes=max_shard_bytes)
    write_json(os.path.join(directory, "config.json"), cfg.to_hf_config(torch_dtype=dtype), sort_keys=False)
    return sum(int(np.prod(s)) * np_dtype.itemsize for s in shapes.values())


def warm_page_cache(directory: str, block: int = 64 * 2**20) -> None:
    """Read every file of ``directory`` once, so each measurement starts from the same
    (cached) state instead of the first one paying for the disk."""
    buf = bytearray(block)
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


def measure(directory: str, mesh: tuple[int, ...], param_dtype: str, *, devices: int = 8,
            source: str | None = None, timeout: float = 3600) -> dict:
    """One load in a fresh interpreter on ``devices`` emulated CPU devices."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices}").strip()
    env["JAX_PLATFORMS"] = "cpu"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.abspath(source), env.get("PYTHONPATH")) if p)
    args = json.dumps(dict(dir=directory, mesh=list(mesh), param_dtype=param_dtype))
    warm_page_cache(directory)
    # ``python -c`` puts the working directory first on sys.path: run in the source tree.
    done = subprocess.run([sys.executable, "-c", _CHILD, args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=os.path.abspath(source) if source else None)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"load on mesh {mesh} (source {source or 'this checkout'}) failed "
                           f"(exit {done.returncode}):\n{done.stderr[-4000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    if source is not None and not result["package"].startswith(os.path.abspath(source)):
        raise RuntimeError(f"--compare-with {source}: the child imported {result['package']} instead")
    return result


def _mesh(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(x) for x in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3:
        raise argparse.ArgumentTypeError(f"mesh must be data,fsdp,tensor (e.g. 1,8,1), got {text!r}")
    return shape


def main(argv=None) -> int:
    argv = list(sys.argv if argv is None else argv)
    parser = argparse.ArgumentParser(prog=argv[0], description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="eurollm-1.7b", help="model preset whose widths to use")
    parser.add_argument("--layers", type=int, default=10, help="layers (EuroLLM-1.7B widths, 10: 1.0B params)")
    parser.add_argument("--checkpoint-dtype", default="bfloat16", help="dtype of the tensors on disk")
    parser.add_argument("--param-dtype", default="float32", help="dtype of the loaded parameters")
    parser.add_argument("--meshes", type=_mesh, nargs="+", default=[(1, 8, 1), (2, 1, 4)],
                        help="data,fsdp,tensor shapes over the emulated devices")
    parser.add_argument("--devices", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1, help="measurements per mesh and code (medians shown)")
    parser.add_argument("--dir", help="checkpoint directory (default: a temporary one); reused if it holds one")
    parser.add_argument("--keep", action="store_true", help="do not delete the checkpoint afterwards")
    parser.add_argument("--compare-with", metavar="SRC", help="checkout whose eurollm_jax to measure as well")
    args = parser.parse_args(argv[1:])

    cfg = bench_config(args.layers, args.preset)
    directory = args.dir or tempfile.mkdtemp(prefix="hf_load_bench_")
    existed = os.path.exists(os.path.join(directory, "config.json"))
    try:
        if not existed:
            start = time.perf_counter()
            nbytes = write_random_checkpoint(cfg, directory, dtype=args.checkpoint_dtype)
            print(f"wrote {cfg.param_count() / 1e9:.2f}B params ({nbytes / 2**30:.2f} GiB {args.checkpoint_dtype}) "
                  f"to {directory} in {time.perf_counter() - start:.0f}s", flush=True)
        sources = [("current", None)] + ([("compare", args.compare_with)] if args.compare_with else [])
        print(f"{'mesh':>8} {'code':>8} {'run':>4} {'wall_s':>7} {'cpu_s':>7} {'peak_MB':>8} {'delta_MB':>8} "
              f"{'model_MB':>8}")
        for mesh in args.meshes:
            runs = {label: [] for label, _ in sources}
            for rep in range(args.repeats):  # interleaved, so load on the machine hits both alike
                for label, source in sources:
                    r = measure(directory, mesh, args.param_dtype, devices=args.devices, source=source)
                    runs[label].append(r)
                    print(f"{','.join(map(str, mesh)):>8} {label:>8} {rep:>4} {r['seconds']:7.1f} "
                          f"{r['cpu_seconds']:7.1f} {r['peak_mb']:8.0f} {r['delta_mb']:8.0f} {r['model_mb']:8.0f}",
                          flush=True)
            med = {label: {k: float(np.median([r[k] for r in rs])) for k in
                           ("seconds", "cpu_seconds", "peak_mb", "delta_mb")} for label, rs in runs.items()}
            for label, m in med.items():
                print(f"{','.join(map(str, mesh)):>8} {label:>8} {'med':>4} {m['seconds']:7.1f} "
                      f"{m['cpu_seconds']:7.1f} {m['peak_mb']:8.0f} {m['delta_mb']:8.0f}")
            if "compare" in runs:
                for r in runs["current"] + runs["compare"]:
                    if not np.allclose(r["fingerprint"], runs["current"][0]["fingerprint"], rtol=1e-6, atol=1e-6):
                        raise RuntimeError(f"mesh {mesh}: the loads give different parameters")
                a, b = med["current"], med["compare"]
                q = {k: a[k] / b[k] if b[k] else float("nan") for k in a}
                print(f"{'':>8} {'ratio':>8} {'med':>4} {q['seconds']:7.2f} {q['cpu_seconds']:7.2f} "
                      f"{q['peak_mb']:8.2f} {q['delta_mb']:8.2f}   (current / compare; parameters identical)",
                      flush=True)
    finally:
        if not existed and not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
