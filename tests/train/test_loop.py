"""The loop end to end: learning real multilingual text, metrics, SIGTERM, SFT from an export."""

import glob
import os
import signal

import jax
import numpy as np
import pytest
from flax import nnx

from eurollm_jax.checkpoint import load_params
from eurollm_jax.fileio import read_jsonl
from eurollm_jax.train import Checkpointer, TrainingAborted, build_job, train
from eurollm_jax.train.data import corpus_unigram_entropy
from eurollm_jax.train.metrics import read_tensorboard_scalars
from tests.train.helpers import override, small_config


def _text_config(steps=40):
    config = small_config(mesh=(2, 2, 2), steps=steps)
    override(
        config,
        **{
            "data.source": "text",
            "train.seq_len": 128,
            "train.log_every": 5,
            "checkpoint.every": 0,
            "checkpoint.export_params": True,
            "eval.every": steps,
            "optimizer.lr": 5e-3,
            "optimizer.warmup_steps": 4,
            "optimizer.decay_fraction": 0.25,
        },
    )
    return config


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("pretrain") / "run")
    result = train(_text_config(), workdir)
    return workdir, result


def test_loss_falls_below_the_unigram_entropy_of_real_text(pretrained):
    workdir, result = pretrained
    entropy = corpus_unigram_entropy(_text_config())  # UDHR in 24 EU languages, ~3.6 nats/byte
    records = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
    assert [r["step"] for r in records] == list(range(5, 41, 5))
    assert records[0]["loss"] > entropy + 1.0
    assert np.mean([r["loss"] for r in records[-2:]]) < entropy
    assert records[-1]["eval_loss"] < corpus_unigram_entropy(_text_config(), "eval")
    assert records[-1]["eval_ppl"] == pytest.approx(np.exp(records[-1]["eval_loss"]), rel=1e-6)
    for key in ("grad_norm", "lr", "tokens_per_s", "step_time_s", "tokens", "phase"):
        assert key in records[-1]
    assert "mfu" not in records[-1]  # no peak FLOP/s for CPU
    (events,) = glob.glob(os.path.join(workdir, "tensorboard", "events.out.tfevents.*"))
    scalars = dict(read_tensorboard_scalars(events))
    assert sorted(scalars) == [r["step"] for r in records]
    assert scalars[40]["loss"] == pytest.approx(records[-1]["loss"], rel=1e-6)
    model = load_params(os.path.join(workdir, "params"))  # the params-only export
    assert model.cfg.d_model == 64


def test_sigterm_checkpoints_and_exits_cleanly(tmp_path):
    config = _text_config()
    config.checkpoint.export_params = False
    workdir = str(tmp_path / "run")

    def preempt(step):
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    result = train(config, workdir, on_step=preempt)
    assert result.stopped_early and result.step == 2
    ck = Checkpointer(os.path.join(workdir, "checkpoints"))
    assert ck.all_steps() == [2]
    ck.close()
    config.train.stop_after = 1
    assert train(config, workdir).step == 3  # resumes from the SIGTERM checkpoint


def test_sft_from_exported_params_trains_only_the_head(pretrained, tmp_path):
    pre_dir, _ = pretrained
    config = small_config(mesh=(2, 2, 2), steps=3)
    override(
        config,
        **{
            "data.source": "sft",
            "train.seq_len": 128,
            "train.init_params": os.path.join(pre_dir, "params"),
            "train.trainable": ("lm_head",),
            "checkpoint.every": 0,
            "optimizer.lr": 1e-3,
        },
    )
    workdir = str(tmp_path / "sft")
    result = train(config, workdir)
    assert result.step == 3
    before = jax.device_get(load_params(os.path.join(pre_dir, "params")))
    job = build_job(config)
    ck = Checkpointer(os.path.join(workdir, "checkpoints"))
    state, _, saved_config = ck.restore(3, job.spec.abstract)
    ck.close()
    pre = nnx.to_pure_dict(nnx.state(before))
    after = jax.device_get(state["params"])
    for name in ("embed_tokens",):
        np.testing.assert_array_equal(after[name], pre[name])
    for x, y in zip(jax.tree.leaves(after["layers"]), jax.tree.leaves(pre["layers"])):
        np.testing.assert_array_equal(x, y)
    assert np.abs(after["lm_head"] - pre["lm_head"]).max() > 1e-4
    counts = [
        int(x) for x in jax.tree.leaves(jax.device_get(state["opt_state"])) if np.ndim(x) == 0
    ]
    assert counts and all(c == 3 for c in counts)  # a fresh optimizer: 3 updates
    assert saved_config["train"]["trainable"] == ["lm_head"]


def test_repeated_nonfinite_steps_abort(tmp_path):
    config = small_config(mesh=(1, 1, 1), steps=6, max_nonfinite=2)
    override(config, **{"optimizer.lr": 1e30, "optimizer.warmup_steps": 0, "checkpoint.every": 0})
    with pytest.raises(TrainingAborted, match="2 non-finite steps in a row"):
        train(config, str(tmp_path / "run"), devices=jax.devices()[:1])
