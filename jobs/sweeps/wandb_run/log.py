"""wandb's transaction log (``run-<id>.wandb``), read incrementally as records.

The format (wandb 0.31, written by wandb-core): a 7-byte header (``:W&B``, uint16 0xBEE1, uint8
version 0), then the LevelDB log format: 32 KiB blocks of chunks, each ``crc32 (IEEE, of the type
byte and the data) | uint16 length | uint8 type | data``, type FULL, FIRST, MIDDLE or LAST; a
block's tail shorter than a chunk header is padding. Each record is a
``wandb.proto.wandb_internal_pb2.Record``. The file grows while it is read, so a read stops at the
last complete record and the next one starts there, reading only what was appended.
``write_log`` is the inverse: records (as bytes, or protos) into a new log, chunked and padded as
wandb-core writes them, so that the records read from a log write it again byte for byte.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sweepkit.train.atomic import write_atomic

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32768
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_TYPE_CRC = {t: zlib.crc32(bytes([t])) for t in (FULL, FIRST, MIDDLE, LAST)}


class TransactionLog:
    """One ``run-<id>.wandb`` file, read incrementally: ``read_new()`` returns the records
    completed since the last call (as ``Record`` protos)."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0  # the end of the last complete record read (0: header not read yet)
        self.size_seen = -1
        self.bad_header = False
        self.skipped_corrupt = 0  # chunks dropped by a final read (bad CRC), as LevelDB does

    def read_new(self, final: bool = False, max_bytes: int = -1) -> list[Any]:
        """Records completed since the last call. ``final``: the writer has stopped, so a chunk
        that fails its CRC is corrupt (skipped to the next block) rather than not written yet.
        ``max_bytes``: read at most that much (the records that fit)."""
        from google.protobuf.message import DecodeError
        from wandb.proto.wandb_internal_pb2 import Record  # type: ignore[attr-defined]

        records = []
        for payload in self.read_payloads(final, max_bytes):
            record = Record()
            try:
                record.ParseFromString(payload)
                records.append(record)
            except DecodeError:  # damaged beyond its CRC, or a newer wandb's record
                self.skipped_corrupt += 1
        return records

    def read_payloads(self, final: bool = False, max_bytes: int = -1) -> list[bytes]:
        """As ``read_new``, each record as the bytes written (a proto serialised again need not
        be the same bytes: wandb-core's Go encoder orders fields its own way)."""
        unread = self._unread(final, max_bytes)
        if unread is None:
            return []
        data, pos = unread
        base = self.offset
        records: list[bytes] = []
        parts: list[bytes] = []
        record_start = pos
        while True:
            left = BLOCK - (base + pos) % BLOCK
            if left < CHUNK_HEADER:  # block trailer: zero padding
                if pos + left > len(data):
                    break
                pos += left
                if not parts:
                    record_start = pos
                continue
            if pos + CHUNK_HEADER > len(data):
                break
            crc, length, kind = struct.unpack_from("<IHB", data, pos)
            end = pos + CHUNK_HEADER + length
            if end > len(data):
                break
            chunk = data[pos + CHUNK_HEADER : end]
            if kind not in _TYPE_CRC or zlib.crc32(chunk, _TYPE_CRC[kind]) != crc:
                if not final:
                    break  # not written yet (or not visible yet on a network filesystem)
                self.skipped_corrupt += 1
                pos += left
                parts, record_start = [], pos
                continue
            pos = end
            if kind in (FULL, FIRST):
                parts = [chunk]
            elif parts:
                parts.append(chunk)
            else:  # the rest of a record whose start was dropped as corrupt
                record_start = pos
                continue
            if kind in (FULL, LAST):
                records.append(b"".join(parts))
                parts, record_start = [], pos
        self.offset = base + record_start
        return records

    def _unread(self, final: bool, max_bytes: int) -> tuple[bytes, int] | None:
        """The bytes written since the last read and where the first chunk starts in them (past
        the file's header on a first read); None when there is nothing new or no log to read."""
        try:
            size = os.stat(self.path).st_size
        except OSError:
            return None
        if size == self.size_seen and not final:
            return None
        self.size_seen = size
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(max_bytes)
        if self.offset:
            return data, 0
        if len(data) < len(HEADER):
            return None
        if data[: len(HEADER)] != HEADER:
            self.bad_header = True
            return None
        return data, len(HEADER)


def encode(records: Iterable[Any]) -> bytes:
    """A transaction log holding ``records`` (bytes, or protos to serialise), in order: the
    header, then each record in chunks that fill each 32 KiB block (FULL if it fits, else FIRST,
    MIDDLE..., LAST); a block tail shorter than a chunk header is zero padding, as LevelDB's
    writer leaves it (a tail of exactly a header holds an empty FIRST chunk)."""
    out = bytearray(HEADER)
    for record in records:
        data = record if isinstance(record, bytes) else record.SerializeToString()
        first = True
        while True:
            left = BLOCK - len(out) % BLOCK
            if left < CHUNK_HEADER:
                out += bytes(left)
                continue
            take = min(len(data), left - CHUNK_HEADER)
            piece, data = data[:take], data[take:]
            last = not data
            kind = (FULL if last else FIRST) if first else (LAST if last else MIDDLE)
            crc = zlib.crc32(piece, _TYPE_CRC[kind])
            out += struct.pack("<IHB", crc, take, kind) + piece
            first = False
            if last:
                break
    return bytes(out)


def write_log(path: Path, records: Iterable[Any], mode: int | None = None) -> None:
    """Write ``records`` as a new transaction log at ``path`` (atomically: all or nothing)."""
    write_atomic(path, encode(records), mode)


def decode(text: str) -> Any:
    """JSON text as a value; numbers (nearly every value) the fast way. W&B writes NaN and
    Infinity as JSON's extensions, which float() reads too."""
    if text and text[0] in "-0123456789NI":
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return float(text)
        except ValueError:
            pass
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text
