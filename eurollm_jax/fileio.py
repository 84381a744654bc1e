"""Small file helpers shared by every stage: atomic writes (temp file + rename, so an
interrupted job never leaves a truncated file under the final name), JSON/JSONL files."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any, Iterable, Iterator


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w", encoding: str | None = "utf-8",
                newline: str | None = None) -> Iterator[Any]:
    """Open a temporary file next to ``path``; rename it onto ``path`` only on success."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + os.path.basename(path), dir=directory)
    os.close(fd)
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": newline}
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_json(path: str, obj: Any, *, sort_keys: bool = True) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_open(path) as f:
        json.dump(obj, f, indent=2, ensure_ascii=False, sort_keys=sort_keys)
        f.write("\n")


def write_text(path: str, text: str) -> None:
    """Write ``text`` (UTF-8), atomically."""
    with atomic_open(path) as f:
        f.write(text)


def read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_jsonl(path: str, records: Iterable[dict]) -> int:
    """Write one JSON object per line (UTF-8, not ASCII-escaped), atomically. Returns the count."""
    n = 0
    with atomic_open(path) as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False))
            f.write("\n")
            n += 1
    return n


def read_jsonl(path: str) -> list[dict]:
    """Read a well-formed JSONL file (use ``eurollm_jax.data.readers.iter_documents`` for untrusted input)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class JobMismatchError(ValueError):
    """A resumable job's directory already holds the work of another job (other inputs,
    settings or seeds): resuming would mix the two."""


def claim_job_dir(job_path: str, fingerprint: dict, mismatch: str) -> None:
    """Record ``fingerprint`` (a dict with "sha256") at ``job_path``, or check that the job
    recorded there is this one; raises ``JobMismatchError(mismatch)`` when it is not."""
    if os.path.exists(job_path):
        if read_json(job_path).get("sha256") != fingerprint["sha256"]:
            raise JobMismatchError(mismatch)
    else:
        write_json(job_path, fingerprint)
