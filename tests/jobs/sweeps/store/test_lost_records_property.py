"""Any cut or tear of the journal, at any byte, with or without a snapshot, loses no run: checked
against the run folders on disk, over generated histories (issue 28, item 8).

A history is made in-process with the store's own API: agents on other hosts claim the runs of
a grid sweep, write their folders as the agent and the trainer do (tests/support/lost_journal.py)
and end them finished, failed, stopped, preempted or crashed, or die while they run (the next
claim ends that attempt, as its lease has expired: the sweep's lease is a millisecond). Then the
journal loses bytes: cut at a byte, or torn (a run of bytes taken out of its middle). Then:

* status (a fresh reader) shows every run, and every run that had finished as finished, and
  writes nothing;
* agents claim until the sweep is complete: no grid point is handed out that a run already
  had, and no run that was done is handed out again;
* afterwards the journal, read afresh, has every run once per grid point and every run that had
  finished still finished; and nothing raised.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lost_journal import cut, end, grid, grid_point, launch

from sweepkit.jobs.sweeps import store

GRID = {"a": [1, 2, 3], "b": ["x", "y"]}
POINTS = 6
# what an attempt does: ends so (its agent records it), or its agent dies while it runs
OUTCOMES = ["finished", "failed", "stopped", "preempted", "crashed", "running"]
AGENTS = 3

history = st.lists(
    st.tuples(st.sampled_from(OUTCOMES), st.integers(0, AGENTS - 1)), min_size=1, max_size=12
)


def _agent(n: int) -> store.AgentIdentity:
    return store.AgentIdentity(host=f"node{n}", pid=20_000 + n)


def _make(root: Path, ops: list[tuple[str, int]], snapshot_after: int | None) -> store.LocalSweep:
    """A sweep with the history ``ops``; its snapshot written after op ``snapshot_after``."""
    sweep = store.create_sweep(grid(GRID), root, "test", lease_s=0.001)
    for i, (outcome, n) in enumerate(ops):
        me = _agent(n)
        claim = sweep.claim(me)
        if isinstance(claim, store.Claim):
            launch(sweep, claim)
            if outcome != "running":
                end(sweep, claim, me, outcome)
        if i == snapshot_after:
            assert sweep.write_snapshot(force=True)
    return sweep


def _truth(path: Path) -> dict[str, Any]:
    """What the whole journal says of each run: (state, done, grid point)."""
    fresh = store.open_sweep(path)
    return {
        run_id: (run.state, run.done(fresh.max_retries), grid_point(run.params))
        for run_id, run in fresh.refresh().items()
    }


def _position(data: st.DataObject, lines: list[bytes], label: str) -> int:
    """A byte of the journal: a line, and a byte in it or the end of it (drawn with fixed bounds,
    as the journal's length varies: its run ids are random)."""
    line = data.draw(st.integers(0, 63), label=f"{label}: line") % len(lines)
    within = data.draw(st.integers(0, 4095), label=f"{label}: byte in it") % (len(lines[line]) + 1)
    return sum(len(x) for x in lines[:line]) + within


def _damage(journal: Path, data: st.DataObject) -> None:
    """The journal cut at a byte, or torn: the bytes between two bytes taken out."""
    lines = journal.read_bytes().splitlines(keepends=True)
    first, second = _position(data, lines, "from"), _position(data, lines, "to")
    if data.draw(st.booleans(), label="tear (else cut)"):
        cut(journal, min(first, second), abs(second - first))
    else:
        cut(journal, first)


def _claim_to_the_end(path: Path, truth: dict[str, Any]) -> None:
    """Agents claim until the sweep is complete; each new run's grid point is new, and no run that
    was done is handed out again. Every claim is run to finished."""
    taken = {point for _, _, point in truth.values()}
    agent = store.open_sweep(path)
    for n in range(POINTS * 4):
        me = _agent(AGENTS + n)
        claim = agent.claim(me)
        if isinstance(claim, store.NoClaim):
            assert claim.complete, claim.message
            return
        if claim.run_id in truth:
            assert claim.resumed and not truth[claim.run_id][1], (claim.run_id, truth)
        else:
            assert not claim.resumed and grid_point(claim.params) not in taken
            taken.add(grid_point(claim.params))
        launch(agent, claim)
        end(agent, claim, me, "finished")
    pytest.fail("the sweep never completed")


def _check(path: Path, truth: dict[str, Any]) -> None:
    journal = path / "journal.jsonl"
    before = journal.read_bytes()
    status = store.open_sweep(path)
    shown = {v.run_id: v.state for v in status.runs()}
    assert set(shown) == set(truth), "a run shown or lost that is not on disk"
    for run_id, (state, _, _) in truth.items():
        if state == "finished":
            assert shown[run_id] == "finished", (run_id, shown)
    assert journal.read_bytes() == before, "status wrote to the journal"

    _claim_to_the_end(path, truth)

    after = _truth(path)
    assert set(truth) <= set(after)
    points = [point for _, _, point in after.values()]
    assert len(points) == len(set(points)) == POINTS, "a grid point handed out twice, or lost"
    for run_id, (state, _, _) in truth.items():
        if state == "finished":
            assert after[run_id][0] == "finished", (run_id, after[run_id])


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where the examples' sweeps go: in memory (tmpfs) where the machine has one. The journal's
    fsync per record (about 13 ms on the test machine's disk) is otherwise most of an example's
    time, and the disk's durability is not what this property is about."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        with tempfile.TemporaryDirectory(dir=shm, prefix="sweepkit-lost-records-") as folder:
            yield Path(folder)
    else:
        yield tmp_path_factory.mktemp("sweeps")


@given(ops=history, data=st.data())
def test_a_cut_or_torn_journal_loses_no_run(
    roots: Path, ops: list[tuple[str, int]], data: st.DataObject
) -> None:
    root = Path(tempfile.mkdtemp(dir=roots))
    try:
        snapshot_after = data.draw(st.none() | st.integers(0, len(ops) - 1), label="snapshot after")
        sweep = _make(root, ops, snapshot_after)
        truth = _truth(sweep.path)
        _damage(sweep.path / "journal.jsonl", data)
        _check(sweep.path, truth)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_first_record_cut_before_its_newline_with_a_snapshot_loses_no_run(
    roots: Path,
) -> None:
    """Found by the long profile: the journal cut just before its first record's newline, a
    snapshot written after the seventh op. The run left running (its agent gone) is recovered
    from its folder under the lock; the expiry pass ran before that recovery, so the claim said
    "1 running on other agents" instead of ending it. Now the runs opened under the lock are
    suspects too."""
    ops = [("failed", 0), ("finished", 0), ("stopped", 0), ("running", 2), ("finished", 1)]
    ops += [("crashed", 0), ("finished", 0), ("finished", 1), ("failed", 0)]
    root = Path(tempfile.mkdtemp(dir=roots))
    try:
        sweep = _make(root, ops, 6)
        truth = _truth(sweep.path)
        journal = sweep.path / "journal.jsonl"
        cut(journal, len(journal.read_bytes().splitlines(keepends=True)[0]) - 1)
        _check(sweep.path, truth)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_lost_later_attempt_of_a_run_whose_lease_the_claim_ends_is_recovered(
    roots: Path,
) -> None:
    """Found by the long profile: the journal cut after a run's first claim, losing the end of
    that attempt (its lease expired) and the claim of its next attempt, which started (its token,
    and the parameter file written after it) and whose agent died. The claim ends the first
    attempt as its lease expired, which queues the run; the recovery of later attempts had run
    before that, so the next attempt's token looked taken by a live claim and the claim said
    "nothing to claim" with the sweep not complete. Now the attempts ended under the lock have
    their later attempts recovered too, and the claim goes on."""
    root = Path(tempfile.mkdtemp(dir=roots))
    try:
        sweep = store.create_sweep(grid({"a": [1]}), root, "test", lease_s=0.001)
        first = sweep.claim(_agent(0))
        assert isinstance(first, store.Claim)
        launch(sweep, first)  # its agent dies while it runs
        journal = sweep.path / "journal.jsonl"
        kept = journal.stat().st_size  # the first claim only
        time.sleep(0.01)  # its lease (a millisecond) expired
        second = sweep.claim(_agent(1))  # ends the first attempt (lease expired), resumes the run
        assert isinstance(second, store.Claim) and second.resumed, second
        launch(sweep, second)  # its agent dies while it runs
        cut(journal, kept)
        time.sleep(0.01)

        claim = store.open_sweep(sweep.path).claim(_agent(2))
        if isinstance(claim, store.NoClaim):
            assert claim.complete, claim.message  # the run used up its retries: crashed
        else:
            assert (claim.run_id, claim.k) == (first.run_id, second.k + 1), claim
        after = store.open_sweep(sweep.path).refresh()[first.run_id]
        assert after.claims[second.k].get("recovered"), after.claims
        assert after.ends[first.k]["state"] == after.ends[second.k]["state"] == "crashed"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_lost_later_attempt_of_a_run_queued_by_a_torn_last_record_is_recovered(
    roots: Path,
) -> None:
    """Found by the long profile: the journal cut just before the newline of a run's lease-expired
    end, losing its next attempt's claim and end (it finished). The torn last record is read only
    once the claim appends after it, under the lock, after the recovery of later attempts had
    looked at the run while it was still running: its next attempt's token looked taken by a live
    claim and the claim said "nothing to claim" with the sweep not complete. (Another run's lost
    claim makes the claim append its recovery first, which ends the torn record.)"""
    root = Path(tempfile.mkdtemp(dir=roots))
    try:
        sweep = store.create_sweep(grid({"a": [1, 2]}), root, "test", lease_s=0.001)
        first = sweep.claim(_agent(0))
        assert isinstance(first, store.Claim)
        launch(sweep, first)  # its agent dies while it runs
        time.sleep(0.01)  # its lease (a millisecond) expired
        second = sweep.claim(_agent(1))  # ends the first attempt, resumes the run
        assert isinstance(second, store.Claim) and second.resumed, second
        launch(sweep, second)
        end(sweep, second, _agent(1), "finished")
        other = sweep.claim(_agent(2))
        assert isinstance(other, store.Claim) and not other.resumed, other
        launch(sweep, other)
        end(sweep, other, _agent(2), "failed")
        journal = sweep.path / "journal.jsonl"
        lines = journal.read_bytes().splitlines(keepends=True)
        cut(journal, len(lines[0]) + len(lines[1]) - 1)  # the first attempt's end, torn

        claim = store.open_sweep(sweep.path).claim(_agent(3))
        assert isinstance(claim, store.NoClaim) and claim.complete, claim
        after = store.open_sweep(sweep.path).refresh()[first.run_id]
        assert after.state == "finished" and after.claims[second.k].get("recovered"), after
    finally:
        shutil.rmtree(root, ignore_errors=True)
