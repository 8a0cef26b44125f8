"""The bytes of a journal snapshot (snapshot.py does the I/O): pure (de)serialisation.

Version 6 (and 5, whose head has no ``table`` and no ``grid``; a file of another version is not
used: the journal is replayed): a head that a claim reads, and a body that only readers of every
run read (the report, a bayes proposal where no facts are kept)::

    {"v", "offset", "head_crc", "tail_crc", "target_hit", "head_len", "body_len", "body_crc",
     ["rows",] ["facts_len", "facts_crc",] "crc"}\\n                                                     (the header)
    {"open": [[run_id, order, params, claims, ends], ...], "count", "done", "states",
     "outcomes": [scored, failed, failed_trained, [run_id, end] or null],
     "ahead": [ended, [propose record, ...]], "table": {...} or null,
     "grid": [fingerprint, [start, end, ...]] or null}\\n                     (the head)
    [[run_id, state, k, crashes, start, length, order], ...]\\n <records>  (the body)
    {"fp", "finite", "ids", "order", "facts"}\\n   (a bayes sweep's facts, bayes_head.py)

The head holds the open runs (running and queued) whole, and of the others (ended, not queued)
only their number by state, how many are done, and what the broken-sweep rule reads of them
(``fold.Outcomes``: how many worked, failed, failed after an epoch, and the last failed run's id
and end record; version 3 had no ``outcomes``, and the rule read every run before each claim),
and the bayes proposals made ahead still pending with the count of ended attempts they are judged
by (``fold.Ahead``; version 4 had no ``ahead``: a claim could not take a proposal without a replay),
what ``status``'s table shows of the runs it leaves unread (``table``, table_head.py), and in a
grid sweep the grid points those runs hold (``grid``, grid_taken.py); version 5 had neither: status
and a grid claim read every run. ``crc`` covers the header and the head;
``body_crc`` the body, which is checked when it is read. A bayes sweep's snapshot (version 6) ends
with what a bayes proposal reads of the body's runs, ``facts_len`` bytes checked by ``facts_crc``
(both in the header only where it has them), so that a bayes claim reads no body. ``rows`` (optional) says which prefix of
the file ``journal.rows`` holds the body's runs as ``status --json`` writes them (json_rows.py).
``order`` is each run's place in the fold
(first claim first), so that the fold read in two parts keeps the journal's order.

No filter of the body's run ids: a claim after the snapshot names a new run (run ids are made by
an exclusive create), so a fresh claim needs none, and a journal edited by hand is replayed
exactly once every run is read (fold.py). Version 2 kept a Bloom filter of them; measured at
20,000 runs, a fresh claim's read of the head and the journal after it took 3 to 6 ms of CPU with
the filter and without it, and the head is 41% smaller without it (bench/RESULTS.md, 2026-12-06).
"""

from __future__ import annotations

import contextlib
import gc
import json
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from sweepkit.jobs.sweeps.store import grid_taken
from sweepkit.jobs.sweeps.store.fold import Ahead, Failure, FoldedRun, Outcomes, Unread, outcomes
from sweepkit.train import json_values

VERSION = 6
# version 5: no ``table`` nor ``grid`` in the head (their readers read every run)
READABLE = (5, 6)


def _records(run: FoldedRun) -> bytes:
    body = [run.params, run.claims, [run.ends[k] for k in sorted(run.ends)]]
    return json_values.dumps(body, separators=(",", ":")).encode()


def header_check(header: Mapping[str, Any], head: bytes | memoryview) -> int:
    """The checksum of the header (all but its ``crc``) and the head."""
    fields = {key: value for key, value in header.items() if key != "crc"}
    return zlib.crc32(head, zlib.crc32(json.dumps(fields, separators=(",", ":")).encode()))


def dump(
    runs: Mapping[str, FoldedRun],
    open_ids: list[str],
    offset: int,
    journal_crcs: tuple[int, int],
    target_hit: bool,
    max_retries: int,
    ahead: Ahead,
    *,
    table: dict[str, Any] | None = None,
    grid: grid_taken.GridIndex | None = None,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """The snapshot file's bytes: ``runs`` (in the fold's order), of which ``open_ids`` are
    running or queued, folded from the journal's first ``offset`` bytes; ``table``: what status's
    table shows of the others (table_head.py), None where the head cannot keep it; ``grid``: a
    grid sweep's order, in which the head keeps the points of the runs it leaves unread;
    ``extra``: more header fields (``rows``: which prefix of the rows file holds the body's runs,
    json_rows.py)."""
    order = {run_id: i for i, run_id in enumerate(runs)}
    opened = set(open_ids)
    index, blobs, start, states, done = [], [], 0, Counter[str](), 0
    ended = [run for run_id, run in runs.items() if run_id not in opened]
    for run in ended:
        run_id = run.run_id
        raw = _records(run)
        index.append([run_id, run.state, run.k, run.crashes, start, len(raw), order[run_id]])
        blobs.append(raw)
        start += len(raw)
        states[run.state] += 1
        done += run.done(max_retries)
    body = json.dumps(index, separators=(",", ":")).encode() + b"\n" + b"".join(blobs)
    head_doc = {
        "open": [_open_doc(runs[i], order[i]) for i in open_ids],
        "count": len(index),
        "done": done,
        "states": dict(states),
        "outcomes": _outcomes_doc(outcomes(ended)),
        "ahead": [ahead.ended, list(ahead.pending.values())],
        "table": table,
        "grid": grid_taken.head_doc(ended, grid),
    }
    head = json_values.dumps(head_doc, separators=(",", ":")).encode() + b"\n"
    header: dict[str, Any] = {
        "v": VERSION,
        "offset": offset,
        "head_crc": journal_crcs[0],
        "tail_crc": journal_crcs[1],
        "target_hit": target_hit,
        "head_len": len(head),
        "body_len": len(body),
        "body_crc": zlib.crc32(body),
        **(extra or {}),
    }
    header["crc"] = header_check(header, head)
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + head + body


def _open_doc(run: FoldedRun, order: int) -> list[Any]:
    """An open run as the head keeps it whole: id, place in the fold, params, claims and ends."""
    return [run.run_id, order, run.params, run.claims, [run.ends[k] for k in sorted(run.ends)]]


def _outcomes_doc(seen: Outcomes) -> list[Any]:
    last = seen.last_failed
    return [
        seen.scored,
        seen.failed,
        seen.failed_trained,
        None if last is None else [last.run_id, last.last_end],
    ]


def head_unread(doc: dict[str, Any]) -> Unread:
    """What the head says of the runs it leaves unread (none of them running): their counts."""
    scored, failed, trained, last = doc["outcomes"]
    failure = None if last is None else Failure(str(last[0]), dict(last[1]))
    return Unread(
        int(doc["count"]),
        int(doc["done"]),
        {str(k): int(n) for k, n in doc["states"].items()},
        Outcomes(int(scored), int(failed), int(trained), failure),
        grid_taken.from_head_doc(doc.get("grid")),  # version 5 has none
    )


def head_ahead(doc: dict[str, Any]) -> Ahead:
    """The head's pending proposals made ahead, and the count of ended attempts (a fresh copy)."""
    ended, pending = doc["ahead"]
    return Ahead(int(ended), {str(r["id"]): dict(r) for r in pending})


def load_head(header: dict[str, Any], head: bytes) -> dict[str, Any] | str:
    """The head document, or why it cannot be used."""
    if header_check(header, head) != header.get("crc"):
        return "its head's checksum does not match (a torn or foreign file)"
    doc = json.loads(head)
    if not isinstance(doc, dict):
        raise ValueError("not a head")
    return doc


def open_runs(doc: dict[str, Any]) -> list[tuple[int, FoldedRun]]:
    """The head's open runs, each with its place in the fold's order."""
    out = []
    for run_id, order, params, claims, ends in doc["open"]:
        run = FoldedRun(run_id, params)
        run.claims = claims
        run.ends = {int(e["k"]): e for e in ends}
        out.append((int(order), run))
    return out


def load_body(body: bytes, body_crc: int) -> list[tuple[int, FoldedRun]] | str:
    """The runs in a snapshot's body (ended, not queued), each with its place in the fold's
    order; or why they cannot be read."""
    if zlib.crc32(body) != body_crc:
        return "its body's checksum does not match (a torn, foreign or replaced file)"
    index_len = body.index(b"\n") + 1
    blob = memoryview(body)[index_len:]
    entries = json.loads(body[:index_len])
    # Parsed in one ``json.loads``, not run by run: the body is read when the runs it holds are
    # wanted (status, the report, a bayes proposal: all of them), and 20,000 separate
    # parses cost a third of a status at 20,000 runs.
    joined = b",".join(blob[entry[4] : entry[4] + entry[5]] for entry in entries)
    with paused_gc():  # thousands of new objects, none cyclic: the collector would rescan them
        records = json.loads(b"[" + joined + b"]")
        return [
            (entry[6], _folded(entry[0], params, claims, ends))
            for entry, (params, claims, ends) in zip(entries, records, strict=True)
        ]


def _folded(
    run_id: str, params: dict[str, Any], claims: list[dict[str, Any]], ends: list[dict[str, Any]]
) -> FoldedRun:
    run = FoldedRun(run_id, params)
    run.claims = claims
    run.ends = {int(e["k"]): e for e in ends}
    return run


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector off while thousands of acyclic objects (runs, views) are made:
    each collection would rescan all of them (half of a status's view building at 20,000 runs).
    Reference counting still frees them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
