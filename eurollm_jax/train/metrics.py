"""Training metrics: JSONL + TensorBoard writers and the progress line.

(MFU comes from ``eurollm_jax.parallel.hardware.mfu``: model FLOPs per token from
``ModelConfig.train_flops_per_token`` over the chips' peak; not reported on CPU.)
"""

from __future__ import annotations

import json
import math
import os
import struct
import time
from typing import Any, Mapping

from eurollm_jax.fileio import write_text


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


def progress_line(step: int, total: int, m: Mapping[str, Any], eta_s: float) -> str:
    parts = [f"step {step}/{total}", f"loss {m['loss']:.4f}"]
    if "eval_loss" in m:
        parts.append(f"eval {m['eval_loss']:.4f}")
    parts.append(f"gnorm {m['grad_norm']:.3g}")
    parts.append(f"lr {m['lr']:.3g}")
    if "tokens_per_s" in m:
        parts.append(f"{m['tokens_per_s']:,.0f} tok/s")
    if m.get("mfu") is not None:
        parts.append(f"MFU {100 * m['mfu']:.1f}%")
    parts.append(f"ETA {format_duration(eta_s)}")
    return " | ".join(parts)


# --------------------------------------------------------------------------- JSONL
class JsonlWriter:
    """Appends one JSON object per line, flushed each write (safe to tail)."""

    def __init__(self, path: str):
        self.path = path
        self._f = open(path, "a", encoding="utf-8")

    def write(self, record: Mapping[str, Any]) -> None:
        self._f.write(json.dumps(record, sort_keys=True) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def truncate_jsonl(path: str, max_step: int) -> None:
    """Drop records with ``step > max_step`` (steps that a resumed run will redo), atomically."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        lines = [ln for ln in f if ln.strip()]
    keep = []
    for ln in lines:
        try:
            if json.loads(ln).get("step", 0) <= max_step:
                keep.append(ln)
        except json.JSONDecodeError:  # a line cut by a kill
            continue
    write_text(path, "".join(keep))


# --------------------------------------------------------------------------- TensorBoard
# A dependency-free TensorBoard event-file writer: TFRecord framing (masked CRC32C) around
# hand-encoded ``Event`` protos holding ``Summary.Value.simple_value`` scalars.
def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(num: int, wire: int, payload: bytes) -> bytes:
    return _varint((num << 3) | wire) + payload


def _len_field(num: int, data: bytes) -> bytes:
    return _field(num, 2, _varint(len(data)) + data)


def _event(wall_time: float, step: int, *, file_version: str | None = None, scalars=None) -> bytes:
    msg = _field(1, 1, struct.pack("<d", wall_time)) + _field(2, 0, _varint(step))
    if file_version is not None:
        msg += _len_field(3, file_version.encode())
    if scalars:
        values = b"".join(
            _len_field(1, _len_field(1, tag.encode()) + _field(2, 5, struct.pack("<f", float(v))))
            for tag, v in scalars.items()
        )
        msg += _len_field(5, values)
    return msg


class TensorBoardWriter:
    """Writes scalar summaries to ``logdir/events.out.tfevents.*`` (readable by TensorBoard)."""

    def __init__(self, logdir: str):
        os.makedirs(logdir, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{os.uname().nodename}.{os.getpid()}"
        self.path = os.path.join(logdir, name)
        self._f = open(self.path, "ab")
        self._write(_event(time.time(), 0, file_version="brain.Event:2"))

    def _write(self, data: bytes) -> None:
        header = struct.pack("<Q", len(data))
        self._f.write(
            header
            + struct.pack("<I", _masked_crc(header))
            + data
            + struct.pack("<I", _masked_crc(data))
        )
        self._f.flush()

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        values = {
            k: float(v)
            for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
        }
        if values:
            self._write(_event(time.time(), int(step), scalars=values))

    def close(self) -> None:
        self._f.close()


def read_tensorboard_scalars(path: str) -> list[tuple[int, dict[str, float]]]:
    """Parse an event file written by ``TensorBoardWriter`` (checks the CRCs)."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        header = data[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        if struct.unpack("<I", data[pos + 8 : pos + 12])[0] != _masked_crc(header):
            raise ValueError("bad length CRC")
        body = data[pos + 12 : pos + 12 + length]
        if struct.unpack("<I", data[pos + 12 + length : pos + 16 + length])[0] != _masked_crc(body):
            raise ValueError("bad data CRC")
        pos += 16 + length
        step, scalars = _parse_event(body)
        if scalars:
            out.append((step, scalars))
    return out


def _read_varint(b: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        x = b[i]
        i += 1
        n |= (x & 0x7F) << shift
        shift += 7
        if not x & 0x80:
            return n, i


def _parse_fields(b: bytes):
    i = 0
    while i < len(b):
        key, i = _read_varint(b, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _read_varint(b, i)
        elif wire == 1:
            v, i = b[i : i + 8], i + 8
        elif wire == 5:
            v, i = b[i : i + 4], i + 4
        elif wire == 2:
            n, i = _read_varint(b, i)
            v, i = b[i : i + n], i + n
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield num, v


def _parse_event(b: bytes):
    step, scalars = 0, {}
    for num, v in _parse_fields(b):
        if num == 2:
            step = v
        elif num == 5:
            for vnum, value in _parse_fields(v):
                if vnum == 1:
                    tag, x = None, None
                    for fnum, fv in _parse_fields(value):
                        if fnum == 1:
                            tag = fv.decode()
                        elif fnum == 2:
                            x = struct.unpack("<f", fv)[0]
                    if tag is not None and x is not None:
                        scalars[tag] = x
    return step, scalars
