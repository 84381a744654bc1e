"""Rendering a question and its reasoning steps for the PRM, and its training records.

One rendering, used for training and for scoring (so the position trained is the position
read)::

    [BOS] question + question_sep  step_1 tag  step_sep  step_2 tag ... step_K tag

Each piece is encoded separately and the ids are concatenated, so the position of every
step tag is known exactly (``RenderedSolution.tag_positions``: the index of the tag's
*last* token). The PRM's score of step k is read from the logits at ``tag_positions[k]``,
i.e. the model's prediction of the token that would follow the tag.

Training records (``training_records``) use the pre-rendered SFT form ``{"tokens",
"loss_mask", "source"}`` of ``eurollm_jax.data.sft``, where ``loss_mask[t] = 1`` makes token
t a target predicted from ``tokens[:t]``. The label of step k must be the target predicted at
the tag position, while at scoring time the token after the tag is the next step's text,
not a label. One record per labelled step therefore holds the rendering up to and including
tag k followed by the label token ("+" or "-"), with the loss on that last token only:
``tokens = ids[:tag_k + 1] + [label_k]``, ``loss_mask = [0] * (tag_k + 1) + [1]``. Its prefix
is exactly what the model sees at tag k when the whole solution is scored in one pass
(causal attention), so training and reading agree at every step, and the labels of earlier
steps never appear in the input. The cost is that a K-step solution trains as K prefixes.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from eurollm_jax.schema import ConfigError, Section

DEFAULT_TAG = " ки"  # Math-Shepherd's step tag


@dataclasses.dataclass(frozen=True)
class StepFormat(Section):
    """How question and steps are joined, and the label tokens."""

    tag: str = DEFAULT_TAG  # after every step; the score is read at its last token
    question_sep: str = "\n"  # between the question and the first step
    step_sep: str = "\n"  # between a tag and the next step
    plus: str = "+"  # the label token of a correct step (one token of the tokenizer)
    minus: str = "-"  # the label token of a wrong step
    add_bos: bool = True

    def check(self, path):
        self.require(path, bool(self.tag), "tag", "must be a non-empty string")
        self.require(path, bool(self.plus) and bool(self.minus) and self.plus != self.minus,
                     "plus", f"plus ({self.plus!r}) and minus ({self.minus!r}) must be two "
                     "different non-empty strings")


class RenderError(ValueError):
    """A solution or format that cannot be rendered for the PRM; names what and the fix."""


def _encode(tokenizer, text: str) -> list[int]:
    return [int(t) for t in tokenizer.encode(text, add_bos=False)] if text else []


def label_ids(tokenizer, fmt: StepFormat) -> tuple[int, int]:
    """(id of ``fmt.plus``, id of ``fmt.minus``): each must be exactly one token."""
    out = []
    for name in ("plus", "minus"):
        ids = _encode(tokenizer, getattr(fmt, name))
        if len(ids) != 1:
            raise RenderError(
                f"prm format.{name}={getattr(fmt, name)!r} is {len(ids)} tokens {ids} with this "
                f"tokenizer; choose a label string that is a single token")
        out.append(ids[0])
    return out[0], out[1]


@dataclasses.dataclass(frozen=True)
class RenderedSolution:
    ids: list[int]
    tag_positions: list[int]  # index of each step tag's last token in ``ids``


def render_solution(tokenizer, question: str, steps: Sequence[str],
                    fmt: StepFormat = StepFormat()) -> RenderedSolution:
    """The PRM input of ``question`` and ``steps`` (see the module docstring)."""
    if not steps:
        raise RenderError("a solution needs at least one step")
    tag = _encode(tokenizer, fmt.tag)
    ids: list[int] = [int(tokenizer.bos_id)] if fmt.add_bos else []
    ids += _encode(tokenizer, question + fmt.question_sep if question else "")
    sep = _encode(tokenizer, fmt.step_sep)
    positions = []
    for k, step in enumerate(steps):
        if k:
            ids += sep
        ids += _encode(tokenizer, step)
        ids += tag
        positions.append(len(ids) - 1)
    if not ids or positions[0] < 0:
        raise RenderError("empty rendering: give a question, a BOS or a non-empty first step")
    return RenderedSolution(ids, positions)


def training_records(tokenizer, question: str, steps: Sequence[str], labels: Sequence[bool],
                     fmt: StepFormat = StepFormat(), *, source: str = "prm",
                     max_len: int | None = None, meta: dict | None = None) -> list[dict]:
    """One pre-rendered SFT record per labelled step (module docstring); records longer than
    ``max_len`` tokens are left out (later steps only get longer)."""
    if len(labels) > len(steps):
        raise RenderError(f"{len(labels)} labels for {len(steps)} steps")
    plus, minus = label_ids(tokenizer, fmt)
    rendered = render_solution(tokenizer, question, steps[: len(labels)], fmt)
    records = []
    for k, (pos, good) in enumerate(zip(rendered.tag_positions, labels)):
        if good is None:
            continue
        tokens = rendered.ids[: pos + 1] + [plus if good else minus]
        if max_len is not None and len(tokens) > max_len:
            break
        record = {"tokens": tokens, "loss_mask": [0] * (pos + 1) + [1], "source": source,
                  "step": k, "label": "+" if good else "-"}
        if meta:
            record.update(meta)
        records.append(record)
    return records


def format_from(values) -> StepFormat:
    """A ``StepFormat`` from a mapping / ConfigDict (or a StepFormat)."""
    if isinstance(values, StepFormat):
        return values
    try:
        return StepFormat.from_mapping(values, "prm.format")
    except ConfigError as e:
        raise RenderError(str(e)) from e
