"""The translation step of tRAG and CrossRAG: the LM itself, prompted to translate, through the
one LLM client (the in-process engine or any OpenAI-compatible endpoint).

``translate(client, texts, sources, target)`` sends one chat request per distinct
(text, source) pair in one batched call (the client runs them ``concurrency`` at a time and
caches finished answers on disk when it has a ``cache_dir``: a rerun translates nothing
twice). Texts already in the target language pass through untranslated. A failed or empty
translation keeps the original text and is counted (``TranslationStats``), so one bad request
never stops a run.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from eurollm_jax.languages import LANGUAGE_NAMES

TRANSLATION_TEMPLATE = (
    "Translate the following {source} text into {target}. Reply with the translation only, "
    "nothing else.\n\n{text}"
)


def language_name(code: str) -> str:
    base = code.split("_")[0].split("-")[0].lower()
    return LANGUAGE_NAMES.get(base, code)


@dataclasses.dataclass
class TranslationStats:
    requested: int = 0      # texts asked for (including pass-through ones)
    translated: int = 0     # distinct requests answered
    passthrough: int = 0    # already in the target language
    failed: int = 0         # errors or empty answers: the original text was kept
    cached: int = 0

    def add(self, other: "TranslationStats") -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def translation_messages(text: str, source: str, target: str) -> list[dict]:
    return [{"role": "user", "content": TRANSLATION_TEMPLATE.format(
        source=language_name(source), target=language_name(target), text=text)}]


def clean_translation(text: str) -> str:
    """The model's reply without a leading "Translation:" label or wrapping quotes."""
    out = text.strip()
    for label in ("Translation:", "translation:"):
        if out.startswith(label):
            out = out[len(label):].strip()
    if len(out) >= 2 and out[0] == out[-1] and out[0] in "\"'«»“”":
        out = out[1:-1].strip()
    return out


def translate(client, texts: Sequence[str], sources: Sequence[str] | str, target: str, *,
              max_tokens: int = 256) -> tuple[list[str], TranslationStats]:
    """Translations of ``texts`` (from ``sources``, one code or one per text) into ``target``."""
    texts = list(texts)
    sources = [sources] * len(texts) if isinstance(sources, str) else list(sources)
    if len(sources) != len(texts):
        raise ValueError(f"{len(sources)} source languages for {len(texts)} texts")
    stats = TranslationStats(requested=len(texts))
    out = list(texts)
    todo: dict[tuple[str, str], list[int]] = {}
    for i, (t, s) in enumerate(zip(texts, sources)):
        if s.split("_")[0] == target.split("_")[0] or not t.strip():
            stats.passthrough += 1
        else:
            todo.setdefault((t, s), []).append(i)
    keys = list(todo)
    if keys:
        results = client.chat([translation_messages(t, s, target) for t, s in keys],
                              temperature=0.0, max_tokens=max_tokens)
        for key, result in zip(keys, results):
            text = clean_translation(result.text or "") if result.error is None else ""
            if not text:
                stats.failed += 1
                continue
            stats.translated += 1
            stats.cached += bool(result.cached)
            for i in todo[key]:
                out[i] = text
    return out, stats
