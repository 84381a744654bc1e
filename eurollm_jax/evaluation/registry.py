"""The results registry: one JSON file per (checkpoint, task, language set), and its report.

Every evaluation (``python -m launch.evaluate eurogest|lm_eval|mt|xl_alpacaeval``) ends by
writing one record here; the release tooling reads the same records for the model card and
checks with ``weights_fingerprint`` that they were measured on the exact weights it exports.

Record schema (``SCHEMA_VERSION`` 1; all keys always present)::

    {
      "schema_version": 1,
      "task": "eurogest",                      # eurogest | lm_eval | mt | xl_alpacaeval
      "languages": ["de", "fr"],               # the language set, sorted (MT: directions)
      "scores": {"de": {"g": 1.04, ...}, ...}, # per language: flat {metric: number | null}
      "details": {...},                        # task-specific extra results (may be {})
      "config": {...},                         # the task's settings (data_dir, shots, ...)
      "checkpoint": {
        "path": "/abs/path",                   # as given, made absolute
        "kind": "hf" | "params" | "workdir" | "preset",
        "fingerprint": "sha256:<64 hex>" | null,   # weights_fingerprint(path); null: preset
        "weights_files": [{"path": "model.safetensors", "bytes": 123}, ...]
      },
      "git_revision": "<40 hex>" | null,       # of the eurollm_jax checkout that ran it
      "git_dirty": bool | null,                # uncommitted changes in that checkout
      "date": "2026-12-02T01:23:45Z",          # UTC, when the record was written
      "seconds": 12.3                          # wall time of this invocation (a resumed
                                               # run counts only its own part)
    }

File name: ``<task>--<language set>--<fingerprint[:12] or checkpoint name>.json`` inside the
registry directory; a rerun of the same (checkpoint, task, language set) replaces its file.
``report(registry_dir)`` renders every record as one Markdown table (a row per checkpoint,
task and language, a column per metric).
"""

from __future__ import annotations

import datetime
import glob
import hashlib
import math
import os
import re
import subprocess
from typing import Any, Iterable, Mapping, Sequence

from eurollm_jax.fileio import read_json, write_json

SCHEMA_VERSION = 1
TASKS = ("eurogest", "lm_eval", "mt", "xl_alpacaeval")
# Files that hold weights: HF (safetensors, torch .bin shards) and Orbax/tensorstore trees.
_HF_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.pt")
_CHUNK = 1 << 20


class RegistryError(ValueError):
    """A registry record that does not follow the schema (the message names the field)."""


# ----------------------------------------------------------------------------- checkpoints
def checkpoint_kind(path: str) -> str:
    """"hf" (config.json + safetensors), "params" (model_config.json + params/), or
    "workdir" (a training workdir whose exported params are in WORKDIR/params)."""
    if os.path.exists(os.path.join(path, "model_config.json")):
        return "params"
    if os.path.exists(os.path.join(path, "config.json")):
        return "hf"
    if os.path.exists(os.path.join(path, "params", "model_config.json")):
        return "workdir"
    if os.path.isdir(os.path.join(path, "checkpoints")):
        raise FileNotFoundError(
            f"{path} is a training workdir without exported params; export them first with "
            f"`python -m launch.train --config=... --workdir={path} --export_params={path}/params`"
        )
    raise FileNotFoundError(
        f"{path!r} is not a checkpoint: expected a Hugging Face directory (config.json), an "
        f"Orbax params directory (model_config.json + params/) or a training workdir "
        f"(WORKDIR/params/model_config.json)"
    )


def weights_files(checkpoint_dir: str) -> list[str]:
    """The weights files of a checkpoint, as sorted paths relative to ``checkpoint_dir``.

    HF directory: ``*.safetensors`` (and torch ``.bin``/``.pt`` shards); params directory:
    every file under ``params/``; training workdir: every file under ``params/params/``.
    Configs and tokenizers are not weights (a renamed tokenizer file does not change the
    fingerprint; a changed weight byte does).
    """
    kind = checkpoint_kind(checkpoint_dir)
    if kind == "hf":
        found = set()
        for pattern in _HF_WEIGHT_PATTERNS:
            found.update(glob.glob(os.path.join(checkpoint_dir, pattern)))
        files = sorted(os.path.relpath(p, checkpoint_dir) for p in found)
    else:
        parts = ["params"] if kind == "params" else ["params", "params"]
        root = os.path.join(checkpoint_dir, *parts)
        files = []
        for dirpath, _, names in os.walk(root):
            for name in names:
                files.append(os.path.relpath(os.path.join(dirpath, name), checkpoint_dir))
        files.sort()
    if not files:
        raise FileNotFoundError(f"{checkpoint_dir}: no weights files found ({kind} checkpoint)")
    return files


def weights_fingerprint(checkpoint_dir: str) -> str:
    """``"sha256:<hex>"`` over the checkpoint's weights files (``weights_files``).

    The digest covers, for each file in sorted order, its relative path (with "/"), its size
    and its bytes, so renaming, truncating or changing any weights file changes it. Two
    copies of the same weights in different directories have the same fingerprint.
    """
    digest = hashlib.sha256()
    for rel in weights_files(checkpoint_dir):
        path = os.path.join(checkpoint_dir, rel)
        size = os.path.getsize(path)
        digest.update(f"{rel.replace(os.sep, '/')}\0{size}\0".encode())
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def checkpoint_identity(path: str | None, *, preset: str | None = None) -> dict[str, Any]:
    """The ``checkpoint`` block of a record."""
    if path is None:
        return {"path": f"preset:{preset}", "kind": "preset", "fingerprint": None,
                "weights_files": []}
    path = os.path.abspath(path)
    files = weights_files(path)
    return {
        "path": path,
        "kind": checkpoint_kind(path),
        "fingerprint": weights_fingerprint(path),
        "weights_files": [
            {"path": f.replace(os.sep, "/"), "bytes": os.path.getsize(os.path.join(path, f))}
            for f in files
        ],
    }


# ----------------------------------------------------------------------------- provenance
def git_revision(directory: str | None = None) -> tuple[str | None, bool | None]:
    """(HEAD commit, whether the tree has uncommitted changes) of the checkout holding
    ``directory`` (default: this package); (None, None) outside a git checkout."""
    directory = directory or os.path.dirname(os.path.abspath(__file__))
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True,
                             text=True, timeout=10)
        if rev.returncode != 0:
            return None, None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=directory, capture_output=True, text=True, timeout=30)
        dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
        return rev.stdout.strip(), dirty
    except (OSError, subprocess.TimeoutExpired):
        return None, None


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- records
def _clean_number(value, where: str):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RegistryError(f"{where}: scores must be numbers or null, got {value!r}")
    value = float(value)
    return None if math.isnan(value) else value


def make_record(
    *,
    task: str,
    languages: Sequence[str],
    scores: Mapping[str, Mapping[str, Any]],
    config: Mapping[str, Any],
    checkpoint: Mapping[str, Any],
    seconds: float,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A schema-conforming record (validated); git revision and date filled in here."""
    rev, dirty = git_revision()
    record = {
        "schema_version": SCHEMA_VERSION,
        "task": task,
        "languages": sorted(languages),
        "scores": {lang: {m: v for m, v in s.items()} for lang, s in scores.items()},
        "details": dict(details or {}),
        "config": dict(config),
        "checkpoint": dict(checkpoint),
        "git_revision": rev,
        "git_dirty": dirty,
        "date": utc_now(),
        "seconds": float(seconds),
    }
    validate_record(record)
    return record


_KEYS = ("schema_version", "task", "languages", "scores", "details", "config", "checkpoint",
         "git_revision", "git_dirty", "date", "seconds")


def validate_record(record: Mapping[str, Any], where: str = "record") -> None:
    """Raises ``RegistryError`` naming the first field that breaks the schema."""
    missing = [k for k in _KEYS if k not in record]
    if missing:
        raise RegistryError(f"{where}: missing keys {missing}")
    if record["schema_version"] != SCHEMA_VERSION:
        raise RegistryError(f"{where}: schema_version {record['schema_version']!r}, this "
                            f"code reads {SCHEMA_VERSION}")
    if record["task"] not in TASKS:
        raise RegistryError(f"{where}: task {record['task']!r} is not one of {TASKS}")
    if not isinstance(record["languages"], list) or not all(
            isinstance(x, str) for x in record["languages"]):
        raise RegistryError(f"{where}: languages must be a list of strings")
    if not isinstance(record["scores"], Mapping):
        raise RegistryError(f"{where}: scores must be {{language: {{metric: number}}}}")
    for lang, metrics in record["scores"].items():
        if not isinstance(metrics, Mapping):
            raise RegistryError(f"{where}: scores[{lang!r}] must be {{metric: number | null}}")
        for m, v in metrics.items():
            _clean_number(v, f"{where}: scores[{lang!r}][{m!r}]")
    ck = record["checkpoint"]
    if not isinstance(ck, Mapping) or not {"path", "kind", "fingerprint"} <= set(ck):
        raise RegistryError(f"{where}: checkpoint needs path, kind and fingerprint")
    fp = ck["fingerprint"]
    if fp is not None and not re.fullmatch(r"sha256:[0-9a-f]{64}", str(fp)):
        raise RegistryError(f"{where}: checkpoint.fingerprint {fp!r} is not sha256:<64 hex>")
    if not isinstance(record["seconds"], (int, float)) or record["seconds"] < 0:
        raise RegistryError(f"{where}: seconds must be a non-negative number")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_") or "x"


def record_filename(record: Mapping[str, Any]) -> str:
    ck = record["checkpoint"]
    who = ck["fingerprint"][len("sha256:"):][:12] if ck.get("fingerprint") else _slug(
        os.path.basename(str(ck["path"]).rstrip("/")))
    langs = "+".join(record["languages"]) or "none"
    if len(langs) > 80:  # long language sets: keep the name short, still unique
        digest = hashlib.sha256(langs.encode()).hexdigest()[:10]
        langs = f"{len(record['languages'])}langs-{digest}"
    return f"{_slug(record['task'])}--{_slug(langs)}--{who}.json"


def write_record(registry_dir: str, record: Mapping[str, Any]) -> str:
    """Validate and write ``record`` atomically; returns its path."""
    validate_record(record)
    path = os.path.join(registry_dir, record_filename(record))
    write_json(path, dict(record))
    return path


def read_records(registry_dir: str) -> list[dict[str, Any]]:
    """Every record in ``registry_dir`` (sorted by task, checkpoint path, date); a file that
    breaks the schema raises ``RegistryError`` naming it."""
    if not os.path.isdir(registry_dir):
        raise FileNotFoundError(f"registry directory {registry_dir} does not exist")
    records = []
    for path in sorted(glob.glob(os.path.join(registry_dir, "*.json"))):
        try:
            record = read_json(path)
        except ValueError as e:
            raise RegistryError(f"{path}: not valid JSON ({e})") from None
        validate_record(record, where=path)
        records.append(record)
    records.sort(key=lambda r: (r["task"], r["checkpoint"]["path"], r["date"]))
    return records


def find_records(registry_dir: str, *, task: str | None = None,
                 fingerprint: str | None = None) -> list[dict[str, Any]]:
    """The records of one task and/or one weights fingerprint."""
    return [r for r in read_records(registry_dir)
            if (task is None or r["task"] == task)
            and (fingerprint is None or r["checkpoint"]["fingerprint"] == fingerprint)]


# ----------------------------------------------------------------------------- report
def _fmt(value) -> str:
    if value is None:
        return "n/a"
    value = float(value)
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"


def report(records_or_dir: str | Iterable[Mapping[str, Any]]) -> str:
    """A Markdown table: one row per (checkpoint, task, language), one column per metric."""
    records = (read_records(records_or_dir) if isinstance(records_or_dir, str)
               else list(records_or_dir))
    if not records:
        return "_no results in the registry_\n"
    metrics: list[str] = []
    for r in records:
        for lang_scores in r["scores"].values():
            for m in lang_scores:
                if m not in metrics:
                    metrics.append(m)
    head = ["checkpoint", "fingerprint", "task", "language"] + metrics + ["date"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        ck = r["checkpoint"]
        name = os.path.basename(str(ck["path"]).rstrip("/")) or str(ck["path"])
        fp = (ck["fingerprint"] or "")[len("sha256:"):][:12] or "-"
        for lang in sorted(r["scores"]):
            values = [_fmt(r["scores"][lang][m]) if m in r["scores"][lang] else ""
                      for m in metrics]
            lines.append("| " + " | ".join([name, fp, r["task"], lang] + values + [r["date"]])
                         + " |")
    return "\n".join(lines) + "\n"
