"""Fertility report: tokens per word and character by language, side by side, PNG chart."""

import json

import pytest

from eurollm_jax.fileio import read_jsonl
from eurollm_jax.tokenizer import (
    Tokenizer,
    TokenizerTrainConfig,
    fertility,
    fertility_report,
    jsonl_corpus,
    texts_by_language,
    train_tokenizer,
)


@pytest.fixture(scope="module")
def small_tokenizer(demo_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("small") / "small.model"
    train_tokenizer(jsonl_corpus([str(demo_dir / "train.jsonl")]), str(path),
                    TokenizerTrainConfig(vocab_size=700, num_threads=2, char_budget=300_000))
    return Tokenizer.load(str(path))


def test_fertility_counts(demo_tokenizer):
    texts = ["Alle Menschen sind frei", "und gleich an Würde"]
    f = fertility(demo_tokenizer, texts)
    tokens = sum(len(demo_tokenizer.encode(t, add_bos=False)) for t in texts)
    assert (f["words"], f["chars"], f["tokens"], f["docs"]) == (8, 42, tokens, 2)
    assert f["tokens_per_word"] == tokens / 8 and f["tokens_per_char"] == tokens / 42


def test_report_side_by_side_with_png(demo_tokenizer, small_tokenizer, demo_dir, tmp_path):
    texts = texts_by_language(read_jsonl(str(demo_dir / "heldout.jsonl")))
    rows, table = fertility_report({"v2000": demo_tokenizer, "v700": small_tokenizer}, texts,
                                   str(tmp_path))
    assert [r["lang"] for r in rows[:-1]] == sorted(texts) and rows[-1]["lang"] == "ALL"
    for lang in texts:
        assert f"| {lang} |" in table
    # The larger vocabulary needs fewer tokens per word on held-out text, overall and in
    # nearly every language.
    assert rows[-1]["v2000"]["tokens_per_word"] < rows[-1]["v700"]["tokens_per_word"]
    better = sum(r["v2000"]["tokens_per_word"] < r["v700"]["tokens_per_word"] for r in rows[:-1])
    assert better >= len(rows) - 3
    png = (tmp_path / "fertility.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert json.loads((tmp_path / "fertility.json").read_text())[-1]["lang"] == "ALL"
    assert (tmp_path / "fertility.md").read_text().startswith("| lang |")
