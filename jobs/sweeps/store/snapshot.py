"""A snapshot of the journal's fold, so that a fresh agent's start does not grow with the sweep.

The journal is append-only: the fold of its first ``offset`` bytes never changes. A snapshot
(``journal.snapshot`` in the sweep folder) holds that fold and the ``offset`` it covers; a reader
loads it and replays only the journal's bytes after ``offset``. Layout::

    {"v", "offset", "head_crc", "tail_crc", "target_hit", "index_len", "crc"}\\n   (the header)
    [[run_id, state, k, crashes, start, length], ...]\\n                          (the index)
    <each run's records as JSON: [params, claims, ends]>                         (the blob)

``head_crc`` and ``tail_crc`` are checksums of the journal's first and last ``CHECK_BYTES`` bytes
before ``offset``: a journal that was replaced, truncated or rewritten no longer matches, and the
snapshot is ignored. ``crc`` covers index and blob, so a torn or foreign file is ignored too.
A run is loaded as its index entry (its state); its records are parsed only when something reads
them (status, the report, a bayes or grid claim, a new record of that run). A random claim reads
only the running and queued runs: its start is the index (a few dozen bytes a run) and the tail.

Written to a temporary file, fsynced and renamed over the old one (atomic on POSIX and NFS), by
any agent, with or without the lock: two writers each leave a whole, true snapshot; the one renamed
last wins, whichever offset it covers. A killed writer leaves at most its temporary file (the next
writer removes it once it is an hour old). Anything wrong with a snapshot means a full replay, with one warning; the journal alone stays the truth, and
a sweep without a snapshot (written before they existed) is read as before.

The (de)serialisation is pure (``dump``, ``load``, ``covers``); ``read`` and ``write`` do the I/O.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.sweeps.store.fold import FoldedRun
from jobs.sweeps.store.journal import SHARED_FILE_MODE
from jobs.sweeps.store.leases import HOST

SNAPSHOT_NAME = "journal.snapshot"
VERSION = 1
CHECK_BYTES = 4096  # journal bytes checksummed at its head and before the offset covered
# An agent writes a new snapshot once it has replayed this many journal bytes past the last one
# (about 1,000 ended runs): rarely enough that writing it (a second or so at 20,000 runs, outside
# the lock) stays off the claims' path, often enough that the tail a fresh agent replays is small.
WRITE_AFTER_BYTES = 1_000_000
# A temporary snapshot file this old was left by a writer killed mid-write: the next writer removes it.
STALE_TMP_S = 3600


class SnapshotRun(FoldedRun):
    """A run loaded from a snapshot: its state from the index, its records parsed when first read.
    Loading one is a few attribute stores (a fresh agent loads thousands): the rest are class
    defaults until set."""

    grid_key = None
    engine_run = None
    bayes_run = None
    bayes_facts = None
    _params: dict[str, Any]
    _claims: list[dict[str, Any]]
    _ends: dict[int, dict[str, Any]]

    def __init__(self, entry: list[Any], blob: memoryview):
        self.run_id = entry[0]
        self._entry: list[Any] | None = entry  # [run_id, state, k, crashes, start, length]
        self._blob = blob

    @property
    def raw(self) -> bytes | None:
        """Its records as JSON (params, claims, ends), until they are parsed."""
        if self._entry is None:
            return None
        start, length = self._entry[4], self._entry[5]
        return bytes(self._blob[start : start + length])

    def _parse(self) -> None:
        raw = self.raw
        if raw is not None:
            params, claims, ends = json.loads(raw)
            self._params, self._claims = params, claims
            self._ends = {int(e["k"]): e for e in ends}
            self._entry = None
            del self._blob

    @property  # type: ignore[override]
    def params(self) -> dict[str, Any]:
        self._parse()
        return self._params

    @params.setter
    def params(self, value: dict[str, Any]) -> None:
        self._parse()
        self._params = value

    @property  # type: ignore[override]
    def claims(self) -> list[dict[str, Any]]:
        self._parse()
        return self._claims

    @claims.setter
    def claims(self, value: list[dict[str, Any]]) -> None:
        self._parse()
        self._claims = value

    @property  # type: ignore[override]
    def ends(self) -> dict[int, dict[str, Any]]:
        self._parse()
        return self._ends

    @ends.setter
    def ends(self, value: dict[int, dict[str, Any]]) -> None:
        self._parse()
        self._ends = value

    @property
    def k(self) -> int:
        return self._entry[2] if self._entry is not None else super().k

    @property
    def state(self) -> str:
        return self._entry[1] if self._entry is not None else super().state

    @property
    def crashes(self) -> int:
        return self._entry[3] if self._entry is not None else super().crashes


@dataclass
class Snapshot:
    offset: int  # the journal bytes it covers
    head_crc: int
    tail_crc: int
    target_hit: bool
    runs: dict[str, FoldedRun]


def _raw(run: FoldedRun) -> bytes:
    if isinstance(run, SnapshotRun) and run.raw is not None:
        return run.raw  # unread since it was loaded: written back as it was
    body = [run.params, run.claims, [run.ends[k] for k in sorted(run.ends)]]
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def check_crcs(journal_prefix_head: bytes, journal_prefix_tail: bytes) -> tuple[int, int]:
    return zlib.crc32(journal_prefix_head), zlib.crc32(journal_prefix_tail)


def dump(snapshot: Snapshot) -> bytes:
    """The snapshot file's bytes (pure)."""
    index, blobs, start = [], [], 0
    for run in snapshot.runs.values():
        raw = _raw(run)
        index.append([run.run_id, run.state, run.k, run.crashes, start, len(raw)])
        blobs.append(raw)
        start += len(raw)
    rest = json.dumps(index, separators=(",", ":")).encode() + b"\n" + b"".join(blobs)
    header = {
        "v": VERSION,
        "offset": snapshot.offset,
        "head_crc": snapshot.head_crc,
        "tail_crc": snapshot.tail_crc,
        "target_hit": snapshot.target_hit,
        "index_len": rest.index(b"\n") + 1,
        "crc": zlib.crc32(rest),
    }
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + rest


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load(data: bytes) -> Snapshot | str:
    """The snapshot in a file's bytes, or why it cannot be used (pure)."""
    try:
        newline = data.index(b"\n")
        header = json.loads(data[:newline])
        if not isinstance(header, dict) or header.get("v") != VERSION:
            return (
                f"version {header.get('v') if isinstance(header, dict) else '?'} is not {VERSION}"
            )
        rest = memoryview(data)[newline + 1 :]
        if zlib.crc32(rest) != header["crc"]:
            return "its checksum does not match (a torn or foreign file)"
        index_len = int(header["index_len"])
        blob = rest[index_len:]  # not copied: each run's slice is copied when it is parsed
        with _no_gc():  # thousands of new objects, none cyclic: the collector would rescan them
            index = json.loads(bytes(rest[:index_len]))
            runs: dict[str, FoldedRun] = {entry[0]: SnapshotRun(entry, blob) for entry in index}
        return Snapshot(
            int(header["offset"]),
            int(header["head_crc"]),
            int(header["tail_crc"]),
            bool(header["target_hit"]),
            runs,
        )
    except (ValueError, KeyError, TypeError):
        return "it is not a snapshot this version can read"


def covers(snapshot: Snapshot, journal_size: int, head: bytes, tail: bytes) -> str | None:
    """None if the snapshot is of a prefix of this journal, else why not (pure). ``head`` and
    ``tail`` are the journal's bytes at ``check_ranges(snapshot.offset)``."""
    if snapshot.offset > journal_size:
        return f"it covers {snapshot.offset} bytes, the journal has {journal_size} (truncated?)"
    if check_crcs(head, tail) != (snapshot.head_crc, snapshot.tail_crc):
        return "the journal is not the one it was made from (replaced or rewritten)"
    return None


def check_ranges(offset: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(start, length) of the journal's bytes whose checksums a snapshot of ``offset`` bytes keeps."""
    head = min(CHECK_BYTES, offset)
    tail_start = max(0, offset - CHECK_BYTES)
    return (0, head), (tail_start, offset - tail_start)


# ----- I/O ---------------------------------------------------------------------------------------
def _journal_checks(fd: int, offset: int) -> tuple[bytes, bytes]:
    (h0, hn), (t0, tn) = check_ranges(offset)
    return os.pread(fd, hn, h0), os.pread(fd, tn, t0)


def read(sweep_dir: Path, journal: Path) -> Snapshot | None:
    """The sweep's snapshot if it covers a prefix of its journal; None if there is none, or (with
    one warning) if it cannot be used: the caller replays the whole journal."""
    path = sweep_dir / SNAPSHOT_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        return _ignored(path, f"it cannot be read ({err.strerror})")
    snapshot = load(data)
    if isinstance(snapshot, str):
        return _ignored(path, snapshot)
    try:
        fd = os.open(journal, os.O_RDONLY)
    except OSError:
        return None  # the full replay says what is wrong with the journal
    try:
        size = os.fstat(fd).st_size
        head, tail = _journal_checks(fd, min(snapshot.offset, size))
    finally:
        os.close(fd)
    why = covers(snapshot, size, head, tail)
    return snapshot if why is None else _ignored(path, why)


def _ignored(path: Path, why: str) -> Snapshot | None:
    print(
        f"sweepkit: warning: ignored the journal snapshot {path}: {why}; the whole journal is "
        "read instead (an agent writes a new snapshot later)",
        file=sys.stderr,
    )
    return None  # noqa: RET501  (read's answer: no snapshot)


def write(
    sweep_dir: Path, journal: Path, runs: dict[str, FoldedRun], offset: int, target_hit: bool
) -> bool:
    """Write the snapshot of the fold ``runs`` of the journal's first ``offset`` bytes. Best effort:
    False (and nothing left behind) if it cannot be written, as on a read-only sweep folder."""
    path = sweep_dir / SNAPSHOT_NAME
    tmp = sweep_dir / f".{SNAPSHOT_NAME}.{HOST}.{os.getpid()}.tmp"
    try:
        fd = os.open(journal, os.O_RDONLY)
        try:
            head, tail = _journal_checks(fd, offset)
        finally:
            os.close(fd)
        data = dump(Snapshot(offset, *check_crcs(head, tail), target_hit, runs))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, SHARED_FILE_MODE)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, SHARED_FILE_MODE)
        os.replace(tmp, path)
        _remove_stale_tmp(sweep_dir)
        return True
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False


def _remove_stale_tmp(sweep_dir: Path) -> None:
    now = time.time()
    for leftover in sweep_dir.glob(f".{SNAPSHOT_NAME}.*.tmp"):
        with contextlib.suppress(OSError):
            if now - leftover.stat().st_mtime > STALE_TMP_S:
                leftover.unlink()
