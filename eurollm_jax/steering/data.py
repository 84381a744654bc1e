"""The concept data of a steering run, from labelled text records.

Records are read with the one document reader (``eurollm_jax.documents``: JSONL, Parquet,
...). A record's concept label is ``label_field == positive`` (``lang``: the declared
language, any other name: that metadata field), so the demo corpus's ``train.jsonl`` /
``heldout.jsonl`` (``launch.make_demo_corpus``: ``text``, ``lang``) give a language
concept directly ("German vs the rest").

Texts are cut into pieces (lines, then sentences) of at least ``min_chars`` characters:

- probe prompts: each piece cut to each of ``prefix_chars`` characters (last-token
  states see several positions), classes balanced by subsampling the larger one;
- multiple-choice items (``mc_items``): the context is empty (the model's BOS alone) and
  the choices are one concept piece and ``mc_choices - 1`` other pieces (from as many
  different labels as there are), all cut to ``mc_chars`` characters; the answer is the
  concept piece: a steered model should prefer it more often;
- generation prompts: the first ``gen_prompt_chars`` characters of other pieces.

Everything is seeded; no piece is used twice within one set.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Sequence

import numpy as np

from eurollm_jax.documents import ReaderConfig, iter_documents


@dataclasses.dataclass(frozen=True)
class LabelledTexts:
    texts: list[str]
    values: list[str]  # the raw label values (e.g. language codes)
    labels: np.ndarray  # bool: value == positive


def read_labelled(path: str, *, label_field: str = "lang", positive: str,
                  text_field: str = "text") -> LabelledTexts:
    """The texts of ``path`` with their concept labels (see the module docstring)."""
    config = ReaderConfig(text_field=text_field,
                          lang_field=label_field if label_field == "lang" else None,
                          default_lang="unknown")
    texts, values = [], []
    for doc in iter_documents(path, config):
        if not doc.text:
            continue
        value = doc.lang if label_field == "lang" else doc.metadata.get(label_field)
        if value is None:
            raise ValueError(f"{path}: record {doc.id} has no {label_field!r} field")
        texts.append(doc.text)
        values.append(str(value))
    labels = np.array([v == str(positive) for v in values], bool)
    if not labels.any():
        raise ValueError(
            f"{path}: no record has {label_field} == {positive!r} (values seen: "
            f"{sorted(set(values))[:10]}); set the concept's positive value to one of them"
        )
    if labels.all():
        raise ValueError(f"{path}: every record has {label_field} == {positive!r}; need others too")
    return LabelledTexts(texts, values, labels)


def pieces(text: str, min_chars: int) -> list[str]:
    """Lines, then sentences, of ``text`` with at least ``min_chars`` characters."""
    out = []
    for line in text.splitlines():
        for piece in re.split(r"(?<=[.!?])\s+", line.strip()):
            if len(piece) >= min_chars:
                out.append(piece)
    return out


def _pieces_by_text(data: LabelledTexts, min_chars: int):
    rows = []
    for text, value, label in zip(data.texts, data.values, data.labels):
        rows.extend((p, value, bool(label)) for p in pieces(text, min_chars))
    return rows


def probe_set(data: LabelledTexts, *, prefix_chars: Sequence[int] = (24, 48),
              max_per_class: int = 256, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Balanced probe prompts and their labels."""
    rows = _pieces_by_text(data, max(prefix_chars))
    rng = np.random.default_rng(seed)
    pos = [r for r in rows if r[2]]
    neg = [r for r in rows if not r[2]]
    per_class = min(len(pos), len(neg), max(1, max_per_class // len(prefix_chars)))
    if per_class < 2:
        raise ValueError(
            f"too few pieces of >= {max(prefix_chars)} characters per class "
            f"({len(pos)} concept, {len(neg)} other) for a probe set; give more text or "
            f"shorter prefix_chars"
        )
    prompts, labels = [], []
    for group, label in ((pos, True), (neg, False)):
        for k in rng.permutation(len(group))[:per_class]:
            for n in prefix_chars:
                prompts.append(group[k][0][:n])
                labels.append(label)
    order = rng.permutation(len(prompts))
    return [prompts[i] for i in order], np.array(labels, bool)[order]


def mc_items(data: LabelledTexts, *, num_items: int = 48, num_choices: int = 4,
             chars: int = 24, seed: int = 0) -> list[dict]:
    """Multiple-choice items {"context": "", "choices": [...], "label": index}."""
    if num_choices < 2:
        raise ValueError(f"num_choices must be >= 2, got {num_choices}")
    rows = _pieces_by_text(data, chars)
    rng = np.random.default_rng(seed)
    pos = [r[0][:chars] for r in rows if r[2]]
    neg_by_value: dict[str, list[str]] = {}
    for p, value, label in rows:
        if not label:
            neg_by_value.setdefault(value, []).append(p[:chars])
    for group in neg_by_value.values():
        rng.shuffle(group)
    values = sorted(neg_by_value)
    rng.shuffle(pos)
    items = []
    for k in range(min(num_items, len(pos))):
        others = []
        for c in range(num_choices - 1):
            # round-robin over the other labels, so each item mixes several of them
            for off in range(len(values)):
                v = values[(k * (num_choices - 1) + c + off) % len(values)]
                if neg_by_value[v]:
                    others.append(neg_by_value[v].pop())
                    break
        if len(others) < num_choices - 1:
            break
        answer = int(rng.integers(num_choices))
        choices = others[:answer] + [pos[k]] + others[answer:]
        items.append({"context": "", "choices": choices, "label": answer})
    if not items:
        raise ValueError(
            f"no multiple-choice item could be built: need concept pieces and "
            f"{num_choices - 1} other pieces of >= {chars} characters"
        )
    return items


def generation_prompts(data: LabelledTexts, *, num_prompts: int = 16, chars: int = 8,
                       seed: int = 0) -> list[str]:
    """Prompts from pieces outside the concept (their first ``chars`` characters)."""
    rows = [r for r in _pieces_by_text(data, chars) if not r[2]]
    if not rows:
        raise ValueError("no non-concept piece to build generation prompts from")
    rng = np.random.default_rng(seed)
    picked = [rows[i][0][:chars] for i in rng.permutation(len(rows))]
    return list(dict.fromkeys(picked))[:num_prompts]
