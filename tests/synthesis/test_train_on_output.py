"""The trainer runs SFT steps on the three pipelines' output (interface C: ``data.source=sft``,
``data.sft_file=<OUT>/sft`` for each job), one mixture source per pipeline."""

import math

import pytest

from eurollm_jax.data.sft import read_sft_records, record_source
from eurollm_jax.synthesis import run_local
from tests.synthesis.conftest import SEEDS, job_config, write_seeds
from tests.train.helpers import override, small_config


@pytest.mark.slow  # a trainer compile (~30-50 s on a busy 2-core box)
def test_trainer_runs_sft_steps_on_every_pipeline_output(scripted, tmp_path):
    from eurollm_jax.train import Trainer

    url, _ = scripted
    outs = []
    for pipeline in ("euroblocks", "xl_instruct", "context"):
        seeds = SEEDS[pipeline]
        extra = {}
        if pipeline == "context":  # short contexts keep the training sequences short
            seeds = [dict(s, question=s["question"] + " [brief]") for s in seeds]
            extra = {"context": {"num_distractors": 1, "min_context_words": 5}}
        seeds = write_seeds(tmp_path / f"{pipeline}.jsonl", seeds)
        report = run_local(job_config(pipeline, seeds, url, **extra), str(tmp_path / pipeline))
        assert report["sft_records"] > 0
        outs.append(str(tmp_path / pipeline / "sft"))
    spec = ",".join(outs)
    records = read_sft_records(spec)
    assert {record_source(r) for r in records} == {"euroblocks", "xl_instruct", "context"}
    longest = max(sum(len(m["content"].encode()) for m in r["messages"]) for r in records)
    seq_len = 1 << (longest + 64).bit_length()  # byte-level: every conversation fits
    assert seq_len <= 1024
    config = small_config(mesh=(1, 1, 1), steps=2)
    override(config, **{"data.source": "sft", "data.sft_file": spec, "data.eval_fraction": 0.0,
                        "train.seq_len": seq_len, "train.batch_size": 4,
                        "model.max_seq_len": seq_len, "checkpoint.every": 0, "eval.every": 0})
    import jax

    result = Trainer(config, str(tmp_path / "train"), devices=jax.devices()[:1]).run()
    assert result.step == 2
    assert math.isfinite(result.last_metrics["loss"]) and result.last_metrics["loss"] > 0
