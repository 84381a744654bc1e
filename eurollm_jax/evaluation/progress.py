"""Resume and progress for long evaluations.

- ``PairStore``: finished (task, language) results under ``OUTPUT/.progress/<task>-<key>/``,
  one JSON file per language written atomically as soon as that language is done. A killed
  evaluation rerun with the same output directory, checkpoint and task settings finds them
  and skips those languages. The key is a hash of the checkpoint's weights fingerprint and
  the task settings, so a rerun with other weights or settings never reuses stale results
  (and never deletes them: they stay under their own key).
- ``Progress``: counts units of work (rows, requests) and logs rate and ETA at most every
  ``every_s`` seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from typing import Any, Mapping

from eurollm_jax.fileio import read_json, write_json

logger = logging.getLogger("eurollm_jax.evaluation")


def settings_key(checkpoint_fingerprint: str | None, settings: Mapping[str, Any]) -> str:
    """12 hex digits identifying (weights, task settings)."""
    blob = json.dumps({"weights": checkpoint_fingerprint, "settings": settings},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


class PairStore:
    """Finished per-language results of one task run, kept for resume."""

    def __init__(self, output_dir: str, task: str, key: str):
        self.directory = os.path.join(output_dir, ".progress", f"{task}-{key}")
        self.task = task

    def _path(self, language: str) -> str:
        return os.path.join(self.directory, f"{language}.json")

    def done(self, language: str) -> bool:
        return os.path.exists(self._path(language))

    def load(self, language: str) -> Any:
        return read_json(self._path(language))["result"]

    def save(self, language: str, result: Any) -> None:
        write_json(self._path(language), {"task": self.task, "language": language,
                                          "result": result})

    def finished(self) -> list[str]:
        if not os.path.isdir(self.directory):
            return []
        return sorted(n[:-5] for n in os.listdir(self.directory) if n.endswith(".json"))


class Progress:
    """``update(n)`` after each chunk of work; logs done/total, rate and ETA."""

    def __init__(self, total: int, label: str, *, unit: str = "rows", every_s: float = 10.0,
                 log=None):
        self.total, self.label, self.unit = int(total), label, unit
        self.every_s = float(every_s)
        self.done = 0
        self.start = time.perf_counter()
        self._last = -1e9
        self._log = log or logger.info

    def eta_seconds(self) -> float | None:
        elapsed = time.perf_counter() - self.start
        if self.done <= 0 or elapsed <= 0:
            return None
        return (self.total - self.done) / (self.done / elapsed)

    def line(self) -> str:
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = self.eta_seconds()
        eta_text = "?" if eta is None else f"{eta:.0f}s"
        return (f"{self.label}: {self.done}/{self.total} {self.unit}, {rate:.1f} {self.unit}/s, "
                f"elapsed {elapsed:.0f}s, ETA {eta_text}")

    def update(self, n: int = 1) -> None:
        self.done += int(n)
        now = time.perf_counter()
        if now - self._last >= self.every_s or self.done >= self.total:
            self._last = now
            self._log(self.line())
