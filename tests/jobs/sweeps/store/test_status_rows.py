"""``status --json`` from the rows file beside the journal snapshot (store/json_rows.py): byte for
byte the document a full replay writes, on Hypothesis-generated journals (runs in every state,
retried, running, NaN and inf metrics, end records of an older version, several snapshots, each
one appending to the rows file). A torn, stale, damaged or raced rows file, a moved sweep folder
and a journal edited by hand after the snapshot fall back to reading every run, with the same
bytes; the next snapshot's writer mends the file."""

from __future__ import annotations

import io
import multiprocessing
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st
from snapshot_sweeps import work

from sweepkit.jobs.sweeps import status, store
from sweepkit.jobs.sweeps.store import snapshot
from sweepkit.jobs.sweeps.store.end_values import marked
from sweepkit.jobs.sweeps.store.journal import encode
from sweepkit.jobs.sweeps.store.json_rows import ROWS_NAME
from sweepkit.jobs.sweeps.vocabulary import DONE_STATES

SNAPSHOT = snapshot.SNAPSHOT_NAME

DEFINITION = {
    "method": "random",
    "metric": {"name": "acc", "goal": "maximize"},
    "command": ["${env}", "${interpreter}", "-m", "sweepkit.train", "${args}"],
    "parameters": {"lr": {"min": 0.0, "max": 1.0}, "width": {"values": [8, 16, 32]}},
}
numbers = st.one_of(
    st.integers(-(10**20), 10**20), st.floats(), st.none(), st.sampled_from([0.5, 0.25])
)


def document(sweep: store.LocalSweep) -> str:
    out = io.StringIO()
    status.write_json(sweep, out)
    return out.getvalue()


def fresh_document(path: Path) -> tuple[str, bool]:
    """What a fresh ``status --json`` writes, and whether it left the snapshot's body unread
    (the rows file's fast path)."""
    sweep = store.open_sweep(path)
    text = document(sweep)
    return text, sweep.fold.unread is not None


def replayed_document(path: Path, into: Path) -> str:
    """What a full replay of the journal writes: a copy of the folder with no snapshot."""
    shutil.copytree(path, into)
    (into / snapshot.SNAPSHOT_NAME).unlink()
    (into / ROWS_NAME).unlink(missing_ok=True)
    text = document(store.open_sweep(into))
    # the same folder's path in the runs' run_dir: the copy's path written as the original's
    return text.replace(str(into), str(path))


def read_all_document(path: Path) -> str:
    """What a reader that read every run (the snapshot's body) writes."""
    sweep = store.open_sweep(path)
    sweep.refresh()
    return document(sweep)


def write_snapshot(path: Path) -> None:
    """A snapshot as an agent writes one: a fresh reader (from the last snapshot) reads on."""
    sweep = store.open_sweep(path)
    sweep.refresh()
    assert sweep.write_snapshot(force=True)


def append(path: Path, records: list[dict[str, Any]]) -> None:
    with open(path / "journal.jsonl", "ab") as f:
        f.write(b"".join(encode(r) for r in records))


@st.composite
def run_events(draw: st.DrawFn, run_id: str, legacy: bool) -> list[dict[str, Any]]:
    """One run's records: attempts preempted or crashed then handed out again, the last one
    ended in any state or still running."""
    attempts = draw(st.integers(1, 3))
    at = draw(st.floats(1e9, 2e9))
    params = {
        "lr": {"value": draw(st.floats(0, 1))},
        "width": {"value": draw(st.sampled_from([8, 32]))},
    }
    out: list[dict[str, Any]] = []
    states_seen: list[str] = []
    for k in range(attempts):
        claim = {"t": "claim", "run": run_id, "k": k, "at": at + k, "agent": "a", "pid": 7}
        claim |= {"host": draw(st.sampled_from(["n1", "n2", None])), "slurm": None}
        out.append(claim | ({"params": params} if k == 0 else {}))
        last = k == attempts - 1
        if last and draw(st.booleans()) and draw(st.booleans()):
            break  # still running
        # handed out again only while queued: preempted, or crashed within the one retry
        again = ("preempted", "crashed") if "crashed" not in states_seen else ("preempted",)
        states = (*DONE_STATES, "preempted", "crashed") if last else again
        result = {
            "metric": draw(numbers),
            "history": draw(st.lists(st.floats(), max_size=3)),
            "summary": draw(st.dictionaries(st.sampled_from(["acc", "loss"]), numbers)),
        }
        end = {"t": "end", "run": run_id, "k": k, "state": draw(st.sampled_from(states))}
        states_seen.append(end["state"])
        end |= {"at": at + k + 0.5, "epochs": draw(st.integers(0, 3)), "exit_code": 0, **result}
        end |= {"error": draw(st.none() | st.just("boom")), **marked(result)}
        if not (legacy and draw(st.booleans())):  # an older version's end record: too little
            end["metric_source"] = draw(st.sampled_from(["wandb", "run.json", "none"]))
        out.append(end)
    return out


@st.composite
def journals(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[int], bool]:
    """(records, where snapshots are written, legacy): the runs' records interleaved as agents
    wrote them, so that runs end out of the order they were claimed in."""
    legacy = draw(st.booleans())
    pending = [draw(run_events(f"r{i}", legacy)) for i in range(draw(st.integers(0, 8)))]
    records = []
    picks = iter(draw(st.lists(st.integers(0, 7), max_size=40)))
    while pending:
        events = pending[next(picks, 0) % len(pending)]
        records.append(events.pop(0))
        pending = [p for p in pending if p]
    cuts = sorted(draw(st.lists(st.integers(0, len(records)), min_size=1, max_size=3)))
    return records, cuts, legacy


@given(journal=journals(), target=st.booleans())
def test_status_json_from_the_rows_file_is_a_full_replays(
    journal: tuple[list[dict[str, Any]], list[int], bool], target: bool
) -> None:
    records, cuts, legacy = journal
    definition = {**DEFINITION, "metric": {**DEFINITION["metric"], "target": 0.5}}
    with tempfile.TemporaryDirectory() as tmp:
        sweep = store.create_sweep(
            definition if target else DEFINITION, Path(tmp), source="test", max_retries=1
        )
        done = 0
        for cut in cuts:  # each snapshot appends to the rows file the last one left
            append(sweep.path, records[done:cut])
            write_snapshot(sweep.path)
            done = cut
        append(sweep.path, records[done:])  # a tail after the last snapshot
        # a running run's duration is counted to now: one clock for the three documents
        with mock.patch("time.time", return_value=2.5e9):
            text, fast = fresh_document(sweep.path)
            assert text == replayed_document(sweep.path, Path(tmp) / "replayed")
            assert text == read_all_document(sweep.path)
        if not legacy and not target:
            assert fast  # the snapshot's body was not read


# ----- the rows file found wrong: the full path, then mended ----------------------------------
def built(tmp_path: Path) -> Path:
    """A sweep with a snapshot (done, queued and running runs) and a journal tail after it."""
    sweep = store.create_sweep(DEFINITION, tmp_path / "s", source="test", max_retries=1)
    work(sweep, 10, seed=1)
    write_snapshot(sweep.path)
    work(sweep, 4, seed=2)
    return sweep.path


def as_replayed(path: Path, tmp_path: Path) -> bool:
    """Asserts that a fresh ``status --json`` writes what a full replay writes; True if it
    left the snapshot's body unread (the rows file's fast path)."""
    replayed = tmp_path / f"replayed-{len(list(tmp_path.iterdir()))}"
    with mock.patch("time.time", return_value=2.5e9):  # running runs' durations: one clock
        text, fast = fresh_document(path)
        assert text == replayed_document(path, replayed)
    return fast


def test_a_torn_or_damaged_rows_file_is_not_read_and_the_next_snapshot_mends_it(
    tmp_path: Path,
) -> None:
    path = built(tmp_path)
    rows = path / ROWS_NAME
    whole = rows.read_bytes()
    assert as_replayed(path, tmp_path)
    middle = len(whole) // 2
    flipped = whole[:middle] + bytes([whole[middle] ^ 1]) + whole[middle + 1 :]
    for damaged in (whole[:-1], whole[:middle], flipped, b""):
        rows.write_bytes(damaged)
        assert not as_replayed(path, tmp_path)
    rows.unlink()
    assert not as_replayed(path, tmp_path)
    rows.write_bytes(flipped)
    write_snapshot(path)  # the writer finds its base's rows wrong: all of them written again
    assert as_replayed(path, tmp_path)


def test_a_rows_file_and_a_snapshot_of_different_times(tmp_path: Path) -> None:
    """Each snapshot appends to the rows file; a snapshot reads only the prefix it wrote, so an
    older snapshot (renamed last by a slower writer) still reads its rows, and a newer
    snapshot never reads an older, shorter rows file."""
    path = built(tmp_path)
    old_rows, old_snapshot = (path / ROWS_NAME).read_bytes(), (path / SNAPSHOT).read_bytes()
    work(store.open_sweep(path), 6, seed=3)
    write_snapshot(path)
    new_rows = (path / ROWS_NAME).read_bytes()
    assert len(new_rows) > len(old_rows) and new_rows.startswith(old_rows)  # appended to
    (path / SNAPSHOT).write_bytes(old_snapshot)
    assert as_replayed(path, tmp_path)
    write_snapshot(path)
    (path / ROWS_NAME).write_bytes(old_rows)
    assert not as_replayed(path, tmp_path)


def test_a_moved_sweep_folder_is_read_in_full_until_its_next_snapshot(tmp_path: Path) -> None:
    """A done run's row holds its folder's path: rows written under another path are not used."""
    moved = built(tmp_path).rename(tmp_path / "moved")
    assert not as_replayed(moved, tmp_path)
    write_snapshot(moved)
    assert as_replayed(moved, tmp_path)


def test_records_after_the_snapshot_that_name_a_done_run_are_read_in_full(
    tmp_path: Path,
) -> None:
    """A journal edited by hand: an attempt of a done run handed out again after the snapshot,
    then ended again: only a full replay says what the run is now."""
    path = built(tmp_path)
    sweep = store.open_sweep(path)
    done = next(r for r in sweep.refresh().values() if r.state == "finished")
    claim = {**done.claims[-1], "k": done.k + 1, "at": 2e9}
    end = {**done.ends[done.k], "k": done.k + 1, "at": 2e9 + 1, "metric": 0.99}
    append(path, [claim])
    assert not as_replayed(path, tmp_path)
    append(path, [end])
    assert not as_replayed(path, tmp_path)
    write_snapshot(path)
    assert as_replayed(path, tmp_path)


def test_racing_snapshot_writers_never_give_a_wrong_row(tmp_path: Path) -> None:
    """Two writers from the same snapshot each append their rows at the same place: the loser's
    snapshot is read in full unless the file still holds its rows' bytes (its checksum)."""
    path = built(tmp_path)
    base = len((path / ROWS_NAME).read_bytes())
    first, second = store.open_sweep(path), store.open_sweep(path)
    first.complete(), second.complete()  # both read the snapshot's head
    work(store.open_sweep(path), 3, seed=4)
    first.refresh()
    assert first.write_snapshot(force=True)
    firsts = (path / SNAPSHOT).read_bytes()
    work(store.open_sweep(path), 3, seed=5)
    second.refresh()
    assert second.write_snapshot(force=True)  # over the rows the first one appended
    assert as_replayed(path, tmp_path)
    (path / SNAPSHOT).write_bytes(firsts)  # the first writer's rename came last
    as_replayed(path, tmp_path)
    rows = bytearray((path / ROWS_NAME).read_bytes())
    rows[base + 1] ^= 1  # the second writer's first row differs from the first one's
    (path / ROWS_NAME).write_bytes(rows)
    assert not as_replayed(path, tmp_path)


def _claim_and_end(path: str, seed: int) -> None:
    work(store.open_sweep(Path(path)), 8, seed=seed, leave_running=1)


def _snapshot_often(path: str) -> None:
    while True:
        write_snapshot(Path(path))


@pytest.mark.system
def test_concurrent_agents_and_snapshot_writers_leave_rows_a_full_replay_agrees_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Agents that write snapshots as they go (every 3,000 journal bytes here) and two writers
    in a loop, all appending to one rows file, one writer killed mid-way."""
    monkeypatch.setattr(snapshot, "WRITE_AFTER_BYTES", 3000)
    sweep = store.create_sweep(DEFINITION, tmp_path / "s", source="test", max_retries=1)
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_snapshot_often, args=(str(sweep.path),)) for _ in range(2)]
    agents = [ctx.Process(target=_claim_and_end, args=(str(sweep.path), s)) for s in range(4)]
    for p in writers + agents:
        p.start()
    for p in agents:
        p.join(timeout=300)
        assert p.exitcode == 0
    for p in writers:
        assert p.pid is not None
        os.kill(p.pid, signal.SIGKILL)
        p.join()
    as_replayed(sweep.path, tmp_path)
    write_snapshot(sweep.path)
    assert as_replayed(sweep.path, tmp_path)
