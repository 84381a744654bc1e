"""The SFT record schema: what every SFT source writes and what the trainer reads.

Synthesis jobs (EuroBlocks, XL-Instruct, context synthesis), distilled RAG traces, PRM data
and hand-written conversations all meet the trainer here. An SFT record is one JSON line in
one of two forms, plus any metadata keys (kept in the files, ignored by training):

- a conversation ``{"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}``:
  rendered by the one ChatML template (``eurollm_jax.tokenizer.chat_template``), loss on the
  assistant contents and their ``<|im_end|>``; at least one assistant turn;
- pre-rendered ``{"tokens": [int, ...], "loss_mask": [0|1, ...]}`` of equal length, for recipes
  that need their own mask (a PRM's step-tag positions): ``loss_mask[t] = 1`` makes token
  ``t`` a training target, predicted from ``tokens[:t]``; at least one target, never token 0.

An optional ``"source"`` (a non-empty string) names the pipeline source the record belongs to,
the key of ``data.mixture`` and of ``DataIterator.set_mixture_weights`` ("sft" when absent).

``read_sft_records(spec)`` reads a file, a glob, a directory (every ``*.jsonl``,
``*.jsonl.gz`` and ``*.jsonl.zst`` below it) or a comma-separated list of those and validates
every record up front: a malformed one raises ``SFTRecordError`` naming the file, the line,
what is wrong and the fix, before any training starts.
"""

from __future__ import annotations

import glob
import io
import json
import os
from typing import Any, Iterator, Mapping

from eurollm_jax.documents.reader import expand_inputs, open_binary
from eurollm_jax.tokenizer import chat_template

ROLES = ("system", "user", "assistant")
DEFAULT_SOURCE = "sft"
SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst")
SCHEMA_HINT = (
    'write {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", '
    '"content": "..."}]} or {"tokens": [ids], "loss_mask": [0/1 per token]}'
)


class SFTRecordError(ValueError):
    """An SFT record that the trainer cannot use; the message names where and the fix."""


def _fail(where: str, what: str) -> SFTRecordError:
    return SFTRecordError(f"SFT record {where}: {what}; {SCHEMA_HINT}")


def validate_sft_record(record: Any, where: str = "record") -> None:
    """Raises ``SFTRecordError`` unless ``record`` is a usable SFT record (module docstring)."""
    if not isinstance(record, Mapping):
        raise _fail(where, f"expected a JSON object, got {type(record).__name__}")
    source = record.get("source", DEFAULT_SOURCE)
    if not isinstance(source, str) or not source:
        raise _fail(where, f"'source' must be a non-empty string, got {source!r}")
    has_messages, has_tokens = "messages" in record, "tokens" in record
    if has_messages == has_tokens:
        raise _fail(where, "needs exactly one of 'messages' or 'tokens' (found "
                    f"{'both' if has_messages else 'neither'}; keys: {sorted(record)[:8]})")
    if has_messages:
        messages = record["messages"]
        if not isinstance(messages, list) or not messages:
            raise _fail(where, "'messages' must be a non-empty list of turns")
        for i, turn in enumerate(messages):
            if not isinstance(turn, Mapping) or not isinstance(turn.get("content"), str):
                raise _fail(where, f"turn {i} must be an object with a string 'content'")
            if turn.get("role") not in ROLES:
                raise _fail(where, f"turn {i} has role {turn.get('role')!r}; use one of "
                            f"{', '.join(ROLES)}")
        if not any(t["role"] == "assistant" for t in messages):
            raise _fail(where, "no assistant turn: nothing to train on")
        return
    tokens, mask = record["tokens"], record.get("loss_mask")
    if not isinstance(tokens, list) or len(tokens) < 2:
        raise _fail(where, "'tokens' must be a list of at least 2 token ids")
    if not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in tokens):
        raise _fail(where, "'tokens' must hold non-negative integer ids")
    if not isinstance(mask, list) or len(mask) != len(tokens):
        raise _fail(where, f"'loss_mask' must be a list as long as 'tokens' ({len(tokens)}), "
                    f"got {len(mask) if isinstance(mask, list) else type(mask).__name__}")
    if not all(m in (0, 1) and not isinstance(m, float) for m in mask):
        raise _fail(where, "'loss_mask' entries must be 0 or 1")
    if mask[0]:
        raise _fail(where, "loss_mask[0] must be 0: the first token has no prefix to predict it")
    if not any(mask):
        raise _fail(where, "'loss_mask' has no 1: nothing to train on")


def sft_files(spec: str) -> list[str]:
    """The record files of ``spec``: files, globs, directories (``*.jsonl[.gz|.zst]`` below
    them), comma-separated."""
    patterns = []
    for part in (p.strip() for p in str(spec).split(",")):
        if not part:
            continue
        if os.path.isdir(part):
            found = sorted(f for s in SUFFIXES
                           for f in glob.glob(os.path.join(part, "**", "*" + s), recursive=True))
            if not found:
                raise FileNotFoundError(f"SFT directory {part!r} holds no "
                                        f"{'/'.join(SUFFIXES)} files")
            patterns += found
        else:
            patterns.append(part)
    if not patterns:
        raise FileNotFoundError("no SFT inputs given: set data.sft_file to a file, glob or "
                                "directory of JSON lines")
    files = expand_inputs(patterns, tfds=False)
    bad = [f for f in files if not f.endswith(SUFFIXES)]
    if bad:
        raise FileNotFoundError(f"SFT inputs must be JSON lines ({'/'.join(SUFFIXES)}): {bad[:3]}")
    return files


def iter_sft_records(spec: str) -> Iterator[dict]:
    """Every record of ``spec`` (see ``sft_files``), validated, in file order."""
    for path in sft_files(spec):
        with open_binary(path) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8")
            for lineno, line in enumerate(text, 1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise _fail(where, f"not valid JSON ({e.msg} at column {e.colno})") from None
                validate_sft_record(record, where)
                yield record


def read_sft_records(spec: str) -> list[dict]:
    """``list(iter_sft_records(spec))``: every record validated before any is used."""
    return list(iter_sft_records(spec))


def record_source(record: Mapping) -> str:
    """The pipeline source (mixture key) of a validated record."""
    return record.get("source", DEFAULT_SOURCE)


def render_sft_record(tokenizer, record: Mapping) -> tuple[list[int], list[int]]:
    """``(ids, loss_mask)`` of a validated record: ChatML for conversations (with BOS), the
    stored ids and mask for pre-rendered ones (ids must fit the tokenizer's vocabulary)."""
    if "messages" in record:
        return chat_template.render_ids(tokenizer, record["messages"])
    tokens = [int(t) for t in record["tokens"]]
    vocab = getattr(tokenizer, "vocab_size", None)
    if vocab is not None and max(tokens) >= int(vocab):
        raise SFTRecordError(
            f"pre-rendered SFT record has token id {max(tokens)} >= the tokenizer's vocabulary "
            f"size {vocab}: render it with the tokenizer the model is trained with")
    return tokens, [int(m) for m in record["loss_mask"]]
