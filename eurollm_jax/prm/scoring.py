"""PRM scoring: per-step probabilities read at the step tags, and solution scores.

``p_k = softmax(logits[tag_k, {+, -}])[+]`` where ``tag_k`` is the position of the k-th step
tag's last token in the rendering of ``prm.render.render_solution``: exactly the position
whose prediction training supervised (``render.training_records`` puts the label right
after it). The whole solution is scored in one forward pass (causal attention: the logits at
tag k see only the question and steps 1..k). A solution's score aggregates its p_k:
``min`` (the weakest step; default), ``last`` or ``mean``.

Batches: solutions are rendered, sorted by length and packed into batches under a token
budget, right-padded to the inference engine's shape buckets (``eurollm_jax.inference``'s
batching: the pads come after every real token, so causality alone keeps them out). The
model runs with ``logits="none"``; its final hidden states (after the final norm) are
gathered at the tag positions (padded to a few tag-count buckets) and projected on the two
label columns of the LM head only: [B, K, 2] fp32 logits, never [B, T, V]
(``tests/prm/test_scoring.py`` checks the probabilities against the full-logit path).
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from eurollm_jax.inference import as_engine
from eurollm_jax.inference.batching import (
    PAD_ID,
    bucket_batch,
    bucket_length,
    length_batches,
    mesh_scope,
    put_batch,
)
from eurollm_jax.prm.render import RenderedSolution, StepFormat, label_ids, render_solution

AGGREGATIONS = ("min", "last", "mean")


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _tag_label_logits(graphdef, params, tokens_BT, tags_BK, labels_L):
    """[B, K, 2] fp32 logits of the label tokens (``labels_L`` = [plus, minus]) at the tag
    positions ``tags_BK``: the final hidden states (after the final norm) are gathered at
    the tags and projected on the two label columns of the LM head only."""
    model = nnx.merge(graphdef, params)
    hidden_BTD = model.forward(tokens_BT, logits="none").final_hidden
    hidden_BKD = jnp.take_along_axis(hidden_BTD, tags_BK[:, :, None], axis=1)
    kernel_DL = model.lm_head_kernel()[:, labels_L]
    return jnp.einsum("bkd,dl->bkl", hidden_BKD, kernel_DL, preferred_element_type=jnp.float32)


def bucket_tags(k: int) -> int:
    """Padded tag count of a batch: a power of two, at least 4 (few compiled shapes)."""
    return bucket_length(k, minimum=4)


def aggregate(step_probs: Sequence[float], how: str = "min") -> float:
    """A solution's score from its step probabilities (``min``, ``last`` or ``mean``)."""
    if how not in AGGREGATIONS:
        raise ValueError(f"aggregation {how!r}: choose one of {', '.join(AGGREGATIONS)}")
    p = np.asarray(step_probs, np.float64)
    if p.size == 0:
        return float("nan")
    return float({"min": p.min, "last": lambda: p[-1], "mean": p.mean}[how]())


class PRMScorer:
    """Scores step-tagged solutions with a PRM (a ``Transformer`` or an inference ``Engine``).

    ``step_probabilities(items)``: items are ``(question, steps)`` pairs or
    ``RenderedSolution``s; returns one array of p_k per item. ``score(items, how)``: the
    aggregated score of each. ``max_batch_tokens`` bounds a batch (rows x bucketed length);
    ``max_rows`` caps the rows of one batch (1: one solution at a time).
    """

    def __init__(self, model, tokenizer, fmt: StepFormat = StepFormat(), *,
                 max_batch_tokens: int = 16384, max_rows: int = 256):
        self.engine = as_engine(model)
        self.tokenizer = tokenizer
        self.fmt = fmt
        self.label_ids = label_ids(tokenizer, fmt)
        self.max_batch_tokens = int(max_batch_tokens)
        self.max_rows = int(max_rows)

    def render(self, question: str, steps: Sequence[str]) -> RenderedSolution:
        return render_solution(self.tokenizer, question, steps, self.fmt)

    def step_logits(self, items) -> list[np.ndarray]:
        """[K, 2] logits (plus, minus) at the K tag positions of each item."""
        rendered = [it if isinstance(it, RenderedSolution) else self.render(*it) for it in items]
        limit = self.engine.cfg.max_seq_len
        for i, r in enumerate(rendered):
            if len(r.ids) > limit:
                raise ValueError(f"solution {i} renders to {len(r.ids)} tokens, more than the "
                                 f"model's max_seq_len {limit}; shorten it or drop it")
        mesh = self.engine.mesh
        labels = jnp.asarray(self.label_ids, jnp.int32)
        out: list[np.ndarray | None] = [None] * len(rendered)
        for rows in length_batches([len(r.ids) for r in rendered], self.max_batch_tokens):
            for start in range(0, len(rows), self.max_rows):
                chunk = rows[start : start + self.max_rows]
                t_len = bucket_length(len(rendered[chunk[0]].ids))
                k_len = bucket_tags(max(len(rendered[i].tag_positions) for i in chunk))
                b_len = bucket_batch(len(chunk), mesh)
                tokens = np.full((b_len, t_len), PAD_ID, np.int32)
                tags = np.zeros((b_len, k_len), np.int32)
                for r, i in enumerate(chunk):
                    tokens[r, : len(rendered[i].ids)] = rendered[i].ids
                    tags[r, : len(rendered[i].tag_positions)] = rendered[i].tag_positions
                with mesh_scope(mesh):
                    logits = _tag_label_logits(self.engine.graphdef, self.engine.params,
                                               put_batch(tokens, mesh), put_batch(tags, mesh),
                                               labels)
                logits = np.asarray(logits)
                for r, i in enumerate(chunk):
                    out[i] = logits[r, : len(rendered[i].tag_positions)].astype(np.float64)
        return out

    def step_probabilities(self, items) -> list[np.ndarray]:
        """p_k = softmax over (plus, minus) at each step tag, [+] (module docstring)."""
        return [1.0 / (1.0 + np.exp(lg[:, 1] - lg[:, 0])) for lg in self.step_logits(items)]

    def score(self, items, how: str = "min") -> list[float]:
        return [aggregate(p, how) for p in self.step_probabilities(items)]


def score_file(scorer: PRMScorer, input_spec: str, output_path: str, *, how: str = "min",
               language: str = "en") -> dict:
    """Score every solution of a JSON-lines input (``{"question", "steps"[, "labels"]}``
    or the Math-Shepherd / PRM800K forms of ``prm.data``) into ``output_path`` (each record
    plus ``step_probs`` and ``score``). Returns counts and, for labelled input, the step
    accuracy (p_k > 0.5 against the label) per language."""
    from eurollm_jax.fileio import write_jsonl
    from eurollm_jax.prm.data import Malformed, iter_json_lines, parse_record

    records, items, bad = [], [], {}
    for where, record in iter_json_lines(input_spec):
        try:
            if isinstance(record, Malformed):
                raise record
            sol = parse_record(dict(record, labels=record.get("labels", []))
                               if "steps" in record else record, "auto", language)
        except Malformed as e:
            bad[str(e)] = bad.get(str(e), 0) + 1
            continue
        records.append((record, sol))
        items.append((sol.question, list(sol.steps)))
    probs = scorer.step_probabilities(items)
    hits: dict = {}
    rows = []
    for (record, sol), p in zip(records, probs):
        rows.append(dict(record, step_probs=[float(x) for x in p], score=aggregate(p, how)))
        for pk, good in zip(p, sol.labels):
            h = hits.setdefault(sol.language, [0, 0])
            h[0] += int((pk > 0.5) == good)
            h[1] += 1
    write_jsonl(output_path, rows)
    return {"scored": len(rows), "malformed": bad,
            "step_accuracy": {k: 100.0 * a / b for k, (a, b) in sorted(hits.items())}}
