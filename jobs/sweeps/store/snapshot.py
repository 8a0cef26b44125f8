"""A snapshot of the journal's fold, so that a fresh agent's start does not grow with the sweep.

The journal is append-only: the fold of its first ``offset`` bytes never changes. A snapshot
(``journal.snapshot`` in the sweep folder) holds that fold and the ``offset`` it covers; a reader
loads it and replays only the journal's bytes after ``offset``. Its bytes are in
snapshot_format.py: a small head with the open (running and queued) runs and the counts of the
settled ones, which is all a claim reads, and a body with the settled runs, read only when
something asks for them (status, the report, a bayes or grid proposal, a record of such a run).

The header keeps checksums of the journal's first and last ``CHECK_BYTES`` bytes before
``offset``: a journal that was replaced, truncated or rewritten no longer matches, and the
snapshot is ignored. The head and the body have checksums of their own, so a torn or foreign
file is ignored too. A body found wrong when it is read at last (the file was replaced by a newer
snapshot meanwhile, as another agent may do at any time) is not needed: its runs are folded from
the journal's first ``offset`` bytes instead, which is what they were folded from.

Written to a temporary file, fsynced and renamed over the old one (atomic on POSIX and NFS), by
any agent, with or without the lock: two writers each leave a whole, true snapshot; the one renamed
last wins, whichever offset it covers. A killed writer leaves at most its temporary file (the next
writer removes it once it is an hour old). Anything wrong with a snapshot means a full replay,
with one warning; the journal alone stays the truth, and a sweep without a snapshot (written
before they existed) or with a version 1 snapshot (one file read whole) is read as before.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps.store.fold import Fold, FoldedRun, Runs, Settled, apply
from sweepkit.jobs.sweeps.store.journal import SHARED_FILE_MODE, checked_body, parse_bodies
from sweepkit.jobs.sweeps.store.leases import HOST
from sweepkit.jobs.sweeps.store.snapshot_format import (
    VERSION,
    SnapshotRun,
    bloom_has,
    dump,
    load_body,
    load_head,
    load_v1,
    open_runs,
)
from sweepkit.train.errors import UserError

__all__ = ["VERSION", "SnapshotRun", "read", "write"]

SNAPSHOT_NAME = "journal.snapshot"
CHECK_BYTES = 4096  # journal bytes checksummed at its head and before the offset covered
# An agent writes a new snapshot once it has replayed this many journal bytes past the last one
# (about 1,000 ended runs): rarely enough that writing it (a second or so at 20,000 runs, outside
# the lock) stays off the claims' path, often enough that the tail a fresh agent replays is small.
WRITE_AFTER_BYTES = 1_000_000
# A temporary snapshot file this old was left by a writer killed mid-write: the next writer removes it.
STALE_TMP_S = 3600
# The first read of a snapshot: its header and head (200 open runs take about 100 kB), in one read.
FIRST_READ = 256 * 1024


@dataclass
class Snapshot:
    offset: int  # the journal bytes it covers
    head_crc: int
    tail_crc: int
    target_hit: bool
    runs: Runs
    open: dict[str, FoldedRun] | None  # None (version 1): the reader finds them (Fold.reopen)


def check_crcs(journal_prefix_head: bytes, journal_prefix_tail: bytes) -> tuple[int, int]:
    return zlib.crc32(journal_prefix_head), zlib.crc32(journal_prefix_tail)


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


def _pread(fd: int, length: int, at: int) -> bytes:
    parts = []
    while length > 0:
        part = os.pread(fd, length, at)
        if not part:
            break
        parts.append(part)
        length, at = length - len(part), at + len(part)
    return b"".join(parts)


def read(sweep_dir: Path, journal: Path, blank: Callable[[], Fold]) -> Snapshot | None:
    """The sweep's snapshot if it covers a prefix of its journal; None if there is none, or (with
    one warning) if it cannot be used: the caller replays the whole journal. ``blank``: an empty
    fold of this sweep, to fold the settled runs from the journal if the body is found wrong."""
    path = sweep_dir / SNAPSHOT_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as err:
        return _ignored(path, f"it cannot be read ({err.strerror})")
    try:
        snapshot = _load(fd, path, journal, blank)
    except OSError as err:
        snapshot = f"it cannot be read ({err.strerror})"
    except (ValueError, KeyError, TypeError, IndexError):
        snapshot = "it is not a snapshot this version can read"
    finally:
        os.close(fd)
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


def _load(fd: int, path: Path, journal: Path, blank: Callable[[], Fold]) -> Snapshot | str:
    """The snapshot open at ``fd``: its header and head read, its body left for later."""
    size = os.fstat(fd).st_size
    first = os.pread(fd, FIRST_READ, 0)
    newline = first.index(b"\n")
    header = json.loads(first[:newline])
    if not isinstance(header, dict) or header.get("v") not in (1, VERSION):
        version = header.get("v") if isinstance(header, dict) else "?"
        return f"version {version} is not {VERSION}"
    journal_crcs = int(header["head_crc"]), int(header["tail_crc"])
    offset, target_hit = int(header["offset"]), bool(header["target_hit"])
    if header["v"] == 1:
        rest = memoryview(first + _pread(fd, size - len(first), len(first)))[newline + 1 :]
        whole = load_v1(header, rest)
        if isinstance(whole, str):
            return whole
        return Snapshot(offset, *journal_crcs, target_hit, Runs(whole), None)
    body_at = newline + 1 + int(header["head_len"])
    if size != body_at + int(header["body_len"]):
        return f"it has {size} bytes, its header says {body_at + int(header['body_len'])} (a torn file)"
    head = first[newline + 1 : body_at]
    if len(first) < body_at:
        head += _pread(fd, body_at - len(first), len(first))
    doc = load_head(header, head)
    if isinstance(doc, str):
        return doc
    opened = open_runs(doc)
    runs = Runs({run.run_id: run for _, run in opened})
    bits, table = int(doc["bits"]), base64.b64decode(doc["ids"])
    body = functools.partial(
        _read_body, path, first[:newline], header, journal, blank, {r.run_id for _, r in opened}
    )
    runs.defer(
        Settled(
            int(doc["count"]),
            int(doc["final"]),
            {str(k): int(n) for k, n in doc["states"].items()},
            {run.run_id: order for order, run in opened},
            lambda run_id: bloom_has(bits, table, run_id),
            body,
        )
    )
    return Snapshot(offset, *journal_crcs, target_hit, runs, {r.run_id: r for _, r in opened})


def _read_body(
    path: Path,
    header_line: bytes,
    header: dict[str, Any],
    journal: Path,
    blank: Callable[[], Fold],
    opened: set[str],
) -> list[tuple[int, FoldedRun]]:
    """The settled runs: from the snapshot's body if the file is still the one whose head was
    read, else (one warning) folded from the journal's bytes the snapshot covers."""
    body_len = int(header["body_len"])
    try:
        with open(path, "rb") as f:
            same = f.readline().rstrip(b"\n") == header_line
            f.seek(len(header_line) + 1 + int(header["head_len"]))
            body = f.read(body_len) if same else b""
        runs = load_body(body, int(header["body_crc"])) if same else "it was replaced meanwhile"
    except OSError as err:
        runs = f"it cannot be read ({err.strerror})"
    except (ValueError, KeyError, TypeError, IndexError):
        runs = "it is not a snapshot this version can read"
    if not isinstance(runs, str):
        return runs
    print(
        f"sweepkit: warning: could not read the settled runs of the journal snapshot {path}: "
        f"{runs}; they are folded from the journal instead",
        file=sys.stderr,
    )
    return _fold_settled(journal, int(header["offset"]), blank, opened)


def _fold_settled(
    journal: Path, offset: int, blank: Callable[[], Fold], opened: set[str]
) -> list[tuple[int, FoldedRun]]:
    """The runs of the journal's first ``offset`` bytes that are not among ``opened``, each with
    its place in the fold's order."""
    try:
        with open(journal, "rb") as f:
            data = f.read(offset)
    except OSError as err:
        raise UserError(f"cannot read sweep journal {journal}: {err.strerror}") from None
    lines = data.splitlines(keepends=True)
    records = parse_bodies([b for line in lines if (b := checked_body(line)) is not None])
    fold = apply(blank(), records)
    return [(i, r) for i, r in enumerate(fold.runs.values()) if r.run_id not in opened]


def _ignored(path: Path, why: str) -> Snapshot | None:
    print(
        f"sweepkit: warning: ignored the journal snapshot {path}: {why}; the whole journal is "
        "read instead (an agent writes a new snapshot later)",
        file=sys.stderr,
    )
    return None  # noqa: RET501  (read's answer: no snapshot)


def write(sweep_dir: Path, journal: Path, fold: Fold, offset: int) -> bool:
    """Write the snapshot of ``fold``, the fold of the journal's first ``offset`` bytes. Best
    effort: False (and nothing left behind) if it cannot be written, as on a read-only folder."""
    path = sweep_dir / SNAPSHOT_NAME
    tmp = sweep_dir / f".{SNAPSHOT_NAME}.{HOST}.{os.getpid()}.tmp"
    try:
        fd = os.open(journal, os.O_RDONLY)
        try:
            head, tail = _journal_checks(fd, offset)
        finally:
            os.close(fd)
        crcs = check_crcs(head, tail)
        data = dump(fold.runs, list(fold.open), offset, crcs, fold.target_hit, fold.max_retries)
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
