"""Tokenizer training: EuroLLM's SentencePiece settings and language-balanced sampling."""

import json
import math

import pytest

from eurollm_jax.tokenizer import (
    TokenizerTrainConfig,
    language_weights,
    sample_training_text,
    split_sentences,
)
from eurollm_jax.tokenizer.train import SamplingStats, corpus_from_inputs


def _varint(buf, i):
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 128:
            return value, i


def _proto_fields(buf):
    """Minimal protobuf wire-format reader (sentencepiece's *_pb2 needs protobuf >= 7)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        else:
            value, i = buf[i:i + 4], i + 4
        out.setdefault(field, []).append(value)
    return out


def test_trained_model_has_eurollm_settings(demo_tokenizer):
    model = _proto_fields(demo_tokenizer.serialized())
    trainer = _proto_fields(model[2][0])  # ModelProto.trainer_spec
    normalizer = _proto_fields(model[3][0])  # ModelProto.normalizer_spec
    assert trainer[3] == [2]  # model_type = BPE
    assert trainer[4] == [2000]  # vocab_size
    assert trainer[25] == [1] and trainer[35] == [1]  # split_digits, byte_fallback
    assert normalizer[1] == [b"identity"]
    assert normalizer[3] == [0] and normalizer[4] == [0]  # no dummy prefix, keep whitespace
    tok = demo_tokenizer
    assert all(tok.piece_to_id(f"<0x{b:02X}>") != tok.unk_id for b in range(256))
    assert not tok.id_to_piece(tok.encode("abc", add_bos=False)[0]).startswith("\u2581")


def test_language_weights_temperature():
    counts = {"en": 900, "mt": 100}
    assert language_weights(counts, 1.0) == pytest.approx({"en": 0.9, "mt": 0.1})
    assert language_weights(counts, math.inf) == pytest.approx({"en": 0.5, "mt": 0.5})
    w = language_weights(counts, 3.0)
    expected_en = 900 ** (1 / 3) / (900 ** (1 / 3) + 100 ** (1 / 3))
    assert w["en"] == pytest.approx(expected_en)
    with pytest.raises(ValueError, match="temperature"):
        language_weights(counts, 0)
    with pytest.raises(ValueError, match="no text"):
        language_weights({"en": 0}, 1.0)


def _corpus():
    docs = [(f"english document number {i} " * 10, "en") for i in range(400)]
    docs += [(f"dokument Malti numru {i} " * 10, "mt") for i in range(10)]
    return lambda: iter(docs)


def test_sampling_balances_languages_within_the_budget():
    corpus = _corpus()
    total = sum(len(t) for t, _ in corpus())
    stats = SamplingStats({}, {}, {}, {})
    budget = total // 2
    config = TokenizerTrainConfig(char_budget=budget, temperature=math.inf, seed=1)
    sentences = list(sample_training_text(corpus, config, stats))
    emitted = sum(len(s) for s in sentences)
    assert emitted <= budget + max(len(s) for s in sentences)
    shares = {k: v / emitted for k, v in stats.sampled_chars_by_language.items()}
    # Uniform over languages: Maltese (2.4% of the data) is upsampled to about half.
    assert shares["mt"] == pytest.approx(0.5, abs=0.06)
    assert stats.weights == pytest.approx({"en": 0.5, "mt": 0.5})
    assert any("Malti" in s for s in sentences)
    # Proportional sampling keeps the data's own shares.
    stats1 = SamplingStats({}, {}, {}, {})
    list(sample_training_text(corpus, TokenizerTrainConfig(char_budget=budget, temperature=1.0),
                              stats1))
    sampled = stats1.sampled_chars_by_language
    mt_share = sampled["mt"] / sum(sampled.values())
    assert mt_share == pytest.approx(stats1.chars_by_language["mt"] / total, abs=0.02)
    # Deterministic for a seed.
    assert list(sample_training_text(corpus, config)) == sentences


def test_split_sentences_limits_bytes_and_keeps_words():
    line = " ".join(f"wörd{i}" for i in range(300))
    text = "first line\n\n" + line + "\n" + "x" * 100
    pieces = list(split_sentences(text, 64))
    assert pieces[0] == "first line"
    assert all(len(p.encode("utf-8")) <= 64 for p in pieces)
    assert " ".join(pieces[1:-4]).split() == line.split()
    assert "".join(pieces[-4:]) == "x" * 100


def test_training_writes_model_and_report(demo_tokenizer):
    report_path = demo_tokenizer.path[: -len(".model")] + ".json"
    with open(report_path) as f:
        report = json.load(f)
    assert report["vocab_size"] == 2000 and report["sha256"] == demo_tokenizer.sha256
    sampled = report["sampling"]["sampled_chars_by_language"]
    assert len(sampled) == 24 and min(sampled.values()) > 0
    assert sum(sampled.values()) <= 600_000 + 20_000


def test_corpus_from_inputs_reads_every_format_and_counts_bad_input_once(tmp_path):
    from eurollm_jax.documents import BadInputReport, Document, ReaderConfig, ShardWriter

    zst = str(tmp_path / "kept.jsonl.zst")  # what launch.filter writes
    with ShardWriter(zst) as w:
        w.write(Document("a", "Labas rytas", {"lang": "lt"}).to_record())
        w.write(Document("b", "   ", {"lang": "lt"}).to_record())
    parquet = str(tmp_path / "more.parquet")
    with ShardWriter(parquet) as w:
        w.write(Document("c", "Dzień dobry", {"lang": "pl"}).to_record())
        w.write({"id": "d", "text": "no language"})
    report = BadInputReport()
    corpus = corpus_from_inputs([zst, parquet], ReaderConfig(), report)
    assert list(corpus()) == [("Labas rytas", "lt"), ("Dzień dobry", "pl")]
    assert list(corpus()) == [("Labas rytas", "lt"), ("Dzień dobry", "pl")]  # re-iterable
    assert report.files[zst]["counts"] == {"empty text": 1}  # first pass only
    assert report.files[parquet]["examples"] == [
        {"line": 1, "reason": "missing language field 'lang'"}]
