"""Each done run's ``status --json`` row kept as encoded text beside the journal snapshot, so that
``status --json`` copies it instead of decoding the snapshot's body and encoding the row again.

A done run's row (``RunReader.ended_json``) is a function of its journal records alone, which no
longer change once it is done. ``journal.rows`` in the sweep folder holds one line per done run:
``[order, run_id, state, metric]`` (its place in the fold's order, and what the document's
``counts`` and ``best`` read of it), a tab, then the row exactly as ``status --json`` writes it.

The file is appended to, in place, by whoever writes a snapshot (``write``, before the snapshot):
the rows of the runs done since the snapshot it started from. The snapshot's header then records
which prefix of the file is its body's rows (``rows``: length, CRC-32, count, and what a row's
bytes depend on besides the run: the runs folder's path, the metric's name, the retries
allowed). A torn tail, rows of another snapshot, a writer racing another: the bytes past that
prefix are not read, and a prefix whose checksum fails is not used (``status --json`` then reads
the body, as before, and the next writer rewrites the file). One file per sweep, whatever its size.

``stored_rows`` is the fast path: the snapshot head's open runs and the journal after it (as a
claim reads them) give the rows of the runs that are not done in the snapshot; the file gives the
others; merged by the fold's order. It is used only where it gives a full replay's answer: every
run of the snapshot's body in the file, no record after the snapshot naming one of them, no
target reached (whose run the document names from every run's records).
"""

from __future__ import annotations

import contextlib
import json
import os
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweepkit.jobs.sweeps.store.fold import Fold, FoldedRun
from sweepkit.jobs.sweeps.store.reader import LeaseCheck, RunReader
from sweepkit.train import json_values

if TYPE_CHECKING:
    from sweepkit.jobs.sweeps.store.journal_fold import JournalFold

ROWS_NAME = "journal.rows"
HEADER_FIELD = "rows"  # the snapshot header's field that says which prefix of the file is valid


@dataclass(frozen=True, slots=True)
class EncodedRow:
    """A run's row in ``status --json``: its text, and what the document's head reads of it."""

    run_id: str
    state: str
    metric: Any
    text: str


def encoded(row: dict[str, Any]) -> str:
    """A row's text in ``status --json``: strict JSON, NaN and inf as W&B's strings."""
    try:
        return _strict.encode(row)
    except ValueError:  # NaN or inf: W&B's strings (json_values)
        return json_values.dumps(row)


# one encoder for every run (json.dumps makes one per call when given options)
_strict = json.JSONEncoder(allow_nan=False)


def encode(row: dict[str, Any]) -> EncodedRow:
    return EncodedRow(row["run_id"], row["state"], row["metric"], encoded(row))


def _key(reader: RunReader) -> dict[str, Any]:
    """What a done run's row depends on besides its records."""
    return {
        "dir": str(reader.runs_root),
        "metric": reader.metric_name,
        "retries": reader.max_retries,
    }


# ----- writing ------------------------------------------------------------------------------------
def write(
    sweep_dir: Path,
    runs: dict[str, FoldedRun],
    done: Iterable[FoldedRun],
    base: tuple[dict[str, Any] | None, set[str]],
    reader: RunReader,
    mode: int,
) -> dict[str, Any] | None:
    """Have the rows file hold the rows of ``done`` (the snapshot's body; ``runs``: every run, in
    the fold's order) and return the snapshot header's ``rows`` field; None (best effort) if
    it cannot be written or a done run's end record does not say enough for its row. ``base``:
    the ``rows`` field of the snapshot this process read or wrote last, and the runs named by
    records folded in since; its prefix is kept where it still holds (its checksum matches, its
    runs are done here in the same places and no record since names them: a journal edited by
    hand can hand a done run out again)."""
    order = {run_id: i for i, run_id in enumerate(runs)}
    key = _key(reader)
    done_ids = {run.run_id for run in done}
    field, named = base
    try:
        fd = os.open(sweep_dir / ROWS_NAME, os.O_RDWR | os.O_CREAT, mode)
    except OSError:
        return None
    try:
        with contextlib.suppress(OSError):
            os.fchmod(fd, mode)  # another user's file in a lab group's sweep: left as it is
        kept, kept_ids, crc = _kept(fd, field, key, done_ids - named, order)
        lines = []
        for run in done:
            if run.run_id in kept_ids:
                continue
            try:
                row = reader.ended_json(run)
            except (TypeError, ValueError, KeyError, AttributeError):
                row = None  # a hand-edited end record (a time that is no number): no rows kept
            if row is None:
                return None
            lines.append(_line(order[run.run_id], encode(row)))
        data = "".join(lines).encode()
        _pwrite_all(fd, data, kept)
        os.ftruncate(fd, kept + len(data))
        os.fsync(fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    return {"len": kept + len(data), "crc": zlib.crc32(data, crc), "count": len(done_ids), **key}


def writer(
    sweep_dir: Path, reader: RunReader, mode: int
) -> Callable[[Fold, dict[str, Any] | None, set[str]], dict[str, Any] | None]:
    """The rows writer a sweep's JournalFold calls as it writes a snapshot (``RowsWriter``): the
    rows of the fold's done runs, by ``write``."""

    def write_rows(
        fold: Fold, base: dict[str, Any] | None, named: set[str]
    ) -> dict[str, Any] | None:
        done = [run for run_id, run in fold.runs.items() if run_id not in fold.open]
        return write(sweep_dir, fold.runs, done, (base, named), reader, mode)

    return write_rows


def _line(order: int, row: EncodedRow) -> str:
    return json.dumps([order, row.run_id, row.state, row.metric]) + "\t" + row.text + "\n"


def _kept(
    fd: int,
    base: dict[str, Any] | None,
    key: dict[str, Any],
    done_ids: set[str],
    order: dict[str, int],
) -> tuple[int, set[str], int]:
    """(bytes, run ids, CRC-32) of the file's prefix that stays: ``base``'s rows, up to the
    first that is not one of ``done_ids`` in the same place; nothing if ``base`` does not hold."""
    data = _valid(fd, base, key)
    if data is None:
        return 0, set(), 0
    kept, ids = 0, set()
    try:
        for line in data.splitlines(keepends=True):
            place, run_id, _, _ = json.loads(line[: line.index(b"\t")])
            if run_id not in done_ids or order.get(run_id) != place:
                break
            ids.add(run_id)
            kept += len(line)
    except (ValueError, TypeError):
        pass
    return kept, ids, zlib.crc32(data[:kept])


def _valid(fd: int, field: Any, key: dict[str, Any]) -> bytes | None:
    """The file's prefix that ``field`` (a snapshot header's ``rows``) says is valid, if its
    checksum matches and its rows were made as this reader makes them; else None."""
    if not isinstance(field, dict) or any(field.get(k) != v for k, v in key.items()):
        return None
    try:
        length, crc = int(field["len"]), int(field["crc"])
    except (KeyError, TypeError, ValueError):
        return None
    data = _pread_all(fd, length)
    return data if len(data) == length and zlib.crc32(data) == crc else None


def _pwrite_all(fd: int, data: bytes, at: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, at)
        view, at = view[written:], at + written


def _pread_all(fd: int, length: int) -> bytes:
    parts, at = [], 0
    while at < length:
        part = os.pread(fd, length - at, at)
        if not part:
            break
        parts.append(part)
        at += len(part)
    return b"".join(parts)


# ----- reading ------------------------------------------------------------------------------------
def read(
    sweep_dir: Path, field: Any, reader: RunReader, count: int
) -> list[tuple[int, EncodedRow]] | None:
    """The ``count`` rows that ``field`` (a snapshot header's ``rows``) says the file holds, each
    with its place in the fold's order; None if the file does not hold them as it says."""
    if not isinstance(field, dict) or field.get("count") != count:
        return None
    try:
        fd = os.open(sweep_dir / ROWS_NAME, os.O_RDONLY)
    except OSError:
        return None
    try:
        data = _valid(fd, field, _key(reader))
    except OSError:
        return None
    finally:
        os.close(fd)
    if data is None:
        return None
    try:
        return _parsed(data.decode(), count)
    except (ValueError, TypeError):  # a checksum that matches a file no writer made
        return None


def _parsed(text: str, count: int) -> list[tuple[int, EncodedRow]] | None:
    lines = text.split("\n")
    if lines.pop() != "" or len(lines) != count:
        return None
    heads, rows = [], []
    for line in lines:
        tab = line.index("\t")
        heads.append(line[:tab])
        rows.append(line[tab + 1 :])
    out = []
    for (order, run_id, state, metric), text_row in zip(
        json.loads("[" + ",".join(heads) + "]"), rows, strict=True
    ):
        out.append((int(order), EncodedRow(str(run_id), str(state), metric, text_row)))
    return out


def stored_rows(
    state: JournalFold, reader: RunReader, expired: LeaseCheck, now: float
) -> list[EncodedRow] | None:
    """Every run's row in the fold's order, the snapshot body's runs from the rows file and the
    others made now; None where that would not be a full replay's answer (module docstring)."""
    fold, found = state.fold, state.unread_snapshot
    if fold.unread is None or found is None or fold.target_hit:
        return None
    stored = read(state.path, found.header.get(HEADER_FIELD), reader, fold.unread.count)
    if stored is None:
        return None
    ids = {row.run_id for _, row in stored}
    if not ids.isdisjoint(state.named_after_snapshot) or not ids.isdisjoint(fold.runs):
        return None  # a record after the snapshot names a done run: only a full replay says how
    places = {run.run_id: order for order, run in found.open}
    after = fold.unread.count + len(found.open)  # the runs claimed after the snapshot come last
    live = reader.json_rows(fold.runs.values(), expired, now)
    stored += [(places.get(row["run_id"], after + i), encode(row)) for i, row in enumerate(live)]
    stored.sort(key=lambda placed: placed[0])
    return [row for _, row in stored]
