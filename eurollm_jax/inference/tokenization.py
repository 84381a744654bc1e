"""Text <-> token helpers of the inference engine, for any duck-typed tokenizer.

The engine needs only ``encode(str) -> list[int]``, ``decode(list[int]) -> str``,
``bos_id`` and ``eos_id`` (``eurollm_jax.tokenizer.Tokenizer``, whose ``encode`` adds BOS
unless ``add_bos=False``, or any tokenizer whose ``encode`` adds nothing).

- ``encode_prompt``: text -> ids with exactly one leading BOS (when asked for).
- ``encode_with_special_tokens``: text containing special-token markers (``<|im_start|>``)
  -> ids, the markers mapped to their ids and the text between encoded normally.
- ``decode_continuation``: generated ids -> text as it continues the prompt (a
  SentencePiece word-initial space survives, unlike ``decode(generated)`` alone).
- ``find_stop_string``: the earliest stop string in a text.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence


def load_tokenizer(path: str):
    """The project tokenizer (``eurollm_jax.tokenizer.Tokenizer``) from a ``tokenizer.model``
    file or a directory holding one."""
    from eurollm_jax.tokenizer import Tokenizer

    return Tokenizer.load(path)


def check_tokenizer(tokenizer) -> None:
    missing = [a for a in ("encode", "decode", "bos_id", "eos_id") if not hasattr(tokenizer, a)]
    if missing:
        raise TypeError(
            f"tokenizer {type(tokenizer).__name__} lacks {missing}; the engine needs "
            f"encode(str)->list[int], decode(list[int])->str, bos_id and eos_id"
        )


def int_attribute(tokenizer, name: str) -> int | None:
    """``tokenizer.<name>`` (an attribute, property or method) as an int; None when it is
    missing, None or negative."""
    value = getattr(tokenizer, name, None)
    value = value() if callable(value) else value
    return None if value is None or int(value) < 0 else int(value)


def bos_id(tokenizer) -> int | None:
    return int_attribute(tokenizer, "bos_id")


def eos_id(tokenizer) -> int | None:
    return int_attribute(tokenizer, "eos_id")


def encode_plain(tokenizer, text: str) -> list[int]:
    """``text`` as token ids without BOS/EOS, whatever the tokenizer adds by default."""
    try:
        ids = tokenizer.encode(text, add_bos=False)
    except TypeError:  # an encode(text) that takes no add_bos
        ids = tokenizer.encode(text)
    ids = [int(i) for i in ids]
    bos = bos_id(tokenizer)
    if ids and bos is not None and ids[0] == bos:
        ids = ids[1:]
    return ids


def encode_prompt(tokenizer, text: str, *, add_bos: bool = True) -> list[int]:
    """``text`` as token ids, with one leading BOS when ``add_bos`` (never two)."""
    ids = encode_plain(tokenizer, text)
    bos = bos_id(tokenizer)
    if add_bos and bos is not None and (not ids or ids[0] != bos):
        ids = [bos] + ids
    return ids


def encode_with_special_tokens(
    tokenizer, text: str, special_tokens: Mapping[str, int], *, add_bos: bool = False
) -> list[int]:
    """Encode ``text``, mapping each occurrence of a special-token string to its id.

    The pieces between markers are encoded separately (as transformers does for added
    tokens), so the result does not depend on how the tokenizer treats the markers.
    """
    ids: list[int] = []
    bos = bos_id(tokenizer)
    if add_bos and bos is not None:
        ids.append(bos)
    if not special_tokens:
        return ids + encode_plain(tokenizer, text)
    pattern = (
        "(" + "|".join(re.escape(s) for s in sorted(special_tokens, key=len, reverse=True)) + ")"
    )
    for piece in re.split(pattern, text):
        if not piece:
            continue
        if piece in special_tokens:
            ids.append(int(special_tokens[piece]))
        else:
            ids.extend(encode_plain(tokenizer, piece))
    return ids


def decode_continuation(
    tokenizer, prompt_ids: Sequence[int], generated_ids: Sequence[int], *, context_tokens: int = 8
) -> str:
    """Text of ``generated_ids`` as it reads after the prompt.

    Decodes the last few prompt tokens together with the generation and removes the
    prompt's text, so that a word-initial space (SentencePiece's leading "▁") is kept.
    Falls back to decoding the generation alone when the prefix text is not stable.
    """
    generated_ids = [int(i) for i in generated_ids]
    if not generated_ids:
        return ""
    prefix = [int(i) for i in prompt_ids[-context_tokens:]] if context_tokens else []
    if prefix:
        head = tokenizer.decode(prefix)
        whole = tokenizer.decode(prefix + generated_ids)
        if whole.startswith(head) and "\ufffd" not in head[-1:]:
            return whole[len(head) :]
    return tokenizer.decode(generated_ids)


def find_stop_string(text: str, stop_strings: Sequence[str]) -> tuple[int, str] | None:
    """(index, stop string) of the earliest stop string in ``text``, or None."""
    best = None
    for s in stop_strings:
        if not s:
            continue
        i = text.find(s)
        if i >= 0 and (best is None or i < best[0]):
            best = (i, s)
    return best
