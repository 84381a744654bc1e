"""Exact resume, restore onto another mesh, phases across a restart, bad-input errors."""

import os
import shutil

import jax
import numpy as np
import pytest

from eurollm_jax.fileio import read_jsonl
from eurollm_jax.train import (
    Checkpointer,
    CheckpointMismatchError,
    TrainConfigError,
    build_job,
    export_from_workdir,
    train,
)
from tests.train.helpers import override, small_config


def _config(mesh=(2, 2, 2), **train_kw):
    """Two phases on real text: English, then German with its own decaying LR segment."""
    config = small_config(mesh=mesh, steps=6, **train_kw)
    override(
        config,
        **{
            "data.source": "text",
            "data.languages": ("en", "de", "fr"),
            "train.phases": (
                {"name": "web", "steps": 3, "mixture": {"en": 1.0, "fr": 1.0}},
                {
                    "name": "anneal",
                    "steps": 3,
                    "mixture": {"de": 1.0},
                    "lr": {"start": 1.0, "end": 0.1, "shape": "1-sqrt"},
                },
            ),
        },
    )
    return config


def _losses(workdir):
    return {r["step"]: r["loss"] for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))}


def _final_params(config, workdir):
    job = build_job(config)
    ck = Checkpointer(os.path.join(workdir, "checkpoints"))
    try:
        state, _, _ = ck.restore(ck.latest_step(), job.spec.abstract)
    finally:
        ck.close()
    return jax.device_get(state["params"])


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("straight") / "run")
    result = train(_config(), workdir)
    assert result.step == 6 and not result.stopped_early
    return workdir


def test_exact_resume_and_restore_on_another_mesh(straight, tmp_path):
    config = _config()
    resumed = str(tmp_path / "resumed")
    first = train(override(_config(), **{"train.stop_after": 3}), resumed)
    assert first.step == 3 and first.stopped_early
    half = str(tmp_path / "half")
    shutil.copytree(resumed, half)
    second = train(config, resumed)  # same command again: resumes at 3
    assert second.step == 6

    a, b = _losses(straight), _losses(resumed)
    assert sorted(b) == [1, 2, 3, 4, 5, 6]  # each step once, the records after 3 redone
    assert a == b  # bitwise identical losses at every step
    pa, pb = _final_params(config, straight), _final_params(config, resumed)
    for x, y in zip(jax.tree.leaves(pa), jax.tree.leaves(pb)):
        np.testing.assert_array_equal(x, y)
    recs = read_jsonl(os.path.join(resumed, "metrics.jsonl"))
    assert [r["phase"] for r in recs] == [0, 0, 0, 1, 1, 1]

    # resharded restore: 8 devices (2, 2, 2) -> 2 devices (1, 1, 2), parameters split on tensor
    other = train(_config(mesh=(1, 1, 2)), half, devices=jax.devices()[:2])
    assert other.step == 6
    c = _losses(half)
    # within 1e-6 relative: float32 sums over 2 instead of 8 shards (the loss is ~5, 1 ulp ~5e-7)
    np.testing.assert_allclose(
        [c[s] for s in (4, 5, 6)], [a[s] for s in (4, 5, 6)], rtol=1e-6, atol=0
    )


def test_checkpoint_of_another_model_shape_names_the_tensors(straight):
    before = sorted(os.listdir(os.path.join(straight, "checkpoints")))
    metrics = open(os.path.join(straight, "metrics.jsonl")).read()
    config = _config()
    config.model.ffn_dim = 96
    with pytest.raises(CheckpointMismatchError) as e:
        train(config, straight)
    msg = str(e.value)
    assert "params/layers/mlp/up_proj: checkpoint (2, 64, 128) vs model (2, 64, 96)" in msg
    assert "params/layers/mlp/down_proj" in msg and "embed_tokens" not in msg
    assert sorted(os.listdir(os.path.join(straight, "checkpoints"))) == before
    assert open(os.path.join(straight, "metrics.jsonl")).read() == metrics


def test_bad_batch_and_missing_parent_write_nothing(tmp_path):
    workdir = tmp_path / "run"
    config = small_config()
    config.train.batch_size = 6  # data x fsdp = 4
    with pytest.raises(TrainConfigError, match="multiple of 4"):
        train(config, str(workdir))
    assert not workdir.exists()
    with pytest.raises(TrainConfigError, match="micro-batch"):
        train(small_config(micro_batches=4), str(workdir))  # 8 / 4 = 2 rows over 4 devices
    assert not workdir.exists()
    with pytest.raises(TrainConfigError, match="parent directory of --workdir does not exist"):
        train(small_config(), str(tmp_path / "missing" / "run"))
    assert not (tmp_path / "missing").exists()
    config = small_config()
    config.data.source = "text"
    config.data.text_files = (str(tmp_path / "nothing*.txt"),)
    with pytest.raises(Exception, match="matches no file"):
        train(config, str(workdir))
    assert not workdir.exists()


def test_checkpoint_with_another_optimizer_layout_keeps_its_params(straight, tmp_path):
    """Same parameters, other optimizer state (another optimizer, or an older version's
    layout): the error says so and how to keep the parameters; that way works."""
    config = _config()
    config.optimizer.name = "sgd"
    with pytest.raises(CheckpointMismatchError, match="the parameters match, but the optimizer"):
        train(config, straight)
    out = export_from_workdir(config, straight, str(tmp_path / "params"))
    assert os.path.isdir(out)
