"""SentencePiece tokenizer training with EuroLLM's choices and language-balanced sampling.

EuroLLM: BPE, byte fallback, 128k vocabulary, special ids ``<unk>``=0 ``<s>``=1 ``</s>``=2
``<|im_start|>``=3 ``<|im_end|>``=4, no dummy space prefix. Not public (so config fields here):
digit splitting (on by default, the common choice) and the exact training mix.

Lossless text: identity normalisation, extra whitespace kept, whitespace-only pieces allowed,
byte fallback for every character outside the learned pieces, so decode(encode(x)) == x.

Training text is streamed from a corpus (a callable returning a fresh iterable of
``(text, language)`` pairs, read twice; ``corpus_from_inputs`` makes one from document inputs
read by ``eurollm_jax.documents``): the first pass counts characters per language, the
second samples documents so that language ``l`` gets a share ``q_l ∝ n_l^(1/T)`` of a total
character budget (temperature ``T``: 1 = proportional to the data, larger = flatter,
``inf`` = uniform). Languages below their share are repeated (upsampled), those above are
subsampled, and the stream stops at the budget. Documents are cut into lines (SentencePiece
sentences) of at most ``max_sentence_bytes``.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import time
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import sentencepiece as spm

from eurollm_jax.documents import BadInputReport, ReaderConfig, iter_documents
from eurollm_jax.fileio import write_json
from eurollm_jax.tokenizer.fertility import fertility_report, heldout_texts
from eurollm_jax.tokenizer.tokenizer import IM_END, IM_START, SPECIAL_TOKENS, Tokenizer

Corpus = Callable[[], Iterable[tuple[str, str]]]


@dataclasses.dataclass
class TokenizerTrainConfig:
    """Tokenizer training settings (defaults: EuroLLM's real run; tests shrink vocab/budget)."""

    vocab_size: int = 128_000
    model_type: str = "bpe"
    char_budget: int = 2_000_000_000
    temperature: float = 3.0
    character_coverage: float = 0.9999
    split_digits: bool = True
    byte_fallback: bool = True
    max_sentence_bytes: int = 16_384
    seed: int = 0
    num_threads: int = max(os.cpu_count() or 1, 1)
    # Caps the sentences SentencePiece loads (it shuffles when it has more); 0 = all.
    input_sentence_size: int = 0
    # Extra SentencePieceTrainer options (override anything above), e.g.
    # {"train_extremely_large_corpus": True} for 128k vocabularies on large corpora.
    extra_options: dict = dataclasses.field(default_factory=dict)

    def sentencepiece_options(self) -> dict:
        options = dict(
            model_type=self.model_type,
            vocab_size=self.vocab_size,
            character_coverage=self.character_coverage,
            byte_fallback=self.byte_fallback,
            split_digits=self.split_digits,
            add_dummy_prefix=False,
            remove_extra_whitespaces=False,
            normalization_rule_name="identity",
            allow_whitespace_only_pieces=True,
            unk_id=0,
            bos_id=1,
            eos_id=2,
            pad_id=-1,
            control_symbols=[IM_START, IM_END],
            max_sentence_length=self.max_sentence_bytes,
            num_threads=self.num_threads,
            input_sentence_size=self.input_sentence_size,
            shuffle_input_sentence=True,
            seed_sentencepiece_size=1_000_000,
            minloglevel=2,
        )
        options.update(self.extra_options)
        return options


def language_weights(chars_by_language: dict[str, int], temperature: float) -> dict[str, float]:
    """Sampling shares ``q_l ∝ n_l^(1/T)`` (``T=inf``: uniform over languages with data)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 (1 = proportional), got {temperature}")
    present = {k: v for k, v in chars_by_language.items() if v > 0}
    if not present:
        raise ValueError("the corpus has no text: every language has 0 characters")
    alpha = 0.0 if math.isinf(temperature) else 1.0 / temperature
    raw = {k: float(v) ** alpha for k, v in present.items()}
    total = sum(raw.values())
    return {k: raw[k] / total for k in sorted(raw)}


def split_sentences(text: str, max_bytes: int) -> Iterator[str]:
    """Non-empty lines of ``text``, long lines cut at spaces into pieces of <= ``max_bytes``."""
    for line in text.split("\n"):
        if not line.strip():
            continue
        if len(line.encode("utf-8")) <= max_bytes:
            yield line
            continue
        current = ""
        for word in line.split(" "):
            candidate = word if not current else current + " " + word
            if len(candidate.encode("utf-8")) <= max_bytes:
                current = candidate
                continue
            if current:
                yield current
            # A single word longer than the limit is cut by characters.
            while len(word.encode("utf-8")) > max_bytes:
                cut = max_bytes // 4
                yield word[:cut]
                word = word[cut:]
            current = word
        if current:
            yield current


@dataclasses.dataclass
class SamplingStats:
    chars_by_language: dict
    weights: dict
    budget_by_language: dict
    sampled_chars_by_language: dict
    sampled_sentences: int = 0


def sample_training_text(
    corpus: Corpus, config: TokenizerTrainConfig, stats: SamplingStats | None = None
) -> Iterator[str]:
    """Stream language-balanced training sentences from ``corpus`` (see module docstring).

    ``stats`` (optional) is filled with the counts, shares and per-language budgets.
    """
    counts: dict[str, int] = {}
    for text, lang in corpus():
        counts[lang] = counts.get(lang, 0) + len(text)
    weights = language_weights(counts, config.temperature)
    budget = min(config.char_budget, sum(counts.values()))
    budgets = {lang: budget * w for lang, w in weights.items()}
    rates = {lang: budgets[lang] / counts[lang] for lang in weights}
    if stats is not None:
        stats.chars_by_language = dict(sorted(counts.items()))
        stats.weights = weights
        stats.budget_by_language = {k: int(v) for k, v in budgets.items()}
        stats.sampled_chars_by_language = {k: 0 for k in weights}
    rng = np.random.default_rng(config.seed)
    emitted = 0
    for text, lang in corpus():
        rate = rates.get(lang, 0.0)
        repeats = int(rate) + (1 if rng.random() < rate - int(rate) else 0)
        if repeats == 0:
            continue
        sentences = list(split_sentences(text, config.max_sentence_bytes))
        for _ in range(repeats):
            for sentence in sentences:
                if emitted >= config.char_budget:
                    return
                emitted += len(sentence)
                if stats is not None:
                    stats.sampled_chars_by_language[lang] += len(sentence)
                    stats.sampled_sentences += 1
                yield sentence


def train_tokenizer(
    corpus: Corpus,
    output_path: str,
    config: TokenizerTrainConfig | None = None,
    bad_input=None,
) -> tuple[Tokenizer, dict]:
    """Train a SentencePiece model on ``corpus``; write ``output_path`` (``.model``) atomically.

    Also writes ``<output_path minus .model>.json`` with the config and sampling statistics
    (and ``bad_input``: the ``BadInputReport`` the corpus fills while it is read, if given).
    Returns the loaded ``Tokenizer`` and that report dict.
    """
    config = config or TokenizerTrainConfig()
    stats = SamplingStats({}, {}, {}, {})
    model = io.BytesIO()
    start = time.perf_counter()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=sample_training_text(corpus, config, stats),
            model_writer=model,
            **config.sentencepiece_options(),
        )
    except RuntimeError as e:
        hint = ""
        if "Vocabulary size" in str(e) or "vocab_size" in str(e):
            hint = (" (the vocabulary is too large for this little text: lower vocab_size, "
                    "or pass extra_options={'hard_vocab_limit': False})")
        raise RuntimeError(f"SentencePiece training failed: {e}{hint}") from e
    seconds = time.perf_counter() - start
    tokenizer = Tokenizer.from_serialized(model.getvalue())
    for expected, piece in enumerate(SPECIAL_TOKENS):
        assert tokenizer.id_to_piece(expected) == piece, (expected, tokenizer.id_to_piece(expected))
    tokenizer.path = output_path
    tokenizer.save(output_path)
    report = {
        "model": os.path.abspath(output_path),
        "sha256": tokenizer.sha256,
        "vocab_size": tokenizer.vocab_size,
        "seconds": round(seconds, 3),
        "config": dataclasses.asdict(config),
        "sampling": dataclasses.asdict(stats),
    }
    if bad_input is not None:
        report["bad_input"] = bad_input.to_dict()
    stem = output_path[: -len(".model")] if output_path.endswith(".model") else output_path
    write_json(stem + ".json", report)
    return tokenizer, report


def corpus_from_inputs(
    specs: Sequence[str], config: ReaderConfig | None = None,
    report: BadInputReport | None = None,
) -> Corpus:
    """A re-iterable ``(text, lang)`` corpus over document inputs (JSONL plain/.gz/.zst,
    Parquet, ``tfds:`` specs; see ``eurollm_jax.documents``).

    Bad records are skipped; they are recorded in ``report`` on the first pass only.
    """
    config = config or ReaderConfig()
    specs = list(specs)
    state = {"first": True}

    def iterate():
        rep = report if (report is not None and state["first"]) else BadInputReport()
        state["first"] = False
        for spec in specs:
            for doc in iter_documents(spec, config, rep):
                if doc.text is not None:
                    yield doc.text, doc.lang

    return iterate


def jsonl_corpus(
    paths: Iterable[str], text_field: str = "text", lang_field: str = "lang"
) -> Corpus:
    """``corpus_from_inputs`` with these field names; records without a language count as
    ``"unknown"``, bad records are skipped uncounted."""
    config = ReaderConfig(text_field=text_field, lang_field=lang_field, default_lang="unknown")
    return corpus_from_inputs(list(paths), config)


def train_and_report(
    inputs: Sequence[str],
    output_path: str,
    config: TokenizerTrainConfig | None = None,
    heldout: Sequence[str] = (),
    compare: dict[str, str] | None = None,
    report_dir: str | None = None,
    name: str = "new",
) -> dict:
    """Train on document ``inputs`` and, given ``heldout`` inputs, write a fertility report
    comparing the new tokenizer with ``compare`` ({name: model path}).

    Returns the training report with ``bad_input`` and (if computed) ``fertility_table``.
    """
    bad_input = BadInputReport()
    corpus = corpus_from_inputs(list(inputs), ReaderConfig(default_lang="unknown"), bad_input)
    tokenizer, report = train_tokenizer(corpus, output_path, config, bad_input)
    if heldout:
        toks = {name: tokenizer}
        for other, path in (compare or {}).items():
            toks[other] = Tokenizer.load(path)
        report_dir = report_dir or os.path.dirname(os.path.abspath(output_path))
        _, table = fertility_report(toks, heldout_texts(heldout), report_dir)
        report["fertility_table"] = table
        report["fertility_dir"] = report_dir
    return report
