"""EuroFilter quality classifier: learns clean running text vs word salad, boilerplate and
repeated lines (F1 >= 0.9 on a held-out split of different source texts), save/load, the
pipeline step, the EuroLLM-features encoder, and the train_classifier CLI."""

import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from eurollm_jax.fileio import write_jsonl
from eurollm_jax.filtering import Document
from eurollm_jax.filtering.classifier import (
    ClassifierConfig,
    EuroLLMFeaturizer,
    QualityFilter,
    evaluate,
    f1_scores,
    learnable_dataset,
    load_classifier,
    predict,
    save_classifier,
    train_classifier,
)
from eurollm_jax.filtering.sample_corpus import stdlib_paragraphs
from tests.filtering.conftest import sentences_by_language

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def splits(eu_sentences):
    """Train / held-out clean texts from disjoint sources (English docs + 24 languages)."""
    by = sentences_by_language(eu_sentences)
    multi = [" ".join(s[k:k + 3]) for s in by.values() for k in range(0, len(s), 3)]
    random.Random(0).shuffle(multi)
    clean = [p for p in stdlib_paragraphs() if len(p.split()) >= 25][:700]
    cut, mcut = int(0.8 * len(clean)), int(0.8 * len(multi))
    train = learnable_dataset(clean[:cut] + multi[:mcut], seed=0)
    test = learnable_dataset(clean[cut:] + multi[mcut:], seed=1)
    return train, test


@pytest.fixture(scope="module")
def trained(splits):
    (x, y, _), _ = splits
    return train_classifier(x, y, ClassifierConfig(), steps=300)


def test_learns_clean_text_vs_junk(trained, splits):
    _, (x, y, kinds) = splits
    metrics = evaluate(trained, x, y)
    print("classifier held-out:", json.dumps({k: round(v, 4) for k, v in metrics.items()}))
    assert metrics["f1_class1"] >= 0.9 and metrics["macro_f1"] >= 0.9
    assert metrics["weighted_f1"] >= 0.9
    _, prob = predict(trained, x)
    for kind in ("salad", "boilerplate", "repeated"):
        idx = [i for i, k in enumerate(kinds) if k == kind]
        assert np.mean(prob[idx] < 0.5) >= 0.75, kind


def test_save_load_and_pipeline_step(trained, splits, tmp_path):
    _, (x, y, kinds) = splits
    save_classifier(trained, str(tmp_path / "clf"), {"macro_f1": 1.0})
    loaded = load_classifier(str(tmp_path / "clf"))
    g1, p1 = predict(trained, x[:20])
    g2, p2 = predict(loaded, x[:20])
    np.testing.assert_allclose(p1, p2, atol=1e-6)
    np.testing.assert_allclose(g1, g2, atol=1e-5)
    step = QualityFilter(str(tmp_path / "clf"), threshold=2.0, head="binary")
    docs = [Document(str(i), t) for i, t in enumerate(x[:40])]
    kept, dropped = step(docs)
    assert len(kept) + len(dropped) == 40
    assert all("quality_score" in d.metadata and 0 <= d.metadata["quality_score"] <= 5
               for d in docs)
    clean_kept = sum(d.id in {k.id for k in kept} for d, k in zip(docs, kinds[:40])
                     if k == "clean")
    assert clean_kept >= 0.75 * kinds[:40].count("clean")
    assert {d.drop_reason for d in dropped} <= {"quality_classifier:below_threshold"}
    with pytest.raises(FileNotFoundError, match="train one"):
        load_classifier(str(tmp_path))
    from eurollm_jax.filtering import build_pipeline

    pipe = build_pipeline({"language_id": {"enabled": False}, "heuristics": {"enabled": False},
                           "quality": {"enabled": True, "model_dir": str(tmp_path / "clf"),
                                       "threshold": 0.0}})
    kept, dropped = pipe([Document("a", x[0])])
    assert kept and "quality_score" in kept[0].metadata


def test_f1_scores():
    m = f1_scores([1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
    assert m["f1_class1"] == pytest.approx(2 / 3) and m["f1_class0"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.5) / 2)
    assert m["weighted_f1"] == pytest.approx((3 * 2 / 3 + 2 * 0.5) / 5)


def test_eurollm_feature_encoder(chat_model_dir, splits):
    inference = pytest.importorskip("eurollm_jax.inference")
    model, tok = inference.load_for_inference(chat_model_dir)
    (x, y, _), _ = splits
    feats = EuroLLMFeaturizer(model, tok, max_tokens=64)(x[:24])
    assert feats.shape == (24, model.cfg.d_model if hasattr(model, "cfg") else feats.shape[1])
    cfg = ClassifierConfig(encoder="eurollm", feature_dim=feats.shape[1])
    clf = train_classifier(feats, y[:24], cfg, steps=20, batch_size=8)
    grades, probs = predict(clf, feats)
    assert grades.shape == (24,) and np.all((probs >= 0) & (probs <= 1))


def test_train_classifier_cli(splits, tmp_path):
    (x, y, _), _ = splits
    ann = tmp_path / "annotations.jsonl"
    write_jsonl(str(ann), ({"id": str(i), "text": t, "score": s}
                           for i, (t, s) in enumerate(zip(x[:120], y[:120]))))
    out = tmp_path / "clf"
    res = subprocess.run(
        [sys.executable, "-m", "launch.filter", "--job=train_classifier",
         "--config=configs/filter_classifier.py", f"--input={ann}", f"--output={out}",
         "--config.classifier.steps=20"],
        cwd=REPO, env=dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=""),
        capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"macro_f1", "weighted_f1", "regression_mae"} <= set(metrics)
    assert metrics["test_documents"] == 24
