"""A small, dependency-free reader/writer of the safetensors format.

Reading memory-maps each file and hands out numpy views tensor by tensor, so a large
checkpoint is never copied whole into host memory. bf16 tensors come back as
``ml_dtypes.bfloat16`` arrays (the ``safetensors`` package's numpy backend cannot do
that). Writing streams tensors one at a time into shards of a bounded size, with the
``model.safetensors.index.json`` that transformers expects.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Callable, Mapping

import ml_dtypes
import numpy as np

from eurollm_jax.fileio import atomic_open, write_json

_DTYPES = {
    "F64": np.dtype(np.float64),
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "I64": np.dtype(np.int64),
    "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16),
    "I8": np.dtype(np.int8),
    "U8": np.dtype(np.uint8),
    "BOOL": np.dtype(np.bool_),
}
_NAMES = {v: k for k, v in _DTYPES.items()}
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


class SafetensorsError(ValueError):
    pass


def read_header(path: str) -> tuple[dict, int]:
    """(header dict without __metadata__, byte offset of the data section)."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise SafetensorsError(f"{path}: not a safetensors file (too short)")
        (n,) = struct.unpack("<Q", raw)
        if n > 100 * 2**20:
            raise SafetensorsError(f"{path}: header of {n} bytes; not a safetensors file")
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return header, 8 + n


class TensorIndex:
    """Lazy access to the tensors of a checkpoint directory (single file or sharded)."""

    def __init__(self, directory: str):
        self.directory = directory
        index_path = os.path.join(directory, INDEX_FILE)
        single = os.path.join(directory, SINGLE_FILE)
        if os.path.exists(index_path):
            with open(index_path) as f:
                weight_map = json.load(f)["weight_map"]
            files = sorted(set(weight_map.values()))
        elif os.path.exists(single):
            files = [SINGLE_FILE]
        else:
            found = sorted(p for p in os.listdir(directory) if p.endswith(".safetensors"))
            if not found:
                raise FileNotFoundError(
                    f"no safetensors weights in {directory}: expected {SINGLE_FILE} or {INDEX_FILE}"
                )
            files = found
        self._entries: dict[str, tuple[str, dict, int]] = {}
        for name in files:
            path = os.path.join(directory, name)
            header, offset = read_header(path)
            for key, info in header.items():
                self._entries[key] = (path, info, offset)
        self._maps: dict[str, np.memmap] = {}

    def keys(self):
        return self._entries.keys()

    def __contains__(self, key):
        return key in self._entries

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._entries[key][1]["shape"])

    def dtype(self, key: str) -> np.dtype:
        dtype = self._entries[key][1]["dtype"]
        if dtype not in _DTYPES:
            raise SafetensorsError(f"tensor {key}: unsupported dtype {dtype}")
        return _DTYPES[dtype]

    def get(self, key: str) -> np.ndarray:
        """A read-only memory-mapped view of one tensor."""
        path, info, offset = self._entries[key]
        if path not in self._maps:
            self._maps[path] = np.memmap(path, dtype=np.uint8, mode="r")
        start, end = info["data_offsets"]
        buf = self._maps[path][offset + start: offset + end]
        return buf.view(self.dtype(key)).reshape(self.shape(key))


def _header_bytes(entries: list[tuple[str, np.dtype, tuple[int, ...]]], metadata) -> tuple[bytes, int]:
    header = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    for name, dtype, shape in entries:
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        header[name] = {"dtype": _NAMES[dtype], "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return raw, offset


def write_sharded(
    directory: str,
    specs: list[tuple[str, np.dtype, tuple[int, ...]]],
    fetch: Callable[[str], np.ndarray],
    *,
    max_shard_bytes: int = 5 * 2**30,
    metadata: Mapping[str, str] | None = None,
) -> list[str]:
    """Write tensors named in ``specs`` (name, dtype, shape), fetching each lazily.

    Returns the written file names. One file is ``model.safetensors``; more get an index.
    Files are written atomically: an interrupted export never leaves a truncated file.
    """
    metadata = {"format": "pt", **(metadata or {})}
    shards: list[list[tuple[str, np.dtype, tuple[int, ...]]]] = [[]]
    size = 0
    for spec in specs:
        nbytes = int(np.prod(spec[2], dtype=np.int64)) * np.dtype(spec[1]).itemsize
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append((spec[0], np.dtype(spec[1]), tuple(spec[2])))
        size += nbytes
    names = (
        [SINGLE_FILE]
        if len(shards) == 1
        else [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    )
    os.makedirs(directory, exist_ok=True)
    weight_map, total = {}, 0
    for name, entries in zip(names, shards):
        raw, data_bytes = _header_bytes(entries, metadata)
        with atomic_open(os.path.join(directory, name), "wb") as f:
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
            for tensor_name, dtype, shape in entries:
                array = np.ascontiguousarray(np.asarray(fetch(tensor_name)).astype(dtype, copy=False))
                if array.shape != shape:
                    raise SafetensorsError(f"{tensor_name}: fetched shape {array.shape}, planned {shape}")
                f.write(array.tobytes())
                weight_map[tensor_name] = name
        total += data_bytes
    if len(names) > 1:
        write_json(os.path.join(directory, INDEX_FILE),
                   {"metadata": {"total_size": total}, "weight_map": weight_map}, sort_keys=False)
    elif os.path.exists(os.path.join(directory, INDEX_FILE)):
        os.remove(os.path.join(directory, INDEX_FILE))
    return names


def save_file(tensors: Mapping[str, np.ndarray], path: str) -> None:
    """Write a dict of arrays to one safetensors file (tests, small exports)."""
    directory, name = os.path.split(path)
    specs = [(k, np.asarray(v).dtype, np.asarray(v).shape) for k, v in tensors.items()]
    written = write_sharded(directory or ".", specs, lambda k: tensors[k], max_shard_bytes=2**62)
    if name != SINGLE_FILE:
        os.replace(os.path.join(directory or ".", written[0]), path)
