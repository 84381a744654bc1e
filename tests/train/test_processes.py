"""Tests that need their own processes: the CLI contract, a kill during an asynchronous
save, and real multi-host training (2 processes x 4 CPU devices over gloo)."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from eurollm_jax.fileio import read_jsonl
from eurollm_jax.train import Checkpointer, train
from tests.train.helpers import SMALL_MODEL, override, small_config

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


def _launch(workdir, processes, devices, mesh, port, **extra):
    """``processes`` x ``devices`` CPU processes running ``launch.train`` on ``mesh``."""
    cmd = [sys.executable, "-m", "launch.train"] + _cli_flags(workdir, mesh=mesh, **extra)
    return [
        subprocess.Popen(
            cmd,
            env=_env(
                devices=devices,
                EUROLLM_COORDINATOR=f"127.0.0.1:{port}",
                EUROLLM_NUM_PROCESSES=str(processes),
                EUROLLM_PROCESS_ID=str(i),
            ),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]


def _wait(procs, timeout=600):
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=timeout))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-4000:]
    return outs


def _losses(workdir):
    return {r["step"]: r["loss"] for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))}


def _multi_equals_single(tmp_path, processes, devices, mesh, shards=2):
    # The same data.shards on both sides: the global batches are the same rows. A tensor
    # axis of 8 needs 8 query heads.
    model = {"model.num_heads": 8} if mesh[2] == 8 else {}
    workdir = str(tmp_path / "multi")
    with _reserved_port() as port:
        _wait(_launch(workdir, processes, devices, mesh, port, steps=3,
                      **{"checkpoint.every": 3, "data.shards": shards, **model}))
    multi = _losses(workdir)
    assert sorted(multi) == [1, 2, 3]
    ck = Checkpointer(os.path.join(workdir, "checkpoints"))
    assert ck.latest_step() == 3
    ck.close()
    config = small_config(mesh=mesh, steps=3)
    config.checkpoint.every = 3
    config.data.shards = shards
    override(config, **model)
    ref = _losses(train(config, str(tmp_path / "single")).workdir)
    np.testing.assert_allclose(
        [multi[s] for s in (1, 2, 3)], [ref[s] for s in (1, 2, 3)], rtol=1e-5, atol=0
    )


def test_two_processes_log_the_same_losses_as_one(tmp_path):
    _multi_equals_single(tmp_path, 2, 4, (2, 2, 2))


@pytest.mark.slow
@pytest.mark.parametrize(
    "processes, devices, mesh, shards",
    [(2, 4, (1, 1, 8), 1), (2, 4, (1, 2, 4), 2), (4, 2, (2, 2, 2), 4)],
    ids=["2x4-tensor8", "2x4-fsdp2-tensor4", "4x2-2.2.2"],
)
def test_multi_process_layouts_log_the_same_losses_as_one(
    tmp_path, processes, devices, mesh, shards
):
    # (1, 1, 8): both processes hold every row (replicas) and must load identical rows;
    # (1, 2, 4): one fsdp shard per process; 4 x 2: one (data, fsdp) cell per process.
    _multi_equals_single(tmp_path, processes, devices, mesh, shards)


def test_sigterm_to_one_process_stops_both_at_the_same_step(tmp_path):
    """SIGTERM reaches one host only: every process stops at the same step, they save that
    step together and exit 0; the run then resumes exactly (losses of a straight run)."""
    workdir = str(tmp_path / "multi")
    long = {"checkpoint.every": 0, "optimizer.schedule": "constant", "data.shards": 2}
    with _reserved_port() as port:
        procs = _launch(workdir, 2, 4, (2, 2, 2), port, steps=400, **long)
        metrics = os.path.join(workdir, "metrics.jsonl")
        deadline = time.time() + 400
        while time.time() < deadline:  # wait for a few steps, then preempt process 1 only
            if os.path.exists(metrics) and len(read_jsonl(metrics)) >= 3:
                break
            if any(p.poll() is not None for p in procs):
                break
            time.sleep(0.5)
        procs[1].send_signal(signal.SIGTERM)
        outs = _wait(procs)
    stopped = [int(out.strip().splitlines()[-1].split("at step ")[1].split(";")[0]) for out, _ in outs]
    assert stopped[0] == stopped[1] and 3 <= stopped[0] < 400, outs
    ck = Checkpointer(os.path.join(workdir, "checkpoints"))
    assert ck.latest_step() == stopped[0]
    ck.close()
    stop = stopped[0]
    with _reserved_port() as port:  # resume for two more steps
        _wait(_launch(workdir, 2, 4, (2, 2, 2), port, steps=400,
                      **dict(long, **{"train.stop_after": 2})))
    resumed = _losses(workdir)
    assert sorted(resumed) == list(range(1, stop + 3))
    config = small_config(mesh=(2, 2, 2), steps=400, stop_after=stop + 2)
    config.checkpoint.every = 0
    config.optimizer.schedule = "constant"
    config.data.shards = 2
    ref = _losses(train(config, str(tmp_path / "single")).workdir)
    steps = sorted(ref)
    np.testing.assert_allclose(
        [resumed[s] for s in steps], [ref[s] for s in steps], rtol=1e-5, atol=0
    )


def test_finite_eval_with_uneven_shards_finishes_on_every_process(tmp_path):
    """Held-out data that gives process 0 more eval batches than process 1: every process
    runs the same number of eval steps (the shorter one feeds zero-weight rows) and the
    loss equals the single-process run over the same two data shards."""
    text = tmp_path / "corpus.txt"
    train_paras = [f"paragraph {i}: " + "the quick brown fox jumps. " * 3 for i in range(17)]
    held = ["long held-out paragraph " + "lorem ipsum dolor sit amet " * 12,
            "short one", "another short held-out one"]
    text.write_text("\n\n".join(train_paras + held), encoding="utf-8")
    extra = {"data.source": "text", "data.text_files": f"('{text}',)", "data.eval_fraction": 0.15,
             "eval.every": 2, "eval.batches": 10, "data.shards": 2, "checkpoint.every": 2}
    workdir = str(tmp_path / "multi")
    with _reserved_port() as port:
        _wait(_launch(workdir, 2, 4, (2, 2, 2), port, steps=2, **extra))
    multi = {r["step"]: r for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))}
    assert np.isfinite(multi[2]["eval_loss"])

    config = small_config(mesh=(2, 2, 2), steps=2)
    override(config, **{"data.source": "text", "data.text_files": (str(text),),
                        "data.eval_fraction": 0.15, "eval.every": 2, "eval.batches": 10,
                        "data.shards": 2, "checkpoint.every": 2})
    single = {r["step"]: r for r in read_jsonl(
        os.path.join(train(config, str(tmp_path / "single")).workdir, "metrics.jsonl"))}
    assert multi[2]["eval_loss"] == pytest.approx(single[2]["eval_loss"], rel=1e-5)
