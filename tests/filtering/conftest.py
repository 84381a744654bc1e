"""Fixtures for the filtering tests: EU sentences shipped in tests/filtering/data, the English
sample corpus, small input shards, and a tiny chat model + SentencePiece tokenizer for the
annotation job. Registers the ``datatrove`` and ``beam`` markers (optional peers)."""

import collections
import json
import os

import pytest

from eurollm_jax.fileio import read_jsonl

DATA = os.path.join(os.path.dirname(__file__), "data")


def pytest_configure(config):
    config.addinivalue_line("markers", "datatrove: needs datatrove[processing] + spacy (test extra)")
    config.addinivalue_line("markers", "beam: needs apache-beam (beam extra)")


@pytest.fixture(scope="session")
def eu_sentences():
    return read_jsonl(os.path.join(DATA, "eu_sentences.jsonl"))


@pytest.fixture(scope="session")
def english_docs():
    from eurollm_jax.filtering.sample_corpus import english_corpus

    return english_corpus(600, seed=0)


def write_jsonl(path, records, extra_lines=()):
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        for line in extra_lines:
            f.write(line)
    return str(path)


def sentences_by_language(eu_sentences) -> dict[str, list[str]]:
    by = collections.defaultdict(list)
    for r in eu_sentences:
        by[r["lang"]].append(r["text"])
    return by


def multilingual_records(eu_sentences, copies=1):
    """One document per language (its sentences joined by newlines), ``copies`` shuffles."""
    import random

    out = []
    for lang, sents in sorted(sentences_by_language(eu_sentences).items()):
        for k in range(copies):
            s = list(sents)
            random.Random(k).shuffle(s)
            out.append({"id": f"{lang}-{k}", "text": "\n".join(s), "lang_gold": lang})
    return out


@pytest.fixture(scope="session")
def chat_tokenizer_path(tmp_path_factory):
    """A tiny SentencePiece model with the ChatML tokens at ids 3 and 4."""
    spm = pytest.importorskip("sentencepiece")
    from eurollm_jax.filtering.sample_corpus import stdlib_paragraphs

    d = tmp_path_factory.mktemp("spm")
    prefix = str(d / "tokenizer")
    lines = [line for p in stdlib_paragraphs()[:300] for line in p.splitlines() if line.strip()]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines + ["Educational score: 3", "Score 0 1 2 3 4 5"]),
        model_prefix=prefix, vocab_size=256, model_type="unigram", character_coverage=1.0,
        user_defined_symbols=["<|im_start|>", "<|im_end|>"], unk_id=0, bos_id=1, eos_id=2,
        pad_id=-1, byte_fallback=False, minloglevel=2, num_threads=1)
    return prefix + ".model"


@pytest.fixture(scope="session")
def chat_model_dir(tmp_path_factory, chat_tokenizer_path):
    """An Orbax params dir of a tiny random EuroLLM-shaped model whose vocabulary matches."""
    import shutil

    from eurollm_jax import create_model, get_preset, save_params

    d = str(tmp_path_factory.mktemp("tiny_chat_model"))
    cfg = get_preset("tiny", vocab_size=256, d_model=64, num_layers=2, num_heads=4,
                     num_kv_heads=2, head_dim=16, ffn_dim=128, compute_dtype="float32",
                     max_seq_len=2048)
    save_params(create_model(cfg, seed=0), d)
    shutil.copy(chat_tokenizer_path, os.path.join(d, "tokenizer.model"))
    return d
