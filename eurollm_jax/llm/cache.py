"""The persistent response cache of ``LLMClient``: finished answers on disk, keyed by request.

A key is the SHA-256 of the canonical JSON of (model, mode, messages or prompt, sampling
parameters, seed): the same request to the same model name gets the same key whatever
endpoint serves it. Only finished answers are stored (a request that failed is sent again on
the next run).

Layout: ``cache_dir/part-<host>-<pid>-<random>.jsonl``, one file per open cache (so several
processes, or several clients in one process, can share a directory without locks), one
JSON line per answer, flushed as soon as the answer arrives: a killed job loses at most the
requests that were in flight. Opening a cache reads every part file of the directory; a torn
last line (a kill mid-write) is skipped. ``refresh()`` picks up what other writers added since.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import uuid
from typing import Any, Mapping

CACHE_VERSION = 1


def request_key(model: str, mode: str, payload: Any, params: Mapping[str, Any]) -> str:
    """The cache key of one request (hex SHA-256 of its canonical JSON)."""
    blob = json.dumps({"v": CACHE_VERSION, "model": model, "mode": mode, "input": payload,
                       "params": dict(params)},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """Finished answers by request key, persisted under ``directory`` (see module docstring)."""

    def __init__(self, directory: str):
        self.directory = os.path.abspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self._entries: dict[str, dict] = {}
        self._read_sizes: dict[str, int] = {}
        self._lock = threading.Lock()
        name = f"part-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._path = os.path.join(self.directory, name)
        self._file = None
        self.refresh()

    def __len__(self) -> int:
        return len(self._entries)

    def refresh(self) -> int:
        """Read what part files gained since the last read; returns the number of entries."""
        with self._lock:
            for name in sorted(os.listdir(self.directory)):
                path = os.path.join(self.directory, name)
                if not (name.startswith("part-") and name.endswith(".jsonl")) or path == self._path:
                    continue
                start = self._read_sizes.get(path, 0)
                with open(path, "rb") as f:
                    f.seek(start)
                    data = f.read()
                end = data.rfind(b"\n") + 1  # a torn last line is read again next time
                for line in data[:end].splitlines():
                    try:
                        entry = json.loads(line)
                        self._entries[entry["key"]] = entry
                    except (ValueError, KeyError, TypeError):
                        continue  # a torn line followed by later appends: skip it
                self._read_sizes[path] = start + end
            return len(self._entries)

    def get(self, key: str) -> dict | None:
        return self._entries.get(key)

    def put(self, key: str, entry: Mapping[str, Any]) -> None:
        """Store one finished answer (appended and flushed at once)."""
        record = dict(entry, key=key)
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self._entries[key] = record
            if self._file is None:
                self._file = open(self._path, "a", encoding="utf-8")
            self._file.write(line)
            self._file.flush()

    def sync(self) -> None:
        """fsync the part file (flushed lines already survive a killed process)."""
        with self._lock:
            if self._file is not None:
                os.fsync(self._file.fileno())

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
                self._file = None
