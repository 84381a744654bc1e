"""A small, dependency-free reader/writer of the safetensors format.

``TensorIndex.read_rows`` reads a range of one tensor's leading-axis rows with
``os.pread`` into a fresh buffer: only the bytes asked for leave the file, and (unlike a
memory map) nothing stays resident in the process once the caller drops the buffer.
The importer (``checkpoint.hf``) streams every tensor through it in bounded chunks and
counts the bytes (``bytes_read``). ``TensorIndex.get`` still hands out a read-only
memory-mapped view of a whole tensor for tests and small tools. bf16 tensors come back
as ``ml_dtypes.bfloat16`` arrays (the ``safetensors`` package's numpy backend cannot do
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
    """Lazy access to the tensors of a checkpoint directory (single file or sharded).

    Usable as a context manager; ``close()`` releases the open files and memory maps.
    """

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
        self._fds: dict[str, int] = {}
        self.bytes_read = 0  # bytes read by read_rows since construction

    def __enter__(self) -> "TensorIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._maps.clear()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

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

    def read_rows(self, key: str, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``start:stop`` of the tensor's leading axis, read from disk.

        Into a new array, or into the front of ``out`` (a C-contiguous uint8 buffer at
        least that large, reused across calls to spare the allocation and its page
        faults; the returned array is then a view of it). A 0-d tensor counts as one
        row. Exactly ``(stop - start) * row_bytes`` bytes are read (added to
        ``bytes_read``).
        """
        path, info, offset = self._entries[key]
        shape = self.shape(key)
        dtype = self.dtype(key)
        rows = shape[0] if shape else 1
        if not 0 <= start <= stop <= rows:
            raise SafetensorsError(f"tensor {key}: rows {start}:{stop} out of range for shape {shape}")
        row_shape = shape[1:]
        row_bytes = int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize
        first, end = info["data_offsets"]
        if end - first != rows * row_bytes:
            raise SafetensorsError(
                f"tensor {key}: header says {end - first} bytes, shape {shape} {dtype} needs {rows * row_bytes}"
            )
        rows_shape = (stop - start, *row_shape) if shape else ()
        nbytes = (stop - start) * row_bytes
        if out is None:
            result = np.empty(rows_shape, dtype)
            raw = result.reshape(-1).view(np.uint8)
        else:
            if out.dtype != np.uint8 or out.ndim != 1 or not out.flags.c_contiguous or out.size < nbytes:
                raise ValueError(f"read_rows: out must be a contiguous 1-d uint8 buffer of >= {nbytes} bytes")
            raw = out[:nbytes]
            result = raw.view(dtype).reshape(rows_shape)
        if path not in self._fds:
            self._fds[path] = os.open(path, os.O_RDONLY)
        _pread_into(self._fds[path], raw, offset + first + start * row_bytes, path)
        self.bytes_read += raw.size
        return result


def _pread_into(fd: int, buf: np.ndarray, position: int, path: str) -> None:
    """Fill the uint8 array ``buf`` from ``fd`` at ``position`` (short reads are retried)."""
    view = memoryview(buf)
    done = 0
    while done < len(view):
        if hasattr(os, "preadv"):
            n = os.preadv(fd, [view[done:]], position + done)
        else:  # pragma: no cover - platforms without preadv
            chunk = os.pread(fd, len(view) - done, position + done)
            n = len(chunk)
            view[done:done + n] = chunk
        if n == 0:
            raise SafetensorsError(f"{path}: file ends at byte {position + done}; the checkpoint is truncated")
        done += n


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
                f.write(memoryview(array.reshape(-1).view(np.uint8)))  # no bytes copy
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
