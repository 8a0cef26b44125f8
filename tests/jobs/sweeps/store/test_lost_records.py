"""Records lost from the journal's end (a node that died before its writes reached the disk, a
journal restored from a backup) are recovered from the sweep folder: a run whose folder or claim
token shows it was claimed counts as claimed, ends as its own records say, and is never run again.
The cases of issue 28 by hand; the property over any cut or tear is in test_lost_records_property.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from lost_journal import LONG_AGO, cut, end, grid, launch, record_boundaries

from sweepkit.jobs.sweeps import store


def _agent(n: int) -> store.AgentIdentity:
    return store.AgentIdentity(host=f"node{n}", pid=10_000 + n)


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if "warning" in line]


def _run(sweep: store.LocalSweep, me: store.AgentIdentity, state: str) -> store.Claim:
    claim = sweep.claim(me)
    assert isinstance(claim, store.Claim)
    launch(sweep, claim)
    end(sweep, claim, me, state)
    return claim


def test_a_journal_cut_at_a_record_boundary_loses_no_finished_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = store.create_sweep(grid({"lr": [1, 2, 3, 4]}), tmp_path, "test")
    done = [_run(sweep, _agent(1), "finished") for _ in range(3)]
    journal = sweep.path / "journal.jsonl"
    cut(journal, record_boundaries(journal)[-5])  # the last two runs' claims and ends
    capsys.readouterr()

    status = store.open_sweep(sweep.path)
    views = status.runs()
    assert [(v.run_id, v.state) for v in views] == [(c.run_id, "finished") for c in done]
    assert status.remaining() == (4, 1) and not status.complete()
    (warning,) = _warnings(capsys.readouterr().err)
    assert "lacks the claims of 2 run(s)" in warning and str(sweep.path) in warning
    assert "none is run again" in warning

    agent = store.open_sweep(sweep.path)
    claim = agent.claim(_agent(2))
    assert isinstance(claim, store.Claim) and claim.params == {"lr": {"value": 4}}
    (warning,) = _warnings(capsys.readouterr().err)
    assert "written back to the journal now" in warning
    # the journal is whole again: a fresh reader needs no recovery
    again = store.open_sweep(sweep.path)
    assert [v.state for v in again.runs()] == ["finished"] * 3 + ["running"]
    assert _warnings(capsys.readouterr().err) == []


def test_a_lost_resume_claim_leaves_the_resumed_run_finished(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A preempted run handed out again (its claim token claims/<run>.1) and finished: the
    journal loses that attempt's claim and end; the run is not handed out a third time."""
    sweep = store.create_sweep(grid({"lr": [1]}), tmp_path, "test")
    first = _run(sweep, _agent(1), "preempted")
    journal = sweep.path / "journal.jsonl"
    before = journal.stat().st_size
    second = _run(sweep, _agent(2), "finished")
    assert second.run_id == first.run_id and second.k == 1
    cut(journal, before)
    capsys.readouterr()

    status = store.open_sweep(sweep.path)
    (view,) = status.runs()
    assert view.state == "finished" and view.attempts == 2
    agent = store.open_sweep(sweep.path)
    got = agent.claim(_agent(3))
    assert isinstance(got, store.NoClaim) and got.complete, got
    assert len(_warnings(capsys.readouterr().err)) == 2  # status's, then the agent's


def test_a_run_folder_that_started_nothing_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A claimer that died between its run folder and its record (or lost the record before it
    started the program) left an empty folder: a claim removes it once the lock's lifetime is
    past; a folder of other files is named once and left alone."""
    sweep = store.create_sweep(grid({"lr": [1, 2]}), tmp_path, "test")
    empty = sweep.path / "runs" / "deadbeef"
    (empty / "wandb").mkdir(parents=True)
    young = sweep.path / "runs" / "youngone"
    young.mkdir()
    foreign = sweep.path / "runs" / "notarun"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    old = time.time() - LONG_AGO
    os.utime(empty, (old, old))
    claim = sweep.claim(_agent(1))
    assert isinstance(claim, store.Claim) and claim.params == {"lr": {"value": 1}}
    assert not empty.exists() and young.exists() and (foreign / "notes.txt").exists()
    (warning,) = _warnings(capsys.readouterr().err)
    assert str(foreign) in warning and "no parameter file" in warning
    assert isinstance(sweep.claim(_agent(2)), store.Claim)
    assert _warnings(capsys.readouterr().err) == []  # named once


def test_an_agent_whose_claim_the_journal_lost_while_it_ran_records_its_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The journal is restored from a backup made before this agent's claim, while its run runs:
    its heartbeat's reader does not fail, and its end record is read (its claim written back)."""
    sweep = store.create_sweep(grid({"lr": [1, 2]}), tmp_path, "test")
    me = _agent(1)
    claim = sweep.claim(me)
    assert isinstance(claim, store.Claim)
    launch(sweep, claim)
    cut(sweep.path / "journal.jsonl", 0)
    assert not store.open_sweep(sweep.path).lost(claim)  # the heartbeat thread's own reader
    end(sweep, claim, me, "finished", record=False)
    assert sweep.finish(claim, me, "finished", exit_code=0)
    runs = store.open_sweep(sweep.path).refresh()
    assert [(run_id, run.state) for run_id, run in runs.items()] == [(claim.run_id, "finished")]
    (warning,) = _warnings(capsys.readouterr().err)
    assert "was cut below what this process had read" in warning


def test_runs_left_count_the_runs_the_journal_lost_before_anything_else_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What `submit --array auto` sizes its array from (``remaining``), asked first on a fresh
    open: the runs recovered from their folders and claim tokens are taken, not left to run."""
    sweep = store.create_sweep(grid({"lr": [1, 2, 3, 4]}), tmp_path, "test")
    for _ in range(3):
        _run(sweep, _agent(1), "finished")
    journal = sweep.path / "journal.jsonl"
    cut(journal, record_boundaries(journal)[-5])  # the last two runs' claims and ends
    capsys.readouterr()
    assert store.open_sweep(sweep.path).remaining() == (4, 1)
    (warning,) = _warnings(capsys.readouterr().err)
    assert "lacks the claims of 2 run(s)" in warning

    resumed = store.create_sweep(grid({"lr": [1]}), tmp_path, "test")
    _run(resumed, _agent(1), "preempted")
    journal = resumed.path / "journal.jsonl"
    before = journal.stat().st_size
    _run(resumed, _agent(2), "finished")
    cut(journal, before)  # the finished retry's claim and end
    capsys.readouterr()
    assert store.open_sweep(resumed.path).remaining() == (1, 0)


def _lost_running_run(
    root: Path, lease_s: float, at: float | None, beat: bool
) -> tuple[store.LocalSweep, store.Claim]:
    """A sweep of two grid points whose first run was claimed and started (its parameter file
    stamped ``at``; ``beat``: its agent wrote a heartbeat first, as agents do) and still runs as
    far as its files say, and whose journal then lost that claim."""
    sweep = store.create_sweep(grid({"lr": [1, 2]}), root, "test", lease_s=lease_s)
    me = _agent(1)
    claim = sweep.claim(me)
    assert isinstance(claim, store.Claim)
    if beat:
        sweep.heartbeat(claim, me)
    launch(sweep, claim, at=at)
    cut(sweep.path / "journal.jsonl", 0)
    return sweep, claim


@pytest.mark.parametrize(
    ("lease_s", "ahead_s"),
    [
        (3600.0, None),  # its holder died right after it started the program
        (0.001, 600.0),  # the file server's clock is ahead of ours (or ours was stepped back)
    ],
)
def test_a_recovered_running_run_without_a_heartbeat_is_ended_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lease_s: float, ahead_s: float | None
) -> None:
    """A recovered claim has no holder, and its time is a file's: when no lease file beats for
    it (an agent beats before it writes the parameter file), its holder is gone however young
    that time looks. The next claim ends it as crashed and hands it out again, before any new
    run; it never counts as running on another agent (issue 28's long profile: a journal cut
    while a run's file time was within the millisecond lease of the next claim's clock)."""
    at = None if ahead_s is None else time.time() + ahead_s
    sweep, lost = _lost_running_run(tmp_path, lease_s, at, beat=False)
    agent = store.open_sweep(sweep.path)
    claim = agent.claim(_agent(2))
    assert isinstance(claim, store.Claim), claim
    assert (claim.run_id, claim.k, claim.resumed) == (lost.run_id, 1, True)
    first = store.open_sweep(sweep.path).refresh()[lost.run_id].ends[0]
    assert first["state"] == "crashed" and "its claim was lost" in first["error"]
    end(agent, claim, _agent(2), "finished")
    _run(agent, _agent(2), "finished")
    done = agent.claim(_agent(3))
    assert isinstance(done, store.NoClaim) and done.complete, done
    capsys.readouterr()


def test_a_recovered_running_run_whose_agent_beats_stays_its_agents(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same lost claim, but its agent lives and beats: its lease file holds the run, and the
    next claim takes the other grid point."""
    sweep, lost = _lost_running_run(tmp_path, 3600.0, None, beat=True)
    claim = store.open_sweep(sweep.path).claim(_agent(2))
    assert isinstance(claim, store.Claim) and claim.params == {"lr": {"value": 2}}
    runs = store.open_sweep(sweep.path).refresh()
    assert runs[lost.run_id].state == "running"
    waiting = store.open_sweep(sweep.path).claim(_agent(3))
    assert isinstance(waiting, store.NoClaim) and not waiting.complete
    capsys.readouterr()
