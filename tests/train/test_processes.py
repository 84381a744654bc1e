"""Tests that need their own processes: the CLI contract, a kill during an asynchronous
save, and real multi-host training (2 processes x 4 CPU devices over gloo)."""

import contextlib
import os
import signal
import socket
import subprocess
import sys

import jax
import numpy as np

from eurollm_jax.fileio import read_jsonl
from eurollm_jax.train import Checkpointer, train
from tests.train.helpers import SMALL_MODEL, small_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAST_XLA = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def _env(devices=8, **extra):
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices} {FAST_XLA}"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    cache = jax.config.jax_compilation_cache_dir
    if cache:
        env["JAX_COMPILATION_CACHE_DIR"] = cache
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    env.update(extra)
    return env


def _cli_flags(workdir, mesh=(2, 2, 2), steps=4, **extra):
    flags = [f"--config={os.path.join(ROOT, 'configs', 'tiny.py')}", f"--workdir={workdir}"]
    for k, v in SMALL_MODEL.items():
        flags.append(f"--config.model.{k}={v}")
    for k, v in zip(("data", "fsdp", "tensor"), mesh):
        flags.append(f"--config.mesh.{k}={v}")
    values = {
        "train.steps": steps,
        "train.batch_size": 8,
        "train.seq_len": 32,
        "train.log_every": 1,
        "checkpoint.every": 2,
        "checkpoint.export_params": False,
        "data.num_docs": 128,
        "optimizer.warmup_steps": 2,
        "optimizer.lr": 3e-3,
        "optimizer.decay_fraction": 0.1,
        "data.source": "synthetic",
        "eval.every": 0,
    }
    values.update(extra)
    flags += [f"--config.{k}={v}" for k, v in values.items()]
    return flags


def _matching_config(steps=4, checkpoint_every=2):
    """The job of ``_cli_flags``, in this process (the same XLA flags: tests/conftest.py)."""
    config = small_config(mesh=(2, 2, 2), steps=steps)
    config.checkpoint.every = checkpoint_every
    return config


def test_cli_resumes_exactly(tmp_path):
    workdir = str(tmp_path / "cli")
    cmd = [sys.executable, "-m", "launch.train"] + _cli_flags(workdir)
    first = subprocess.run(
        cmd + ["--config.train.stop_after=2"],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    assert "stopped early at step 2" in first.stdout
    second = subprocess.run(cmd, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    cli = {r["step"]: r["loss"] for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))}
    assert sorted(cli) == [1, 2, 3, 4]

    bad = subprocess.run(
        cmd[:4] + [f"--workdir={tmp_path / 'no' / 'run'}"],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 1 and "parent directory of --workdir does not exist" in bad.stderr

    # the same job straight through in this process
    straight = train(_matching_config(), str(tmp_path / "straight"))
    ref = {
        r["step"]: r["loss"] for r in read_jsonl(os.path.join(straight.workdir, "metrics.jsonl"))
    }
    np.testing.assert_allclose(
        [cli[s] for s in range(1, 5)], [ref[s] for s in range(1, 5)], rtol=0, atol=1e-6
    )


KILL_SCRIPT = r"""
import os, signal, sys
import jax, jax.numpy as jnp
from eurollm_jax.train.checkpointing import Checkpointer
ck = Checkpointer(sys.argv[1], keep=3, async_save=True)
def big(v):
    return {"w": jnp.full((4096, 4096), v), "b": jnp.full((4096, 2048), v)}
ck.save(1, big(1.0), {"phase": 0, "iterators": [{"next_index": 1}]}, {"step": 1})
ck.wait()
ck.save(2, big(2.0), {"phase": 0, "iterators": [{"next_index": 2}]}, {"step": 2})
os.kill(os.getpid(), signal.SIGKILL)  # mid-way through the background write of step 2
"""


def test_kill_during_async_save_keeps_the_last_good_checkpoint(tmp_path):
    directory = str(tmp_path / "checkpoints")
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, directory],
        env=_env(devices=1),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    names = os.listdir(directory)
    assert "1" in names and "2" not in names
    assert any(n.startswith("2.orbax-checkpoint-tmp") for n in names), names  # really interrupted
    ck = Checkpointer(directory)
    assert ck.latest_step() == 1
    abstract = {
        "w": jax.ShapeDtypeStruct((4096, 4096), np.float32),
        "b": jax.ShapeDtypeStruct((4096, 2048), np.float32),
    }
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), abstract
    )
    state, data, config = ck.restore(1, abstract)
    assert float(state["w"][0, 0]) == 1.0 and float(state["b"][-1, -1]) == 1.0
    assert data["iterators"] == [{"next_index": 1}] and config == {"step": 1}
    ck.save(2, state, data, config)  # the run goes on: the half-written step is replaced
    ck.wait()
    assert ck.latest_step() == 2
    ck.close()


@contextlib.contextmanager
def _reserved_port():
    """A free port that no other program can take until the block ends. (A port picked and
    released may be taken before jax's coordinator binds it.) The socket holding it sets
    SO_REUSEPORT, as gRPC's listening sockets do, so the coordinator can bind it too."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def test_two_processes_log_the_same_losses_as_one(tmp_path):
    workdir = str(tmp_path / "multi")
    cmd = [sys.executable, "-m", "launch.train"] + _cli_flags(
        workdir, steps=3, **{"checkpoint.every": 3}
    )
    with _reserved_port() as port:
        procs = [
            subprocess.Popen(
                cmd,
                env=_env(
                    devices=4,
                    EUROLLM_COORDINATOR=f"127.0.0.1:{port}",
                    EUROLLM_NUM_PROCESSES="2",
                    EUROLLM_PROCESS_ID=str(i),
                ),
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        outs = []
        for p in procs:
            try:
                outs.append(p.communicate(timeout=400))
            except subprocess.TimeoutExpired:
                for q in procs:
                    q.kill()
                raise
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-4000:]
    multi = {r["step"]: r["loss"] for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))}
    assert sorted(multi) == [1, 2, 3]
    ck = Checkpointer(os.path.join(workdir, "checkpoints"))
    assert ck.latest_step() == 3
    ck.close()

    single = train(_matching_config(steps=3, checkpoint_every=3), str(tmp_path / "single"))
    ref = {r["step"]: r["loss"] for r in read_jsonl(os.path.join(single.workdir, "metrics.jsonl"))}
    np.testing.assert_allclose(
        [multi[s] for s in (1, 2, 3)], [ref[s] for s in (1, 2, 3)], rtol=0, atol=1e-5
    )
