"""Launch tooling: AOT compilation for a TPU topology (needs libtpu), pod dry runs, the bench."""

import importlib.util
import os
import subprocess
import sys

import pytest

from launch.pod import commands as C
from launch.pod.tpu_vm import plan

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run_module(module, *args, timeout=120):
    """``python -m module args`` from the repository root, without the tests' XLA_FLAGS."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("XLA_FLAGS", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.tpu
@pytest.mark.skipif(
    importlib.util.find_spec("libtpu") is None, reason="needs libtpu (the tpu extra)"
)
def test_compile_tiny_for_a_small_tpu_topology():
    small = [
        "--config.model.vocab_size=1024",
        "--config.model.d_model=128",
        "--config.model.num_layers=2",
        "--config.model.ffn_dim=256",
        "--config.train.seq_len=128",
    ]
    cmd = ["--config=configs/tiny.py", "--topology=v5e:2x2"]
    ok = _run_module("launch.compile_tpu", *cmd, *small, timeout=600)
    assert ok.returncode == 0, ok.stdout + ok.stderr[-3000:]
    assert "4 x v5e chips" in ok.stdout and "FITS" in ok.stdout and "of 16.00 GiB HBM" in ok.stdout
    assert "compiled FLOPs per chip per step" in ok.stdout
    # libtpu stays quiet: the only stderr lines are our own log of the kernel choice
    noise = [ln for ln in ok.stderr.splitlines() if ln.strip() and "attention kernel" not in ln]
    assert noise == [], ok.stderr[-2000:]
    assert "attention kernel splash" in ok.stderr
    # A batch that cannot fit a chip: exit code 1 and the reason.
    big = _run_module(
        "launch.compile_tpu",
        *cmd,
        *small,
        "--config.train.batch_size=4096",
        "--config.train.seq_len=512",
        "--config.model.max_seq_len=512",
        timeout=600,
    )
    assert big.returncode == 1, big.stdout + big.stderr[-3000:]
    assert "DOES NOT FIT" in big.stdout


def test_tpu_vm_plan_creates_or_reuses_and_runs_everywhere():
    s = C.Slice("run1", "us-east5-a", "v5p-128", "v2-alpha-tpuv5", project="proj")
    job = ["--config=configs/eurollm_9b.py", "--workdir=/mnt/shared/run1"]
    fresh = plan(s, job, exists=False, setup=True, delete_after=True, module="launch.train")
    assert fresh[0][:6] == ["gcloud", "compute", "tpus", "tpu-vm", "create", "run1"]
    assert "--accelerator-type=v5p-128" in fresh[0] and "--project=proj" in fresh[0]
    run = fresh[-2]
    assert "--worker=all" in run and run[-1].startswith(
        "--command=cd ~/eurollm_jax && EUROLLM_AUTO_DISTRIBUTED=1"
    )
    assert run[-1].endswith(
        "python3 -m launch.train --config=configs/eurollm_9b.py --workdir=/mnt/shared/run1"
    )
    assert fresh[-1][4] == "delete"
    reuse = plan(s, job, exists=True, setup=False, delete_after=False, module="launch.train")
    assert len(reuse) == 1 and reuse[0][4] == "ssh"


def test_pod_dry_runs_print_the_commands():
    out = _run_module(
        "launch.pod.tpu_vm",
        "--name=n",
        "--zone=z",
        "--accelerator=v5litepod-256",
        "--dry_run",
        "--",
        "--config=configs/eurollm_9b.py",
        "--workdir=/mnt/run",
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert all(line.startswith("[dry-run] gcloud compute tpus tpu-vm") for line in lines)
    assert any("--worker=all" in line and "launch.train" in line for line in lines)
    out = _run_module(
        "launch.pod.xpk",
        "--cluster=c",
        "--workload=w",
        "--tpu_type=v5p-128",
        "--image=img",
        "--num_slices=2",
        "--dry_run",
        "--",
        "--config=configs/eurollm_9b.py",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(
        "[dry-run] xpk workload create --cluster=c --workload=w --tpu-type=v5p-128 --num-slices=2"
    )


@pytest.mark.torch
def test_bench_times_the_step_the_transformers_peer_and_the_plain_jax_step(capsys):
    pytest.importorskip("transformers")
    from eurollm_jax.train import bench

    flags = [
        "bench",
        "--config=configs/tiny.py",
        "--peer=all",
        "--steps=2",
        "--warmup=1",
        "--fast_compile",
        "--config.model.vocab_size=384",
        "--config.model.d_model=64",
        "--config.model.num_layers=2",
        "--config.model.ffn_dim=128",
        "--config.model.num_heads=4",
        "--config.model.head_dim=16",
        "--config.train.seq_len=32",
        "--config.train.batch_size=8",
    ]
    assert bench.main(flags) == 0
    out = capsys.readouterr().out
    assert "eurollm_jax:" in out and "tokens/s" in out
    assert "transformers+torch AdamW:" in out and "ratio eurollm_jax / transformers:" in out
    assert "plain JAX step:" in out and "ratio eurollm_jax / plain JAX step:" in out
