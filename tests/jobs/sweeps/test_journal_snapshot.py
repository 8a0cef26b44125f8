"""The journal's snapshot (jobs/sweeps/store/snapshot.py): a fresh reader that starts from it and replays
only the journal's tail sees exactly what a full replay sees, and any snapshot that does not fit
its journal (torn, of another journal, ahead of a truncated one, another version) is ignored
with one warning, for a full replay."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from snapshot_sweeps import DEFINITION, facts, work

from sweepkit.jobs.sweeps import store
from sweepkit.jobs.sweeps.store import snapshot
from sweepkit.jobs.sweeps.store.journal import encode


def full_replay(path: Path) -> dict[str, Any]:
    """The facts from the whole journal: the snapshot moved aside while a fresh reader reads."""
    snap = path / snapshot.SNAPSHOT_NAME
    aside = path / "snapshot.aside"
    if snap.exists():
        snap.rename(aside)
    try:
        return facts(store.open_sweep(path))
    finally:
        if aside.exists():
            aside.rename(snap)


def from_snapshot(path: Path) -> tuple[store.LocalSweep, dict[str, Any]]:
    sweep = store.open_sweep(path)
    return sweep, facts(sweep)


def started_from_snapshot(path: Path) -> bool:
    """True if a fresh reader of the sweep starts from its snapshot's head (a claim's read)."""
    fresh = store.open_sweep(path)
    fresh.complete()
    return fresh.fold.unread is not None


def test_snapshot_plus_tail_equals_a_full_replay(tmp_path: Path) -> None:
    sweep = store.create_sweep(DEFINITION, tmp_path, source="test", max_retries=1)
    work(sweep, 14, seed=1)
    assert sweep.write_snapshot(force=True)
    reader, seen = from_snapshot(sweep.path)
    assert started_from_snapshot(reader.path)
    assert seen == full_replay(sweep.path)
    # more claims and ends after it: queued runs from the snapshot resumed, running ones ended
    work(sweep, 10, seed=2, leave_running=3)
    reader, seen = from_snapshot(sweep.path)
    assert started_from_snapshot(reader.path)
    full = full_replay(sweep.path)
    assert seen == full
    assert any(k >= 1 for _, k, *_ in full["runs"].values())  # a resumed run is among them
    # a reader that started from the snapshot goes on claiming like any other
    work(reader, 3, seed=3, leave_running=0)
    assert facts(reader) == full_replay(sweep.path)


def test_an_agent_writes_a_snapshot_once_the_journal_has_grown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot, "WRITE_AFTER_BYTES", 4000)
    sweep = store.create_sweep(DEFINITION, tmp_path, source="test")
    work(sweep, 3, seed=1)
    assert not (sweep.path / snapshot.SNAPSHOT_NAME).exists()  # a journal of today's format
    assert facts(store.open_sweep(sweep.path)) == full_replay(sweep.path)
    work(sweep, 12, seed=2)
    header = json.loads((sweep.path / snapshot.SNAPSHOT_NAME).read_bytes().split(b"\n")[0])
    assert 4000 <= header["offset"] < (sweep.path / "journal.jsonl").stat().st_size
    assert [p.name for p in sweep.path.iterdir() if p.name.endswith(".tmp")] == []
    reader, seen = from_snapshot(sweep.path)
    assert started_from_snapshot(reader.path) and seen == full_replay(sweep.path)


def _tear(path: Path, sweep: store.LocalSweep) -> None:
    snap = path / snapshot.SNAPSHOT_NAME
    data = snap.read_bytes()
    snap.write_bytes(data[: len(data) // 2])


def _other_version(path: Path, sweep: store.LocalSweep) -> None:
    snap = path / snapshot.SNAPSHOT_NAME
    head, rest = snap.read_bytes().split(b"\n", 1)
    header = json.loads(head)
    header["v"] = snapshot.VERSION + 1
    snap.write_bytes(json.dumps(header).encode() + b"\n" + rest)


def _journal_replaced(path: Path, sweep: store.LocalSweep) -> None:
    other = store.create_sweep(DEFINITION, path.parent / "other", source="test")
    work(other, 20, seed=9)
    (path / "journal.jsonl").write_bytes((other.path / "journal.jsonl").read_bytes())


def _journal_truncated(path: Path, sweep: store.LocalSweep) -> None:
    journal = path / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[: len(lines) // 2]))


def _journal_truncated_then_grown(path: Path, sweep: store.LocalSweep) -> None:
    """Cut, then appended past the snapshot's offset again: the size fits, the bytes do not."""
    _journal_truncated(path, sweep)
    work(store.open_sweep(path), 12, seed=5)


@pytest.mark.parametrize(
    "damage",
    [_tear, _other_version, _journal_replaced, _journal_truncated, _journal_truncated_then_grown],
)
def test_a_snapshot_that_does_not_fit_falls_back_to_a_full_replay(
    tmp_path: Path, damage: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = store.create_sweep(DEFINITION, tmp_path / "s", source="test", max_retries=1)
    work(sweep, 12, seed=1)
    assert sweep.write_snapshot(force=True)
    damage(sweep.path, sweep)
    capsys.readouterr()
    reader, seen = from_snapshot(sweep.path)
    warning = capsys.readouterr().err
    assert not started_from_snapshot(reader.path)
    assert seen == full_replay(sweep.path)
    lines = [line for line in warning.splitlines() if "journal snapshot" in line]
    assert len(lines) == 1 and str(sweep.path / snapshot.SNAPSHOT_NAME) in lines[0]
    # the next snapshot written replaces it, and is read
    assert reader.write_snapshot(force=True)
    again, seen_again = from_snapshot(sweep.path)
    assert started_from_snapshot(again.path) and seen_again == full_replay(sweep.path)


def test_a_stale_snapshot_is_read_with_the_tail_after_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = store.create_sweep(DEFINITION, tmp_path, source="test", max_retries=1)
    work(sweep, 6, seed=1)
    sweep.write_snapshot(force=True)
    work(sweep, 12, seed=2)  # far past it (the threshold is 1 MB: no newer snapshot written)
    header = json.loads((sweep.path / snapshot.SNAPSHOT_NAME).read_bytes().split(b"\n")[0])
    assert header["offset"] < (sweep.path / "journal.jsonl").stat().st_size / 2
    capsys.readouterr()
    reader, seen = from_snapshot(sweep.path)
    assert started_from_snapshot(reader.path) and seen == full_replay(sweep.path)
    assert "snapshot" not in capsys.readouterr().err


def test_a_torn_journal_line_after_the_snapshot_is_skipped_as_before(tmp_path: Path) -> None:
    sweep = store.create_sweep(DEFINITION, tmp_path, source="test")
    work(sweep, 5, seed=1)
    sweep.write_snapshot(force=True)
    with open(sweep.path / "journal.jsonl", "ab") as f:
        f.write(encode({"t": "end", "run": "x", "k": 0, "state": "finished"})[:20])  # killed
    work(sweep, 4, seed=2)
    reader, seen = from_snapshot(sweep.path)
    assert started_from_snapshot(reader.path) and seen == full_replay(sweep.path)


def _claim_and_end(path: str, seed: int, rounds: int) -> None:
    work(store.open_sweep(path), rounds, seed=seed, leave_running=1)


def _snapshot_often(path: str, stop_at: float) -> None:
    while time.time() < stop_at:
        reader = store.open_sweep(path)
        reader.refresh()
        reader.write_snapshot(force=True)


@pytest.mark.system
def test_concurrent_claims_and_snapshot_writers_agree_with_a_full_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot, "WRITE_AFTER_BYTES", 3000)  # the agents write them too
    sweep = store.create_sweep(DEFINITION, tmp_path, source="test", max_retries=1)
    ctx = multiprocessing.get_context("fork")
    writer = ctx.Process(target=_snapshot_often, args=(str(sweep.path), time.time() + 3600))
    writer.start()
    agents = [
        ctx.Process(target=_claim_and_end, args=(str(sweep.path), seed, 8)) for seed in range(4)
    ]
    for p in agents:
        p.start()
    for p in agents:
        p.join(timeout=300)
        assert p.exitcode == 0
    # and a snapshot writer killed at some point in its work leaves the sweep readable
    assert writer.pid is not None
    os.kill(writer.pid, signal.SIGKILL)
    writer.join()
    reader, seen = from_snapshot(sweep.path)
    assert started_from_snapshot(reader.path)
    full = full_replay(sweep.path)
    assert seen == full
    assert sum(k + 1 for _, k, *_ in full["runs"].values()) == 4 * 8  # every claim, once


def test_a_killed_writers_temporary_file_is_removed_once_stale(tmp_path: Path) -> None:
    sweep = store.create_sweep(DEFINITION, tmp_path, source="test")
    work(sweep, 3, seed=1)
    old = sweep.path / f".{snapshot.SNAPSHOT_NAME}.node7.4242.tmp"
    recent = sweep.path / f".{snapshot.SNAPSHOT_NAME}.node8.4343.tmp"
    old.write_bytes(b"half a snapsh")
    recent.write_bytes(b"being written")
    hours_ago = time.time() - 2 * snapshot.STALE_TMP_S
    os.utime(old, (hours_ago, hours_ago))
    assert sweep.write_snapshot(force=True)
    assert not old.exists() and recent.exists()  # another host may still be writing that one
    reader, seen = from_snapshot(sweep.path)
    assert started_from_snapshot(reader.path) and seen == full_replay(sweep.path)
