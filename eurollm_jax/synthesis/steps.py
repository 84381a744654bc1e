"""The steps of a generation job and what they share: counters, drops, audit, LLM calls, parsers.

A record is a JSON-able dict with a unique ``"id"``; steps add fields and append what the LLM
said to ``record["audit"]`` (``{"step", "raw": [texts]}``, errors included), so every kept or
dropped record carries the raw answers it was built from. A step is a pure function of its
input records plus LLM answers (choices that look random are seeded by record ids):

- ``scope = "record"`` steps see any batch of records (the runner's shards) and treat each
  record on its own; their answers do not depend on the batching;
- ``scope = "global"`` steps (dedup, best candidate, top K, distractors) see every record at
  once, in the job's canonical order.

``LLMStep`` is the common case: each record asks for some ``Call``s, the step sends all calls
of a batch together (one ``LLMClient.chat`` per temperature / length / stop setting, each call
with its own seed) and
``parse`` turns a record's answers into zero or more records or a drop reason. A failed request
drops its record as ``llm_error:<kind>``; a malformed answer (no marker, unparseable score,
wrong language) is a drop with its reason: a bad answer never raises.

``Counters``: per step ``in``, ``out`` and ``dropped`` by reason (summed over shards).
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
from typing import Any, Callable, Iterable, Sequence

from eurollm_jax.filtering.dedup import DedupConfig, cluster


# ----------------------------------------------------------------------------- counters
class Counters:
    """``{step: {"in": n, "out": n, "dropped": {reason: n}}}`` in step order."""

    def __init__(self, data: dict | None = None):
        self.data: dict[str, dict] = {}
        if data:
            self.merge(data)

    def step(self, name: str) -> dict:
        return self.data.setdefault(name, {"in": 0, "out": 0, "dropped": {}})

    def drop(self, name: str, reason: str) -> None:
        d = self.step(name)["dropped"]
        d[reason] = d.get(reason, 0) + 1

    def merge(self, other: "Counters | dict") -> None:
        for name, c in (other.data if isinstance(other, Counters) else other).items():
            mine = self.step(name)
            mine["in"] += c["in"]
            mine["out"] += c["out"]
            for reason, n in c["dropped"].items():
                mine["dropped"][reason] = mine["dropped"].get(reason, 0) + n

    def to_json(self) -> dict:
        return {k: {"in": v["in"], "out": v["out"], "dropped": dict(sorted(v["dropped"].items()))}
                for k, v in self.data.items()}


class StepContext:
    """What a step runs with: the LLM client (None for jobs without LLM steps), the counters
    and the dropped records of this unit of work."""

    def __init__(self, llm=None, counters: Counters | None = None):
        self.llm = llm
        self.counters = counters if counters is not None else Counters()
        self.dropped: list[dict] = []

    def drop(self, step: str, record: dict, reason: str) -> None:
        out = dict(record, drop_step=step, drop_reason=reason)
        self.dropped.append(out)
        self.counters.drop(step, reason)


class Step:
    """A step (module docstring). Subclasses set ``name`` and implement ``process``."""

    name = "step"
    scope = "record"  # "record" | "global"

    def process(self, records: list[dict], ctx: StepContext) -> list[dict]:
        raise NotImplementedError

    def __call__(self, records: list[dict], ctx: StepContext) -> list[dict]:
        c = ctx.counters.step(self.name)
        c["in"] += len(records)
        out = self.process(records, ctx)
        c["out"] += len(out)
        return out


def run_steps(steps: Sequence[Step], records: list[dict], ctx: StepContext) -> list[dict]:
    for step in steps:
        records = step(records, ctx)
    return records


def audit(record: dict, step: str, texts: Sequence[str | None], errors=()) -> dict:
    """``record`` with the raw answers of ``step`` appended to its ``audit`` list."""
    entry: dict[str, Any] = {"step": step, "raw": list(texts)}
    errors = [e for e in errors if e]
    if errors:
        entry["errors"] = errors
    return dict(record, audit=list(record.get("audit", [])) + [entry])


def seeded_rng(*parts: Any) -> random.Random:
    """A ``random.Random`` seeded by the SHA-256 of ``parts`` (same in every process)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


# ----------------------------------------------------------------------------- parsing
def after_marker(text: str | None, marker: str) -> str | None:
    """The stripped text after the first ``marker`` (case-insensitive; ``**Marker:**`` and
    ``**Marker**:`` count too), or None when the marker is missing or nothing follows it.
    A marker ending in ":" needs its colon: "the instruction is" is not "Instruction:"."""
    if not text:
        return None
    name = marker.strip()
    colon = name.endswith(":")
    name = re.escape(name.rstrip(":").strip())
    pattern = (r"\*{0,2}" + name + r"\*{0,2}\s*:\*{0,2}") if colon else name
    m = re.search(pattern, text, re.I)
    if m is None:
        return None
    rest = text[m.end():].strip()
    return rest or None


_SCORE_PATTERNS = (
    re.compile(r"\b(?:score|rating|grade)\s*[:=]\s*\**\s*(\d+(?:\.\d+)?)\s*\**(?:\s*/\s*10)?",
               re.I),
    re.compile(r"\b(\d+(?:\.\d+)?)\s*/\s*10\b"),
    re.compile(r"\b(\d+(?:\.\d+)?)\s+out\s+of\s+10\b", re.I),
)


def parse_judge_score(text: str | None, low: float = 1.0, high: float = 10.0) -> float | None:
    """The judge's score on the ``low``-``high`` scale, or None (no score, or out of range).
    The last match of the strictest pattern wins (``Score: 8``, ``8/10``, ``8 out of 10``)."""
    if not text:
        return None
    for pattern in _SCORE_PATTERNS:
        found = pattern.findall(text)
        if found:
            value = float(found[-1])
            return value if low <= value <= high else None
    return None


# ----------------------------------------------------------------------------- LLM steps
@dataclasses.dataclass(frozen=True)
class Call:
    """One chat request of a record."""

    messages: tuple
    temperature: float = 0.0
    max_tokens: int = 256
    seed: int | None = None
    stop: tuple[str, ...] | None = None

    @staticmethod
    def user(prompt: str, *, system: str | None = None, **kw) -> "Call":
        msgs = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": prompt}]
        return Call(tuple(msgs), **kw)


class LLMStep(Step):
    """A record step that asks the LLM (module docstring). Implement ``calls(record)`` and
    ``parse(record, results, ctx) -> list[dict] | str`` (records to keep, or a drop reason).
    With ``all_or_nothing`` (the default) a record whose request failed is dropped
    ``llm_error:<kind>`` before ``parse``; otherwise ``parse`` gets the failed results too (a
    step that expands a record handles each part, see ``drop_part``)."""

    all_or_nothing = True

    def calls(self, record: dict) -> list[Call]:
        raise NotImplementedError

    def parse(self, record: dict, results: list, ctx: StepContext) -> list[dict] | str:
        raise NotImplementedError

    def drop_part(self, ctx: StepContext, record: dict, reason: str) -> None:
        """Count a dropped part of an expanded record (it joins the dropped records too)."""
        ctx.drop(self.name, record, reason)

    def process(self, records, ctx):
        if ctx.llm is None:
            raise ValueError(f"step {self.name} needs an LLM client")
        per_record = [self.calls(r) for r in records]
        groups: dict[tuple, list[tuple[int, int]]] = {}
        for i, calls in enumerate(per_record):
            for j, c in enumerate(calls):
                groups.setdefault((c.temperature, c.max_tokens, c.stop), []).append((i, j))
        answers: list[list] = [[None] * len(c) for c in per_record]
        for (temperature, max_tokens, stop), slots in groups.items():  # seeds per request
            results = ctx.llm.chat([list(per_record[i][j].messages) for i, j in slots],
                                   temperature=temperature, max_tokens=max_tokens,
                                   seed=[per_record[i][j].seed for i, j in slots], stop=stop)
            for (i, j), res in zip(slots, results):
                answers[i][j] = res
        out = []
        for record, results in zip(records, answers):
            record = audit(record, self.name, [r.text for r in results],
                           [r.error for r in results])
            failed = next((r for r in results if r.error is not None), None)
            if failed is not None and self.all_or_nothing:
                ctx.drop(self.name, record, f"llm_error:{failed.error_kind}")
                continue
            parsed = self.parse(record, results, ctx)
            if isinstance(parsed, str):
                ctx.drop(self.name, record, parsed)
            else:
                out.extend(parsed)
        return out


# ----------------------------------------------------------------------------- shared steps
class LanguageCheck(Step):
    """Language ID (the filtering step's identifier, ``filtering.langid.filter_identifier``) on
    text fields: each must be identified as its expected language (``fixed[field]``, else the
    record's ``language_field``) with at least ``threshold``; the labels are kept in
    ``record["langid"]``. Drops ``wrong_language:<field>``."""

    scope = "record"

    def __init__(self, fields: Sequence[str], language_field: str = "language",
                 threshold: float = 0.5, name: str = "language_check",
                 fixed: dict[str, str] | None = None):
        self.fields, self.language_field = tuple(fields), language_field
        self.threshold, self.name = float(threshold), name
        self.fixed = dict(fixed or {})
        self._lid = None

    def _identifier(self):
        if self._lid is None:
            from eurollm_jax.filtering.langid import filter_identifier

            self._lid = filter_identifier()  # the filter's two-pass identifier, every language
        return self._lid

    def process(self, records, ctx):
        if not records:
            return []
        texts = [r.get(f) or "" for r in records for f in self.fields]
        preds = iter(self._identifier().predict(texts))
        out = []
        for r in records:
            labels, bad = {}, None
            for f in self.fields:
                pred = next(preds)  # (language, score, ...): a tuple or a NamedTuple
                lang, score = pred[0], float(pred[1])
                labels[f] = [lang, round(float(score), 4)]
                want = self.fixed.get(f) or r[self.language_field]
                if bad is None and (lang != want or score < self.threshold):
                    bad = f
            r = dict(r, langid=dict(r.get("langid", {}), **labels))
            if bad is not None:
                ctx.drop(self.name, r, f"wrong_language:{bad}")
            else:
                out.append(r)
        return out


class NearDedup(Step):
    """Exact + MinHash near-dedup (``filtering.dedup``) over ``text_of(record)``; the first
    record of a cluster (job order) is kept. Drops ``exact_duplicate`` / ``near_duplicate``
    with ``duplicate_of``."""

    scope = "global"

    def __init__(self, config: DedupConfig, text_of: Callable[[dict], str], name: str = "dedup"):
        self.config, self.text_of, self.name = config, text_of, name

    def process(self, records, ctx):
        if not records:
            return []
        feats = [self.config.features(self.text_of(r)) for r in records]
        import numpy as np

        sigs = (np.stack([s for _, s in feats]) if self.config.near else None)
        decisions = cluster(range(len(records)), [e for e, _ in feats], sigs, self.config)
        out = []
        for i, r in enumerate(records):
            d = decisions.get(i)
            if d is None:
                out.append(r)
            else:
                ctx.drop(self.name, dict(r, duplicate_of=records[d[1]]["id"]), d[0])
        return out


class BestPerGroup(Step):
    """Keeps the ``k`` best-scored records of each group (ties: job order). Drops ``reason``."""

    scope = "global"

    def __init__(self, group_of: Callable[[dict], Any], k: int, reason: str, name: str,
                 score_field: str = "score"):
        self.group_of, self.k, self.reason, self.name = group_of, int(k), reason, name
        self.score_field = score_field

    def process(self, records, ctx):
        groups: dict[Any, list[int]] = {}
        for i, r in enumerate(records):
            groups.setdefault(self.group_of(r), []).append(i)
        keep = set()
        for members in groups.values():
            ranked = sorted(members, key=lambda i: (-records[i][self.score_field], i))
            keep.update(ranked[:self.k])
        out = []
        for i, r in enumerate(records):
            if i in keep:
                out.append(r)
            else:
                ctx.drop(self.name, r, self.reason)
        return out


def segments(steps: Sequence[Step]) -> list[tuple[str, list[Step]]]:
    """The steps cut into runs of record steps and single global steps, in order."""
    out: list[tuple[str, list[Step]]] = []
    for s in steps:
        if s.scope not in ("record", "global"):
            raise ValueError(f"step {s.name}: scope must be 'record' or 'global', got {s.scope!r}")
        if s.scope == "record" and out and out[-1][0] == "record":
            out[-1][1].append(s)
        else:
            out.append((s.scope, [s]))
    return out


def require_unique_ids(records: Iterable[dict], where: str) -> None:
    seen = set()
    for r in records:
        if r["id"] in seen:
            raise ValueError(f"{where}: record id {r['id']!r} occurs twice; ids must be unique "
                             f"(give each seed its own \"id\" or leave ids out)")
        seen.add(r["id"])
