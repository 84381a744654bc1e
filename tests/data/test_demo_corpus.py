"""The offline demo corpus: real text in all 24 EU languages, deterministic, fast."""

import importlib.util
import time

from eurollm_jax.data import EU_LANGUAGES, demo_corpus
from eurollm_jax.fileio import read_json, read_jsonl


def test_demo_corpus_covers_24_languages_with_real_text(demo_dir):
    train = read_jsonl(str(demo_dir / "train.jsonl"))
    heldout = read_jsonl(str(demo_dir / "heldout.jsonl"))
    assert {r["lang"] for r in train} == set(EU_LANGUAGES)
    assert all(set(r) == {"id", "text", "lang", "source"} for r in train + heldout)
    assert not {r["id"] for r in train} & {r["id"] for r in heldout}
    udhr = {r["lang"] for r in train + heldout if r["source"] == "udhr"}
    assert udhr == set(EU_LANGUAGES)  # gflanguages ships the UDHR for every EU language
    text = {lang: " ".join(r["text"] for r in train + heldout if r["lang"] == lang)
            for lang in EU_LANGUAGES}
    assert "άνθρωποι" in text["el"] and "ħ" in text["mt"] and "á" in text["ga"]
    assert "права" in text["bg"] and "Menschen" in text["de"]
    assert len(heldout) >= 24 and len({r["lang"] for r in heldout}) >= 20
    stats = read_json(str(demo_dir / "stats.json"))
    expected_sources = {"udhr"} | ({"spacy"} if importlib.util.find_spec("spacy") else set())
    assert expected_sources <= set(stats["sources_found"]) and stats["missing_languages"] == []


def test_demo_corpus_is_deterministic_and_fast(demo_dir, tmp_path):
    start = time.perf_counter()
    stats = demo_corpus.build(str(tmp_path))
    assert time.perf_counter() - start < 20  # seconds, on a loaded 2-core machine
    for split in ("train", "heldout"):
        new, old = tmp_path / f"{split}.jsonl", demo_dir / f"{split}.jsonl"
        assert new.read_bytes() == old.read_bytes()
    assert stats["splits"]["train"]["docs"] > 24


def test_split_keeps_a_heldout_doc_per_group():
    docs = [{"text": f"t{i}", "lang": "mt", "source": "s"} for i in range(5)]
    docs += [{"text": "only", "lang": "ga", "source": "s"}]
    train, heldout = demo_corpus.split_heldout(docs, 0.1)
    assert [d["lang"] for d in heldout] == ["mt"] and len(train) == 5
