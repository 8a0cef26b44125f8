"""The bytes of a journal snapshot (snapshot.py does the I/O): pure (de)serialisation.

Version 2, the one written: a head that a claim reads, and a body that only readers of every run
read (status, the report, a bayes or grid proposal)::

    {"v", "offset", "head_crc", "tail_crc", "target_hit", "head_len", "body_len", "body_crc",
     "crc"}\\n                                                              (the header)
    {"open": [[run_id, order, params, claims, ends], ...], "count", "final", "states", "bits",
     "ids"}\\n
                                                                           (the head)
    [[run_id, state, k, crashes, start, length, order], ...]\\n <records>  (the body)

The head holds the open runs (running and queued) whole, and of the settled runs (ended for
good) only their number by state and a Bloom filter of their ids (``ids``), so that a run claimed
after the snapshot is known not to be among them without reading them. ``crc`` covers the header
and the head; ``body_crc`` the body, which is checked when it is read. ``order`` is each run's place
in the fold (first claim first), so that the fold read in two parts keeps the journal's order.

Version 1 (written before, still read): the header, then the index and records of every run.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import hashlib
import json
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from sweepkit.jobs.sweeps.store.fold import FoldedRun
from sweepkit.train import json_values

VERSION = 2
BLOOM_BITS_PER_RUN = 16  # 4 probes: about 1 new run in 400 thought maybe settled (a full read)
BLOOM_PROBES = 4


class SnapshotRun(FoldedRun):
    """A run loaded from a snapshot: its state from the index, its records parsed when first read.
    Loading one is a few attribute stores (a reader loads thousands): the rest are class
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
        self._entry: list[Any] | None = entry  # [run_id, state, k, crashes, start, length, ...]
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


# ----- the Bloom filter of settled run ids ---------------------------------------------------
def _probes(run_id: str, bits: int) -> Iterator[int]:
    digest = hashlib.blake2b(run_id.encode(), digest_size=4 * BLOOM_PROBES).digest()
    for i in range(BLOOM_PROBES):
        yield int.from_bytes(digest[4 * i : 4 * i + 4], "little") % bits


def bloom(run_ids: list[str]) -> tuple[int, bytes]:
    bits = max(64, BLOOM_BITS_PER_RUN * len(run_ids))
    table = bytearray((bits + 7) // 8)
    for run_id in run_ids:
        for p in _probes(run_id, bits):
            table[p >> 3] |= 1 << (p & 7)
    return bits, bytes(table)


def bloom_has(bits: int, table: bytes, run_id: str) -> bool:
    return all(table[p >> 3] & (1 << (p & 7)) for p in _probes(run_id, bits))


# ----- version 2 ---------------------------------------------------------------------------
def _records(run: FoldedRun) -> bytes:
    if isinstance(run, SnapshotRun) and run.raw is not None:
        return run.raw  # unread since it was loaded: written back as it was
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
) -> bytes:
    """The snapshot file's bytes: ``runs`` (in the fold's order), of which ``open_ids`` are
    running or queued, folded from the journal's first ``offset`` bytes."""
    order = {run_id: i for i, run_id in enumerate(runs)}
    opened = set(open_ids)
    index, blobs, start, states, final = [], [], 0, Counter[str](), 0
    for run_id, run in runs.items():
        if run_id in opened:
            continue
        raw = _records(run)
        index.append([run_id, run.state, run.k, run.crashes, start, len(raw), order[run_id]])
        blobs.append(raw)
        start += len(raw)
        states[run.state] += 1
        final += run.final(max_retries)
    body = json.dumps(index, separators=(",", ":")).encode() + b"\n" + b"".join(blobs)
    bits, table = bloom([str(entry[0]) for entry in index])
    head_doc = {
        "open": [
            [
                i,
                order[i],
                runs[i].params,
                runs[i].claims,
                [runs[i].ends[k] for k in sorted(runs[i].ends)],
            ]
            for i in open_ids
        ],
        "count": len(index),
        "final": final,
        "states": dict(states),
        "bits": bits,
        "ids": base64.b64encode(table).decode(),
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
    }
    header["crc"] = header_check(header, head)
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + head + body


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
    """The settled runs in a snapshot's body, each with its place in the fold's order; or why
    they cannot be read."""
    if zlib.crc32(body) != body_crc:
        return "its body's checksum does not match (a torn, foreign or replaced file)"
    index_len = body.index(b"\n") + 1
    blob = memoryview(body)[index_len:]
    entries = json.loads(body[:index_len])
    # Parsed in one ``json.loads``, not run by run: the body is read when the settled runs are
    # wanted (status, the report, a bayes or grid proposal: all of them), and 20,000 separate
    # parses cost a third of a status at 20,000 runs.
    joined = b",".join(blob[entry[4] : entry[4] + entry[5]] for entry in entries)
    with paused_gc():  # thousands of new objects, none cyclic: the collector would rescan them
        records = json.loads(b"[" + joined + b"]")
        return [
            (entry[6], _folded(entry[0], params, claims, ends))
            for entry, (params, claims, ends) in zip(entries, records, strict=True)
        ]


class SettledRun(FoldedRun):
    """A settled run read from a snapshot's body (its records parsed with all the others)."""


def _folded(
    run_id: str, params: dict[str, Any], claims: list[dict[str, Any]], ends: list[dict[str, Any]]
) -> FoldedRun:
    run = SettledRun(run_id, params)
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


# ----- version 1 -----------------------------------------------------------------------------
def load_v1(header: dict[str, Any], rest: memoryview) -> dict[str, FoldedRun] | str:
    """The runs of a version 1 snapshot (header and the bytes after it), or why not."""
    if zlib.crc32(rest) != header["crc"]:
        return "its checksum does not match (a torn or foreign file)"
    index_len = int(header["index_len"])
    blob = rest[index_len:]  # not copied: each run's slice is copied when it is parsed
    with paused_gc():
        index = json.loads(bytes(rest[:index_len]))
        return {entry[0]: SnapshotRun(entry, blob) for entry in index}
