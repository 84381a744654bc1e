"""PRM training through the trainer's SFT path: on a batch the data pipeline renders from
the PRM's records, the loss has weight only at step-tag positions; the two-way loss is
wired into the trainer's step; the setup configs validate."""

import json

import ml_collections
import numpy as np
import pytest

from configs.base import base_config
from eurollm_jax.prm import PRMSection, StepFormat, label_ids, split_config
from eurollm_jax.prm.train import make_trainer, prepare_records
from eurollm_jax.schema import ConfigError
from eurollm_jax.train import make_iterator
from eurollm_jax.train.loss import target_weights
from tests.prm.helpers import SOLUTIONS, tokenizer


def _data(tmp_path):
    path = tmp_path / "steps.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(4):
            for q, steps, labels in SOLUTIONS:
                lang = {"S": "en", "B": "de", "C": "fr"}[q[0]]
                f.write(json.dumps({"question": q, "steps": steps, "language": lang,
                                    "labels": ["+" if g else "-" for g in labels]},
                                   ensure_ascii=False) + "\n")
    return str(path)


def _config(train_data, steps=1):
    config = base_config("tiny", vocab_size=261, d_model=32, num_layers=1, num_heads=2,
                         num_kv_heads=1, head_dim=16, ffn_dim=64, max_seq_len=128,
                         compute_dtype="float32", attention_impl="xla")
    t = config.train
    t.steps, t.batch_size, t.seq_len, t.log_every = steps, 8, 128, 1
    config.checkpoint.every, config.checkpoint.async_save = 0, False
    config.checkpoint.export_params = False
    config.data.source, config.data.eval_fraction = "sft", 0.0
    config.eval.every = 0
    config.prm = ml_collections.ConfigDict({"train_data": train_data})
    return config


def test_loss_weight_only_at_step_tags_on_a_rendered_batch(tmp_path):
    tok, fmt = tokenizer(), StepFormat()
    prm, trainer_config = split_config(_config(_data(tmp_path)))
    counts = prepare_records(prm, tok, str(tmp_path / "records"), 128)
    assert counts["records"] == {"en": 12, "de": 8, "fr": 8}
    assert counts["load"]["solutions"] == {"en": 4, "de": 4, "fr": 4}
    trainer_config.data.sft_file = counts["records_file"]
    batch = next(iter(make_iterator(trainer_config)))
    weights = np.asarray(target_weights(batch))
    tokens, seg = batch["tokens"], batch["segment_ids"]
    plus, minus = label_ids(tok, fmt)
    tag_last = tok.encode(fmt.tag, add_bos=False)[-1]
    rows, cols = np.nonzero(weights)
    assert len(rows) > 0
    for b, t in zip(rows, cols):  # every weighted prediction is made at a tag, of a label
        assert tokens[b, t] == tag_last and tokens[b, t + 1] in (plus, minus)
    segments = sum(len(set(seg[b][seg[b] > 0])) for b in range(seg.shape[0]))
    assert len(rows) == segments  # one target per record, nowhere else
    # tags followed by the next step's text (earlier steps of a record) carry no weight
    followed = (tokens[:, :-1] == tag_last) & ~np.isin(tokens[:, 1:], (plus, minus))
    assert followed.any() and not weights[:, :-1][followed].any()


def test_two_way_loss_is_the_trainer_step(tmp_path):
    trainer, prm, _ = make_trainer(_config(_data(tmp_path)), str(tmp_path / "run"))
    assert prm.loss == "two_way"
    assert trainer.job.step_opts.vocab_subset == label_ids(tokenizer(), StepFormat())
    result = trainer.run()
    loss = result.last_metrics.get("loss")
    assert result.step == 1 and np.isfinite(loss)
    assert loss < 3.0  # a two-way CE starts near log 2, a 261-way one near log 261 = 5.6


def test_prm_section_checks(tmp_path):
    with pytest.raises(ConfigError, match="prm.loss"):
        PRMSection.from_mapping({"loss": "hinge"}, "prm")
    with pytest.raises(ConfigError, match="train_languages"):
        PRMSection.from_mapping({"setup": "mono", "train_languages": ["en", "de"]}, "prm")
    with pytest.raises(ConfigError, match="no prm section"):
        split_config(base_config("tiny"))
    config = _config(_data(tmp_path))
    config.data.source = "synthetic"
    with pytest.raises(ConfigError, match="data.source"):
        make_trainer(config, str(tmp_path / "x"))
