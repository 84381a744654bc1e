"""The tokenizer half of a Hugging Face model repository: writing it and reading it back.

This module owns the tokenizer files of an HF export, the files ``AutoTokenizer``,
``transformers.pipeline``, vLLM and lm-eval's ``hf`` model read next to the weights:

- ``tokenizer.model``: our SentencePiece proto, byte for byte.
- ``tokenizer.json``: a fast (``tokenizers``) tokenizer built from that proto so that it
  gives exactly our ids: BPE with the proto's pieces, merges ranked by piece score (what
  SentencePiece's BPE encoder applies), byte fallback, ``Metaspace`` without a dummy
  prefix and without splitting (our trainer: identity normalisation, ``add_dummy_prefix``
  off, extra whitespace kept, digits split by the vocabulary itself), the control pieces
  (``<unk> <s> </s> <|im_start|> <|im_end|>``) as special added tokens, BOS prepended.
  Needs the ``tokenizers`` package (``pip install transformers`` brings it); without it the
  other files are still written and a warning says so (``fast=True`` makes it an error).
- ``tokenizer_config.json``: class ``PreTrainedTokenizerFast`` (loads ``tokenizer.json``
  verbatim, in transformers 4 and 5), the special tokens and ids, ``add_bos_token`` true,
  ``add_eos_token`` false, no legacy/prefix-space handling, and ``chat_template``: BOS then
  ``chat_template.CHAT_TEMPLATE_JINJA``. ``apply_chat_template`` tokenises with
  ``add_special_tokens=False``, so the template carries BOS: its text is
  ``render_text(messages, bos="<s>")`` and its ids are ``render_ids(tokenizer, messages)``
  (BOS first, as we train and prompt).
- ``special_tokens_map.json``.
- ``generation_config.json``: merged (created if absent) with ``eos_token_id`` = the chat
  stop ids (``<|im_end|>``, then ``</s>``), ``bos_token_id`` and ``pad_token_id``.

``read_hf_tokenizer(directory)`` loads the ``Tokenizer`` back from ``tokenizer.model`` (or,
when only ``tokenizer.json`` is there, ``tokenizer_from_json`` rebuilds the SentencePiece
model from it: BPE pieces scored by merge rank; an HFTokenizerError names any feature it
cannot rebuild, e.g. a ByteLevel pre-tokenizer or a normaliser) and checks
``tokenizer_config.json`` agrees with it (special ids, BOS rule).

Known difference: a literal U+2581 ("▁") in the input text. Our ``Tokenizer.encode`` emits
its UTF-8 byte pieces so decoding is lossless; HF's ``Metaspace`` cannot tell it from a
space, so it encodes it as the space marker.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from typing import Any

from eurollm_jax.fileio import atomic_open, write_json
from eurollm_jax.tokenizer import chat_template
from eurollm_jax.tokenizer.chat_template import IM_END, IM_START, TokenizerError
from eurollm_jax.tokenizer.tokenizer import BOS, EOS, UNK, Tokenizer

log = logging.getLogger(__name__)

TOKENIZER_MODEL = "tokenizer.model"
TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
SPECIAL_TOKENS_MAP = "special_tokens_map.json"
GENERATION_CONFIG = "generation_config.json"

# SentencePiece ModelProto.SentencePiece.Type
_NORMAL, _UNKNOWN, _CONTROL, _UNUSED, _BYTE = 1, 2, 3, 5, 6
_SPACE_MARK = "\u2581"

# BOS in the Jinja template: HF's apply_chat_template does not add special tokens.
HF_CHAT_TEMPLATE = "{{- bos_token -}}" + chat_template.CHAT_TEMPLATE_JINJA


class HFTokenizerError(TokenizerError):
    """A tokenizer cannot be written as, or read from, Hugging Face tokenizer files."""


class _Piece:
    __slots__ = ("piece", "score", "type")

    def __init__(self, piece: str, score: float, type_: int):
        self.piece, self.score, self.type = piece, score, type_


def _processor(tokenizer: Tokenizer):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_proto=tokenizer.serialized())


def _pieces(tokenizer: Tokenizer) -> list[_Piece]:
    """Every piece with its score and SentencePiece type, read through the processor API.

    (SentencePiece user-defined pieces look like normal ones through that API; our trainer
    defines none, and the ids test in tests/checkpoint/test_hf_tokenizer.py checks the
    conversion on a trained model.)"""
    sp = _processor(tokenizer)
    out = []
    for i in range(sp.get_piece_size()):
        if sp.is_unknown(i):
            t = _UNKNOWN
        elif sp.is_control(i):
            t = _CONTROL
        elif sp.is_byte(i):
            t = _BYTE
        elif sp.is_unused(i):
            t = _UNUSED
        else:
            t = _NORMAL
        out.append(_Piece(sp.id_to_piece(i), sp.get_score(i), t))
    return out


def _check_convertible(tokenizer: Tokenizer, pieces: list[_Piece]) -> None:
    """HFTokenizerError unless the SentencePiece model behaves as tokenizer.json reproduces:
    BPE (normal pieces' scores fall with their id), no dummy prefix, whitespace kept,
    identity normalisation."""
    sp = _processor(tokenizer)
    problems = []
    scores = [p.score for p in pieces if p.type == _NORMAL]
    if any(b > a for a, b in zip(scores, scores[1:])):
        problems.append("piece scores do not fall with the piece id (not a BPE model)")
    first = sp.encode("a", out_type=str)
    if first and first[0].startswith(_SPACE_MARK):
        problems.append("add_dummy_prefix is on")
    probe = "a  b\u00a0\ufb01 \u212b"  # double space, NBSP, ligature, angstrom sign
    if sp.decode(sp.encode(probe)) != probe:
        problems.append("normalisation is not identity or extra whitespace is removed")
    if problems:
        raise HFTokenizerError(
            "this SentencePiece model cannot be written as an exact tokenizer.json: "
            + "; ".join(problems)
            + ". Models from `python -m launch.train_tokenizer` (identity normalisation, "
            "no dummy prefix, BPE) can; tokenizer.model alone can still be shipped."
        )


def _vocab_and_merges(pieces: list[_Piece]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The BPE vocab (piece -> id) and merges ranked as SentencePiece's BPE encoder merges:
    the adjacent pair whose concatenation is the highest-scoring piece goes first."""
    vocab = {p.piece: i for i, p in enumerate(pieces)}
    mergeable = {p.piece for p in pieces if p.type == _NORMAL}
    ranked = sorted(
        ((i, p) for i, p in enumerate(pieces) if p.type == _NORMAL and len(p.piece) > 1),
        key=lambda ip: (-ip[1].score, ip[0]),
    )
    merges: list[tuple[str, str]] = []
    for _, p in ranked:
        s = p.piece
        splits = [
            (s[:k], s[k:]) for k in range(1, len(s)) if s[:k] in mergeable and s[k:] in mergeable
        ]
        splits.sort(key=lambda ab: (vocab[ab[0]], vocab[ab[1]]))
        merges += splits
    return vocab, merges


def build_fast_tokenizer(tokenizer: Tokenizer):
    """A ``tokenizers.Tokenizer`` that encodes exactly as ``tokenizer`` (see module doc).

    ImportError when the ``tokenizers`` package is missing; HFTokenizerError when the
    SentencePiece model uses settings this conversion does not reproduce.
    """
    from tokenizers import AddedToken, decoders, models, pre_tokenizers, processors
    from tokenizers import Tokenizer as FastTokenizer

    pieces = _pieces(tokenizer)
    _check_convertible(tokenizer, pieces)
    if tokenizer.bos_id < 0 or tokenizer.unk_id < 0:
        raise HFTokenizerError("the SentencePiece model has no <s> or no <unk> id")
    vocab, merges = _vocab_and_merges(pieces)
    fast = FastTokenizer(models.BPE(
        vocab=vocab, merges=merges, unk_token=pieces[tokenizer.unk_id].piece,
        fuse_unk=True, byte_fallback=any(p.type == _BYTE for p in pieces), dropout=None,
    ))
    fast.normalizer = None
    fast.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement=_SPACE_MARK, prepend_scheme="never", split=False
    )
    fast.decoder = decoders.Sequence([
        decoders.Replace(_SPACE_MARK, " "), decoders.ByteFallback(), decoders.Fuse(),
    ])
    added = [
        AddedToken(p.piece, special=p.type in (_CONTROL, _UNKNOWN), normalized=False,
                   lstrip=False, rstrip=False, single_word=False)
        for p in pieces if p.type in (_CONTROL, _UNKNOWN)
    ]
    fast.add_special_tokens(added)
    bos = pieces[tokenizer.bos_id].piece
    fast.post_processor = processors.TemplateProcessing(
        single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
        special_tokens=[(bos, tokenizer.bos_id)],
    )
    return fast


def _piece(tokenizer: Tokenizer, i: int | None) -> str | None:
    return None if i is None or i < 0 else tokenizer.id_to_piece(i)


def tokenizer_config(tokenizer: Tokenizer, model_max_length: int | None = None) -> dict[str, Any]:
    """``tokenizer_config.json``'s content for ``tokenizer``."""
    decoder = {
        str(i): {"content": p.piece, "lstrip": False, "normalized": False, "rstrip": False,
                 "single_word": False, "special": True}
        for i, p in enumerate(_pieces(tokenizer)) if p.type in (_CONTROL, _UNKNOWN)
    }
    extra = [t for t in (IM_START, IM_END) if tokenizer.piece_to_id(t) != tokenizer.unk_id]
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "add_bos_token": True,
        "add_eos_token": False,
        "add_prefix_space": False,
        "legacy": False,
        "clean_up_tokenization_spaces": False,
        "spaces_between_special_tokens": False,
        "bos_token": _piece(tokenizer, tokenizer.bos_id),
        "eos_token": _piece(tokenizer, tokenizer.eos_id),
        "unk_token": _piece(tokenizer, tokenizer.unk_id),
        "pad_token": _piece(tokenizer, tokenizer.pad_id),
        "additional_special_tokens": extra,
        "added_tokens_decoder": decoder,
    }
    if model_max_length:
        config["model_max_length"] = int(model_max_length)
    if chat_template.has_markers(tokenizer):
        config["chat_template"] = HF_CHAT_TEMPLATE
    return config


def special_tokens_map(tokenizer: Tokenizer) -> dict[str, Any]:
    config = tokenizer_config(tokenizer)
    return {k: config[k] for k in
            ("bos_token", "eos_token", "unk_token", "pad_token", "additional_special_tokens")}


def _merge_generation_config(tokenizer: Tokenizer, path: str) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if os.path.exists(path):
        with open(path) as f:
            config = json.load(f)
    stops = (chat_template.stop_ids(tokenizer) if chat_template.has_markers(tokenizer)
             else [tokenizer.eos_id])
    config.update({
        "bos_token_id": tokenizer.bos_id,
        "eos_token_id": stops if len(stops) > 1 else stops[0],
        "pad_token_id": tokenizer.pad_id,
    })
    return config


def write_hf_tokenizer(
    tokenizer: Tokenizer,
    directory: str,
    *,
    fast: bool | None = None,
    model_max_length: int | None = None,
    generation_config: bool = True,
) -> list[str]:
    """Write ``tokenizer``'s Hugging Face files into ``directory``; the names written.

    ``fast``: None writes ``tokenizer.json`` when the ``tokenizers`` package is importable
    (warning otherwise), True requires it (ImportError), False skips it.
    ``generation_config``: merge the chat stop ids into ``generation_config.json``.
    """
    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(
            f"write_hf_tokenizer needs an eurollm_jax.tokenizer.Tokenizer (SentencePiece), got "
            f"{type(tokenizer).__name__}"
        )
    os.makedirs(directory, exist_ok=True)
    written = []
    tokenizer.save(os.path.join(directory, TOKENIZER_MODEL))
    written.append(TOKENIZER_MODEL)
    if fast is not False:
        try:
            import tokenizers  # noqa: F401
        except ImportError as e:
            if fast:
                raise ImportError(
                    "writing tokenizer.json needs the `tokenizers` package: pip install "
                    "transformers"
                ) from e
            log.warning(
                "not writing %s in %s: the `tokenizers` package is missing (pip install "
                "transformers). AutoTokenizer needs tokenizer.json to load this directory; "
                "tokenizer.model, %s and %s are written.",
                TOKENIZER_JSON, directory, TOKENIZER_CONFIG, SPECIAL_TOKENS_MAP,
            )
        else:
            text = build_fast_tokenizer(tokenizer).to_str(pretty=True)
            with atomic_open(os.path.join(directory, TOKENIZER_JSON), "w") as f:
                f.write(text)
            written.append(TOKENIZER_JSON)
    write_json(os.path.join(directory, TOKENIZER_CONFIG),
               tokenizer_config(tokenizer, model_max_length), sort_keys=False)
    write_json(os.path.join(directory, SPECIAL_TOKENS_MAP), special_tokens_map(tokenizer),
               sort_keys=False)
    written += [TOKENIZER_CONFIG, SPECIAL_TOKENS_MAP]
    if generation_config:
        path = os.path.join(directory, GENERATION_CONFIG)
        write_json(path, _merge_generation_config(tokenizer, path), sort_keys=False)
        written.append(GENERATION_CONFIG)
    return written


# --------------------------------------------------------------------------- tokenizer.json only
def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int32s are 10-byte two's complement
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value) -> bytes:
    """One protobuf field: str/bytes (length-delimited), float (fixed32), bool/int (varint)."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if isinstance(value, bytes):
        return _varint(number << 3 | 2) + _varint(len(value)) + value
    if isinstance(value, float):
        return _varint(number << 3 | 5) + struct.pack("<f", value)
    return _varint(number << 3 | 0) + _varint(int(value))


def _unsupported(path: str, what: str) -> HFTokenizerError:
    return HFTokenizerError(
        f"{path}: {what} is not supported without tokenizer.model (tokenizer.json is read "
        "only for SentencePiece-style BPE: Metaspace pre-tokenizer, no normaliser, byte "
        "fallback); put the model's tokenizer.model next to it"
    )


def tokenizer_from_json(path: str, special: dict[str, str] | None = None) -> Tokenizer:
    """A ``Tokenizer`` rebuilt from a SentencePiece-style ``tokenizer.json`` (what
    ``write_hf_tokenizer`` writes, and Llama/EuroLLM-style fast tokenizers): a SentencePiece
    BPE model whose piece scores rank pieces in the order the merges make them.
    ``special`` maps "bos_token"/"eos_token"/"unk_token"/"pad_token" to pieces (default
    ``<s> </s> <unk>``, no pad). HFTokenizerError names the first unsupported feature
    (another model type, a normaliser, a ByteLevel pre-tokenizer, subword prefixes...)."""
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    model = spec.get("model") or {}
    if model.get("type") != "BPE":
        raise _unsupported(path, f"model type {model.get('type')!r}")
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        raise _unsupported(path, "a continuing_subword_prefix/end_of_word_suffix")
    if model.get("dropout"):
        raise _unsupported(path, "BPE dropout")
    if spec.get("normalizer") is not None:
        raise _unsupported(path, f"the normalizer {spec['normalizer'].get('type')!r}")
    pre = spec.get("pre_tokenizer") or {}
    if pre.get("type") != "Metaspace" or pre.get("replacement") != _SPACE_MARK or pre.get("split"):
        raise _unsupported(path, f"the pre_tokenizer {pre.get('type')!r} "
                                 f"(only Metaspace with replacement {_SPACE_MARK!r}, split false)")
    scheme = pre.get("prepend_scheme", "always")
    if scheme not in ("never", "first"):
        raise _unsupported(path, f"Metaspace prepend_scheme {scheme!r}")
    vocab: dict[str, int] = dict(model.get("vocab") or {})
    added = {t["id"]: t for t in spec.get("added_tokens") or []}
    for i, t in added.items():
        if not t.get("special"):
            raise _unsupported(path, f"the non-special added token {t['content']!r}")
        vocab.setdefault(t["content"], i)
    by_id = {i: p for p, i in vocab.items()}
    if sorted(by_id) != list(range(len(by_id))) or len(by_id) != len(vocab):
        raise HFTokenizerError(f"{path}: token ids are not 0..{len(vocab) - 1}, each once")
    merges = model.get("merges") or []
    rank: dict[str, int] = {}
    for r, merge in enumerate(merges):
        a, b = merge.split(" ", 1) if isinstance(merge, str) else merge
        rank.setdefault(a + b, r)
    names = {"bos_token": BOS, "eos_token": EOS, "unk_token": UNK, "pad_token": None}
    names.update(special or {})
    ids = {k: (vocab.get(v, -1) if v else -1) for k, v in names.items()}
    for k in ("bos_token", "eos_token", "unk_token"):
        if ids[k] < 0:
            raise HFTokenizerError(f"{path}: {k} {names[k]!r} is not in the vocabulary")
    pieces = b""
    n_merges = len(merges)
    for i in range(len(by_id)):
        piece = by_id[i]
        if i == ids["unk_token"]:
            kind, score = _UNKNOWN, 0.0
        elif i in added:
            kind, score = _CONTROL, 0.0
        elif len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            kind, score = _BYTE, 0.0
        else:
            kind = _NORMAL
            score = -float(rank[piece]) if piece in rank else -float(n_merges + i)
        pieces += _field(1, _field(1, piece) + _field(2, score) + _field(3, kind))
    trainer = b"".join([
        _field(3, 2), _field(4, len(by_id)), _field(35, bool(model.get("byte_fallback"))),
        _field(40, ids["unk_token"]), _field(41, ids["bos_token"]), _field(42, ids["eos_token"]),
        _field(43, ids["pad_token"]),
    ])
    normalizer = b"".join([
        _field(1, "identity"), _field(3, scheme == "first"), _field(4, False), _field(5, True),
    ])
    proto = pieces + _field(2, trainer) + _field(3, normalizer)
    import sentencepiece as spm

    try:
        processor = spm.SentencePieceProcessor(model_proto=proto)
    except RuntimeError as e:
        raise HFTokenizerError(f"{path}: not convertible to a SentencePiece model: {e}") from e
    return Tokenizer(processor, path)


def read_hf_tokenizer(directory: str) -> Tokenizer:
    """The ``Tokenizer`` of a Hugging Face model directory: its ``tokenizer.model``, else
    one rebuilt from its ``tokenizer.json`` (``tokenizer_from_json``; an error names any
    feature that cannot be rebuilt).

    When ``tokenizer_config.json`` is there, its special tokens must name the model's own
    pieces (HFTokenizerError says which does not).
    """
    model = os.path.join(directory, TOKENIZER_MODEL)
    config_path = os.path.join(directory, TOKENIZER_CONFIG)
    config: dict[str, Any] = {}
    if os.path.exists(config_path):
        with open(config_path) as f:
            config = json.load(f)
    if os.path.exists(model):
        tokenizer = Tokenizer.load(model)
    elif os.path.exists(os.path.join(directory, TOKENIZER_JSON)):
        special = {}
        for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
            value = config.get(key)
            value = value.get("content") if isinstance(value, dict) else value
            if value:
                special[key] = value
        tokenizer = tokenizer_from_json(os.path.join(directory, TOKENIZER_JSON), special)
    else:
        raise HFTokenizerError(f"{directory} has neither {TOKENIZER_MODEL} nor {TOKENIZER_JSON}")
    if config:
        expected = {"bos_token": tokenizer.bos_id, "eos_token": tokenizer.eos_id,
                    "unk_token": tokenizer.unk_id}
        for key, i in expected.items():
            value = config.get(key)
            if isinstance(value, dict):
                value = value.get("content")
            if value is not None and _piece(tokenizer, i) != value:
                raise HFTokenizerError(
                    f"{config_path}: {key} is {value!r} but {TOKENIZER_MODEL} has "
                    f"{_piece(tokenizer, i)!r} at id {i}"
                )
        if config.get("add_bos_token") is False:
            raise HFTokenizerError(
                f"{config_path}: add_bos_token is false; EuroLLM models expect BOS first "
                "(our Tokenizer always adds it)"
            )
    return tokenizer


__all__ = [
    "write_hf_tokenizer", "read_hf_tokenizer", "tokenizer_from_json", "build_fast_tokenizer", "tokenizer_config",
    "special_tokens_map", "HF_CHAT_TEMPLATE", "HFTokenizerError",
]
