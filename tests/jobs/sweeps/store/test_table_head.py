"""``status``'s table of a big sweep from the snapshot's head (jobs/sweeps/store/table_head.py):
for any history agents write and any place the snapshot was taken, a fresh reader's table from
the head and the journal after it is byte for byte the table of a full replay, its head keeps a
bounded part whatever the number of runs, and it reads none of the runs the head left unread."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sweepkit.jobs.sweeps import status, store
from sweepkit.jobs.sweeps.store import snapshot, snapshot_format, table_head

DEFINITION = {
    "method": "random",
    "metric": {"name": "acc", "goal": "maximize", "target": 0.95},
    "command": ["${env}", "${interpreter}", "-m", "sweepkit.train", "${args}"],
    "parameters": {
        "lr": {"min": 0.0, "max": 1.0},
        "width": {"values": [8, 16]},
        "seed": {"value": 3},
    },
}
STATES = ("finished", "failed", "stopped", "crashed", "preempted")
METRICS = (None, 0.5, 1.0, 1.0, 0.97)  # ties at the top; 1.0 and 0.97 reach the target
ERRORS = (None, "boom", "Traceback:\n  x\nValueError: bad lr", "killed", "oom\n")
TIMES = (1_000.0, 1_000.0, 2_000.0, 86_400.5)  # few, so that starts tie
NOW = 100_000.0  # the time both tables are drawn at (a running run's duration is now - start)

# one step of agents' work: a new run (with an extra parameter or not), the end of a running
# attempt, a queued run resumed, a run that ends without the fields a table reads from its end
steps = st.one_of(
    st.tuples(st.just("new"), st.sampled_from(TIMES), st.integers(0, 3)),
    st.tuples(
        st.just("end"),
        st.integers(-3, 60),  # below 0: one of the newest runs (-1: the newest)
        st.sampled_from(STATES),
        st.sampled_from(METRICS),
        st.sampled_from(ERRORS),
        st.sampled_from(TIMES),
        st.booleans(),
    ),
    st.tuples(st.just("resume"), st.integers(0, 99), st.sampled_from(TIMES)),
)


def history(actions: list[tuple[Any, ...]], max_retries: int) -> list[dict[str, Any]]:
    """The records agents append for ``actions``, with 45 new runs first (a big sweep)."""
    fold, records = store.Fold(max_retries=max_retries), []
    news = [("new", TIMES[i % 4], i % 5) for i in range(45)]
    for i, action in enumerate([*news, *actions]):
        running = [r for r in fold.open.values() if r.state == "running"]
        queued = [r for r in fold.open.values() if r.state != "running"]
        if action[0] == "new":
            params: dict[str, Any] = {"lr": {"value": i / 100}, "width": {"value": 8 + i % 2}}
            if action[2] == 1:
                params["extra"] = {"value": i}
            elif action[2] == 2:
                params["opt"] = {"value": {"beta": i, "eps": 1}}
            record = {"t": "claim", "run": f"r{i:03d}", "k": 0, "params": params}
            record |= {"at": action[1], "host": f"h{i % 3}", "slurm": {"job_id": str(i)}}
        elif action[0] == "end" and running:
            _, pick, state, metric, error, at, full = action
            run = running[pick % len(running)]
            record = {"t": "end", "run": run.run_id, "k": run.k, "state": state, "at": at + 60}
            record |= {"metric": metric, "error": error, "exit_code": 1, "summary": {}}
            if full:  # what an agent's end record holds; else the table reads the run's folder
                record |= {"epochs": 2, "metric_source": "wandb", "history": [metric or 0.0]}
        elif action[0] == "resume" and queued:
            run = queued[action[1] % len(queued)]
            record = {"t": "claim", "run": run.run_id, "k": run.k + 1, "at": action[2]}
        else:
            continue
        store.apply(fold, [record])
        records.append(record)
    return records


def tables(records: list[dict[str, Any]], cut: int, max_retries: int) -> tuple[str, str, Any]:
    """(the table from the snapshot's head and the tail, that of a full replay, the head's table
    part), of a sweep whose snapshot covers the first ``cut`` records."""
    with tempfile.TemporaryDirectory() as tmp:
        sweep = store.create_sweep(
            DEFINITION, Path(tmp) / "s", source="test", max_retries=max_retries
        )
        sweep.append(records[:cut])
        assert sweep.write_snapshot(force=True)
        if records[cut:]:
            sweep.append(records[cut:])
        full = shutil.copytree(sweep.path, Path(tmp) / "full")
        (full / snapshot.SNAPSHOT_NAME).unlink()
        fresh = store.open_sweep(sweep.path)
        with mock.patch.object(time, "time", lambda: NOW):  # both tables drawn at one time
            from_head = status.render(fresh)
            from_replay = status.render(store.open_sweep(full))
        found = snapshot.read(sweep.path, sweep.path / "journal.jsonl")
        assert found is not None
        return (
            from_head.replace(str(sweep.path), "S"),
            from_replay.replace(str(full), "S"),
            found.table,
        )


@given(
    actions=st.lists(steps, min_size=10, max_size=100),
    cut=st.one_of(st.floats(0, 1), st.floats(0.7, 1)),  # often a short tail
    max_retries=st.integers(0, 2),
)
def test_the_table_from_the_head_is_a_full_replays(
    actions: list[tuple[Any, ...]], cut: float, max_retries: int
) -> None:
    records = history(actions, max_retries)
    from_head, from_replay, part = tables(records, max(1, int(cut * len(records))), max_retries)
    assert from_head == from_replay
    if part is not None:  # bounded, whatever the number of runs
        assert len(part["runs"]) <= table_head.BEST_SHOWN + table_head.TABLE_RUNS
        assert len(part["errors"]) <= table_head.MAX_ERRORS
        assert len(part["names"]) <= table_head.MAX_NAMES


def big_sweep(tmp_path: Path, runs: int) -> store.LocalSweep:
    """``runs`` runs that ended in turn, each way, with a snapshot of all but the last 10 runs."""
    actions: list[tuple[Any, ...]] = []
    for i in range(runs - 45):
        actions.append(("new", TIMES[i % 4], i % 3))
    for i in range(runs):
        actions.append(
            ("end", 0, STATES[i % 5], METRICS[i // 5 % 5], ERRORS[i % 4], TIMES[i % 4], True)
        )
    records = history(actions, 0)
    sweep = store.create_sweep(DEFINITION, tmp_path / f"s{runs}", source="test", max_retries=0)
    sweep.append(records[:-10])
    assert sweep.write_snapshot(force=True)
    sweep.append(records[-10:])
    return sweep


def test_a_fresh_table_reads_the_head_and_the_tail_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The body is never read: ``snapshot.read_all`` (the only reader of it) made to fail."""
    sweep = big_sweep(tmp_path, 300)
    full = status.render(store.open_sweep(sweep.path))  # reads the body: the -- all path
    assert "reached the target" in full and "best 10 of" in full

    def no_body(*_: Any) -> None:
        raise AssertionError("the snapshot's body was read")

    monkeypatch.setattr(snapshot, "read_all", no_body)
    assert status.render(store.open_sweep(sweep.path)) == full
    with pytest.raises(AssertionError, match="body was read"):
        status.render(store.open_sweep(sweep.path), show_all=True)


def test_the_heads_table_part_does_not_grow_with_the_runs(tmp_path: Path) -> None:
    sizes = []
    for runs in (100, 1000):
        sweep = big_sweep(tmp_path, runs)
        found = snapshot.read(sweep.path, sweep.path / "journal.jsonl")
        assert found is not None and found.table is not None
        assert found.table["count"] > runs // 2
        sizes.append(len(json.dumps(found.table)))
    assert sizes[1] <= sizes[0] * 1.1, sizes


def as_version_5(path: Path) -> None:
    """Rewrite the sweep's snapshot as version 5 wrote it: the same head without ``table``."""
    file = path / snapshot.SNAPSHOT_NAME
    line, rest = file.read_bytes().split(b"\n", 1)
    header = json.loads(line)
    doc = json.loads(rest[: header["head_len"]])
    del doc["table"]
    head = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
    header |= {"v": 5, "head_len": len(head)}
    header["crc"] = snapshot_format.header_check(header, head)
    file.write_bytes(
        json.dumps(header, separators=(",", ":")).encode()
        + b"\n"
        + head
        + rest[len(rest) - header["body_len"] :]
    )


def test_a_version_5_snapshot_is_still_read_and_its_table_is_a_full_replays(
    tmp_path: Path,
) -> None:
    """An older sweepkit's snapshot: a claim still reads its head alone; status, with no table in
    it, reads every run, and prints what it prints from a version 6 snapshot."""
    sweep = big_sweep(tmp_path, 120)
    expected = status.render(store.open_sweep(sweep.path))
    as_version_5(sweep.path)
    found = snapshot.read(sweep.path, sweep.path / "journal.jsonl")
    assert found is not None and found.header["v"] == 5 and found.table is None
    fresh = store.open_sweep(sweep.path)
    fresh.outcomes()
    assert fresh.fold.unread is not None, "the head alone, as before"
    assert status.render(fresh) == expected
    assert fresh.fold.unread is None, "every run read"


def test_an_end_record_the_table_cannot_show_leaves_the_head_without_a_table(
    tmp_path: Path,
) -> None:
    """A journal edited by hand (an end time that is not a number): the snapshot, which a claim
    writes, is still written; its head keeps no table (status reads every run)."""
    sweep = store.create_sweep(DEFINITION, tmp_path / "s", source="test")
    records = []
    for i in range(45):
        records.append({"t": "claim", "run": f"r{i}", "k": 0, "params": {}, "at": 1.0})
        end = {"t": "end", "run": f"r{i}", "k": 0, "state": "finished", "metric": 0.5}
        records.append(
            end | {"at": "noon" if i == 3 else 2.0, "epochs": 1, "metric_source": "wandb"}
        )
    sweep.append(records)
    assert sweep.write_snapshot(force=True)
    found = snapshot.read(sweep.path, sweep.path / "journal.jsonl")
    assert found is not None and found.unread.count == 45 and found.table is None
