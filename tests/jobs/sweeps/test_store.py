"""The local sweep store: layout, permissions, journal robustness, leases, and concurrent claims
by real processes (no programs launched here: that is test_agent / test_sweep_e2e)."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import stat
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from sweep_fixtures import sweepkit

from sweepkit.jobs.sweeps import store
from sweepkit.jobs.sweeps.store import journal
from sweepkit.train.errors import UserError

GRID_24 = {
    "method": "grid",
    "metric": {"name": "acc", "goal": "maximize"},
    "command": ["${env}", "${interpreter}", "-m", "sweepkit.train", "${args}"],
    "parameters": {
        "a": {"values": [1, 2, 3, 4]},
        "b": {"values": ["x", "y", "z"]},
        "c": {"values": [0.1, 0.2]},
    },
}


def make(tmp_path: Path, definition: dict[str, Any] | None = None, **kw: Any) -> store.LocalSweep:
    return store.create_sweep(definition or GRID_24, tmp_path / "sweeps", source="test", **kw)


def test_layout_and_modes_ignore_a_group_writable_umask(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        sweep = make(tmp_path)
    finally:
        os.umask(old)
    assert sorted(p.name for p in sweep.path.iterdir()) == [
        "claims",
        "journal.jsonl",
        "leases",
        "runs",
        "sweep.json",
        "sweep.yaml",
    ]
    for item in [sweep.path, *sweep.path.iterdir()]:
        assert not item.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH), item
    reopened = store.open_sweep(str(sweep.path))
    assert reopened.sweep_id == sweep.sweep_id == sweep.path.name and reopened.definition == GRID_24
    assert reopened.planned_runs() == 24 and reopened.lease_s == store.DEFAULT_LEASE_S
    assert not list((tmp_path / "sweeps").glob(".*")), "no temp folder left behind"


@pytest.mark.system
@pytest.mark.parametrize("target", [".", "sweep.yaml", "journal.jsonl"])
def test_store_writable_by_others_is_refused(tmp_path: Path, target: str) -> None:
    sweep = make(tmp_path)
    path = sweep.path / target
    os.chmod(path, path.stat().st_mode | stat.S_IWGRP)
    with pytest.raises(UserError, match="writable by other users.*chmod go-w"):
        store.open_sweep(str(sweep.path))
    result = sweepkit("agent", str(sweep.path), cwd=tmp_path)
    assert (
        result.returncode == 2 and "chmod go-w" in result.stderr and result.stderr.count("\n") == 1
    )


@pytest.mark.system
def test_missing_store_and_not_a_store(tmp_path: Path) -> None:
    result = sweepkit("status", str(tmp_path / "nope"), cwd=tmp_path)
    assert (
        result.returncode == 2
        and "no sweep folder" in result.stderr
        and "sweepkit sweep create" in result.stderr
    )
    made = make(tmp_path)  # under tmp_path/sweeps: its bare id, given from tmp_path, is a typo
    bare = sweepkit("status", made.sweep_id, cwd=tmp_path)
    assert (
        f"no sweep folder at {made.sweep_id}; did you mean sweeps/{made.sweep_id}?" in bare.stderr
    )
    header = sweepkit("status", str(made.path), cwd=tmp_path).stdout.splitlines()[1].split()
    assert header[:5] == ["run", "state", "a", "b", "c"]  # the swept columns before any run
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a sweep folder"):
        store.open_sweep(str(tmp_path / "empty"))


@pytest.mark.system
def test_unwritable_store_is_a_clear_error(tmp_path: Path) -> None:
    sweep = make(tmp_path)
    # root ignores modes; an immutable folder (chattr +i) is unwritable even for root
    lock = (
        ["chattr", "+i", str(sweep.path)]
        if os.geteuid() == 0
        else ["chmod", "0555", str(sweep.path)]
    )
    unlock = (
        ["chattr", "-i", str(sweep.path)]
        if os.geteuid() == 0
        else ["chmod", "0755", str(sweep.path)]
    )
    if subprocess.run(lock, capture_output=True).returncode != 0:
        pytest.skip("cannot make a folder unwritable here (no chattr support)")
    try:
        result = sweepkit("agent", str(sweep.path), cwd=tmp_path)
    finally:
        subprocess.run(unlock, check=True)
    assert result.returncode == 2, result.stderr
    assert "not writable by you" in result.stderr and result.stderr.count("\n") == 1


def test_journal_skips_garbage_and_torn_lines_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = make(tmp_path)
    me = store.AgentIdentity()
    first = sweep.claim(me)
    assert isinstance(first, store.Claim)
    path = sweep.path / "journal.jsonl"
    with open(path, "ab") as f:
        f.write(b"this is not a record\n")
        f.write(b'00000000 {"t": "claim", "run": "forged"}\n')  # wrong checksum
        f.write(b'1234abcd {"t":"end","run":"')  # torn: a writer killed mid-line
    fresh = store.open_sweep(str(sweep.path))
    assert [v.run_id for v in fresh.runs()] == [first.run_id]
    assert "skipped 2 unreadable record(s)" in capsys.readouterr().err
    second = fresh.claim(me)  # appends after terminating the torn line
    assert isinstance(second, store.Claim)
    assert sweep.finish(first, me, "finished", metric=1.0, history=[1.0])
    again = store.open_sweep(str(sweep.path))
    states = {v.run_id: v.state for v in again.runs()}
    assert states == {first.run_id: "finished", second.run_id: "running"}
    assert "skipped 3 unreadable record(s)" in capsys.readouterr().err
    assert path.read_bytes().count(b"\n") == 3 + 3  # 3 bad lines (the torn one closed) + 3 records


def test_record_encoding_round_trip(tmp_path: Path, capsys: Any) -> None:
    """A record reads back as written; a line whose checksum does not match (one digit changed)
    and garbage are not records."""
    record = {"t": "end", "run": "abc", "k": 0, "metric": 93.5, "history": [1.0, 2.5]}
    line = journal.encode(record)

    def read(data: bytes) -> list[dict[str, Any]]:
        path = tmp_path / "journal.jsonl"
        path.write_bytes(data)
        return journal.Journal(path).read_new()

    assert read(line) == [record]
    assert read(line.replace(b"93.5", b"93.6")) == []
    assert read(b"garbage\n") == [] and read(b"") == []
    assert capsys.readouterr().err.count("skipped 1 unreadable record(s)") == 2


def test_checksummed_line_that_is_not_a_record_is_skipped(tmp_path: Path, capsys: Any) -> None:
    """Records are parsed in one call; a line with a right checksum but no record in it (written by
    something else that knows the format) falls back to line by line and is skipped, not fatal."""
    path = tmp_path / "journal.jsonl"
    good = [{"t": "claim", "run": f"r{i}", "k": 0} for i in range(3)]
    foreign = [b"[1, 2]", b'{"no": "type"}', b'{"t": ']
    lines = [journal.encode(good[0])]
    lines += [f"{zlib.crc32(body):08x} ".encode() + body + b"\n" for body in foreign]
    lines += [journal.encode(r) for r in good[1:]]
    path.write_bytes(b"".join(lines))
    reader = journal.Journal(path)
    assert reader.read_new() == good
    assert "skipped 3 unreadable record(s)" in capsys.readouterr().err


def test_long_lock_waiters_poll_more_often_than_anyone() -> None:
    """Old waiters must win the lock over newcomers (the p95 of claims), never the reverse; and
    the first waits back off, so that pollers do not take the CPU from the holder (the p50)."""
    first, later, old = (
        journal.poll_interval(0.0),
        journal.poll_interval(0.05),
        journal.poll_interval(5.0),
    )
    assert old < first < later <= 0.01
    assert all(journal.poll_interval(w / 1000) >= old for w in range(0, 2000, 5))


def _claim_all(path: str, finish: bool, out: Any) -> None:
    sweep = store.open_sweep(path)
    me = store.AgentIdentity()
    got = []
    while True:
        result = sweep.claim(me)
        if isinstance(result, store.NoClaim):
            break
        got.append((result.run_id, json.dumps(result.params, sort_keys=True)))
        if finish:
            sweep.finish(result, me, "finished", metric=float(len(got)), history=[float(len(got))])
    out.put(got)


def _run_claimers(path: Path, n: int, finish: bool = True) -> list[tuple[str, str]]:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(str(path), finish, out)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return [item for chunk in results for item in chunk]


@pytest.mark.system
def test_sixteen_processes_claim_a_24_point_grid_exactly_once(tmp_path: Path) -> None:
    sweep = make(tmp_path)
    claims = _run_claimers(sweep.path, 16)
    assert len(claims) == 24
    assert len({run_id for run_id, _ in claims}) == 24
    assert len({params for _, params in claims}) == 24, "a grid point was handed out twice"
    final = store.open_sweep(str(sweep.path))
    assert final.complete() and final.counts()["finished"] == 24


@pytest.mark.system
def test_random_with_run_cap_under_concurrency(tmp_path: Path) -> None:
    definition = {
        **GRID_24,
        "method": "random",
        "run_cap": 10,
        "parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1}},
    }
    sweep = make(tmp_path, definition)
    claims = _run_claimers(sweep.path, 6)
    assert len(claims) == 10 and len({p for _, p in claims}) == 10
    assert store.open_sweep(str(sweep.path)).complete()


def test_bayes_proposes_from_finished_results(tmp_path: Path) -> None:
    """Eight finished runs of y = -(x - 0.3)^2: maximizing, the next proposals go near 0.3;
    minimizing the same results, they go to the far edge. Only the finished results differ."""

    def proposals(goal: str) -> list[float]:
        definition = {
            **GRID_24,
            "method": "bayes",
            "metric": {"name": "y", "goal": goal},
            "parameters": {"x": {"min": 0.0, "max": 1.0}},
        }
        sweep = make(tmp_path / goal, definition)
        me = store.AgentIdentity()
        for i in range(8):
            x = 0.05 + i * 0.125
            sweep.append([store.claim_record(f"r{i}", 0, {"x": {"value": x}}, me, time.time())])
            sweep.append(
                [
                    {
                        "t": "end",
                        "run": f"r{i}",
                        "k": 0,
                        "state": "finished",
                        "metric": -((x - 0.3) ** 2),
                        "history": [-((x - 0.3) ** 2)],
                        "at": time.time(),
                    }
                ]
            )
        sweep.refresh()
        picks = [
            p["x"]["value"] for _ in range(6) for p in sweep._propose(1)
        ]  # the pure proposal step
        claim = sweep.claim(me)  # and the claim path hands out such a proposal
        assert isinstance(claim, store.Claim)
        return sorted([*picks, claim.params["x"]["value"]])

    near = proposals("maximize")
    assert 0.1 <= near[3] <= 0.5, near
    far = proposals("minimize")
    assert far[3] >= 0.7, far


BAYES_CAPPED = {
    **GRID_24,
    "method": "bayes",
    "run_cap": 12,
    "parameters": {
        "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
        "batch_size": {"values": [32, 64, 128]},
    },
}


@pytest.mark.system
def test_bayes_proposals_made_outside_the_lock_never_exceed_run_cap_or_double_claim(
    tmp_path: Path,
) -> None:
    """16 processes propose bayes runs outside the lock, all from nearly the same stale state, and
    commit them under it: exactly run_cap runs, each handed out once, all finished."""
    sweep = make(tmp_path, BAYES_CAPPED)
    claims = _run_claimers(sweep.path, 16)
    assert len(claims) == 12, claims
    assert len({run_id for run_id, _ in claims}) == 12, "a run was handed out twice"
    final = store.open_sweep(str(sweep.path))
    assert final.complete() and final.counts()["finished"] == 12
    assert len(list((sweep.path / "runs").iterdir())) == 12  # no folder made for a refused claim
    assert len(final.refresh()) == 12


def test_bayes_never_proposes_under_the_lock_when_the_queue_empties_meanwhile(
    tmp_path: Path,
) -> None:
    """An agent that finds a preempted run queued plans to resume it (no proposal); another agent
    takes it first. The agent lets the lock go and makes its bayes proposal outside the lock."""
    sweep = make(tmp_path, BAYES_CAPPED)
    first = sweep.claim(store.AgentIdentity())
    assert isinstance(first, store.Claim)
    sweep.finish(first, store.AgentIdentity(), "preempted", exit_code=75)
    queued_id = first.run_id

    class Racing(store.LocalSweep):
        proposals_under_lock = 0
        raced = False

        def lock(self) -> journal.SweepLock:
            if not self.raced:  # another agent takes the queued run just before we lock
                self.raced = True
                other = store.open_sweep(str(self.path)).claim(store.AgentIdentity())
                assert isinstance(other, store.Claim) and other.run_id == queued_id
            return super().lock()

        def _propose(self, n: int) -> list[dict[str, Any]]:
            if self._lock is not None and self._lock.still_held():
                self.proposals_under_lock += 1
            return super()._propose(n)

    racing = Racing(sweep.path)
    claim = racing.claim(store.AgentIdentity())
    assert isinstance(claim, store.Claim) and not claim.resumed and claim.run_id != queued_id
    assert racing.proposals_under_lock == 0
    runs = store.open_sweep(str(sweep.path)).refresh()
    assert sorted(len(r.claims) for r in runs.values()) == [1, 2]


@pytest.mark.system
def test_lease_rules() -> None:
    now = time.time()
    me = store.AgentIdentity()

    def expired(at: float = now, me: store.AgentIdentity = me, **fields: Any) -> bool:
        lease = {
            "beat_at": now,
            "host": "node-elsewhere",
            "pid": 1,
            "child_pid": None,
            "slurm": {},
            **fields,
        }
        return store.lease_expired(lease, 5.0, me, at)

    assert not expired()
    assert expired(at=now + 6), "no heartbeat for longer than the lease"
    assert not expired(host=socket.gethostname(), pid=os.getpid())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert expired(host=socket.gethostname(), pid=dead.pid), "holder on this host is gone"
    assert not expired(host=socket.gethostname(), pid=dead.pid, child_pid=os.getpid()), (
        "its program still runs"
    )
    assert not expired(host=socket.gethostname(), pid=dead.pid, pid_ns="pid:[1]"), (
        "a holder in another PID namespace on this node (another container): its pid is not ours "
        "to probe, only its heartbeat tells"
    )
    assert expired(host=socket.gethostname(), pid=dead.pid, pid_ns=store.AgentIdentity().pid_ns)
    assert expired(at=now + 6, host=socket.gethostname(), pid=dead.pid, pid_ns="pid:[1]")
    slurm = {"job_id": "77", "array_task_id": "3", "restart_count": "0"}
    requeued = store.AgentIdentity(
        slurm={"job_id": "77", "array_job_id": "70", "array_task_id": "3", "restart_count": "1"}
    )
    other_task = store.AgentIdentity(
        slurm={"job_id": "77", "array_job_id": "70", "array_task_id": "4", "restart_count": "1"}
    )
    assert expired(slurm=slurm, me=requeued), "the same array task was restarted by SLURM"
    assert not expired(slurm=slurm, me=other_task)


@pytest.mark.system
def test_a_dead_pid_counts_as_a_crash_only_in_the_claimers_pid_namespace(tmp_path: Path) -> None:
    """Two containers on one node share its name (SWEEPKIT_NODE) but not their pids: a pid that
    is gone here may be a live agent there. Its claim then stands until its heartbeat stops."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for pid_ns, crashed in (("pid:[1]", False), (store.AgentIdentity().pid_ns, True)):
        sweep = make(
            tmp_path / str(crashed),
            {**GRID_24, "parameters": {"a": {"values": [1, 2]}}},
            lease_s=60,
            max_retries=1,
        )
        holder = store.AgentIdentity(pid=dead.pid, pid_ns=pid_ns)
        first = sweep.claim(holder)
        assert isinstance(first, store.Claim) and first.run_id
        again = sweep.claim(store.AgentIdentity())
        assert isinstance(again, store.Claim)
        assert (again.run_id == first.run_id and again.resumed) is crashed, pid_ns


def test_expired_lease_is_crashed_and_handed_out_again_up_to_max_retries(tmp_path: Path) -> None:
    sweep = make(
        tmp_path, {**GRID_24, "parameters": {"a": {"values": [1]}}}, lease_s=0.2, max_retries=1
    )
    gone = store.AgentIdentity(host="node-lost", pid=1)
    first = sweep.claim(gone)
    assert isinstance(first, store.Claim) and not first.resumed
    assert sweep.remaining() == (1, 0)
    time.sleep(0.3)
    assert sweep.remaining() == (1, 1)  # its agent is gone: it needs an array task again
    me = store.AgentIdentity()
    again = sweep.claim(me)
    assert (
        isinstance(again, store.Claim)
        and again.resumed
        and again.run_id == first.run_id
        and again.k == 1
    )
    assert not sweep.finish(first, gone, "finished"), (
        "the lost holder cannot close a re-handed attempt"
    )
    view = sweep.runs()[0]
    assert view.attempts == 2 and view.state == "running"
    time.sleep(0.3)
    done = sweep.claim(me)  # second crash: max_retries (1) used up
    assert isinstance(done, store.NoClaim) and done.complete and "1 crashed" in done.message
    view = sweep.runs()[0]
    assert view.state == "crashed" and "lease expired" in (view.error or "")


def test_preempted_run_is_queued_first_under_the_same_id(tmp_path: Path) -> None:
    sweep = make(tmp_path)
    me = store.AgentIdentity()
    first = sweep.claim(me)
    assert isinstance(first, store.Claim)
    assert sweep.remaining() == (24, 23)  # a running run is taken
    sweep.finish(first, me, "preempted", metric=None, history=[1.0], exit_code=75)
    assert sweep.runs()[0].queued and sweep.runs()[0].state == "preempted"
    assert sweep.remaining() == (24, 24)  # a queued run still needs an array task
    resumed = sweep.claim(me)
    assert (
        isinstance(resumed, store.Claim)
        and resumed.resumed
        and resumed.run_id == first.run_id
        and resumed.params == first.params
    )
    assert (
        resumed.run_dir == first.run_dir and (sweep.path / "claims" / f"{first.run_id}.1").exists()
    )


def test_orphaned_claim_token_does_not_block_a_run(tmp_path: Path) -> None:
    sweep = make(tmp_path)
    me = store.AgentIdentity()
    first = sweep.claim(me)
    assert isinstance(first, store.Claim)
    sweep.finish(first, me, "preempted", exit_code=75)
    token = sweep.path / "claims" / f"{first.run_id}.1"
    token.write_text("a claimer that died before writing its record")
    old = time.time() - journal.LOCK_LIFETIME_S - 60
    os.utime(token, (old, old))
    resumed = sweep.claim(me)
    assert isinstance(resumed, store.Claim) and resumed.run_id == first.run_id and resumed.k == 1


def test_metric_target_ends_the_sweep(tmp_path: Path) -> None:
    definition = {
        **GRID_24,
        "method": "random",
        "metric": {"name": "acc", "goal": "maximize", "target": 0.9},
        "parameters": {"lr": {"min": 0.0, "max": 1.0}},
    }
    sweep = make(tmp_path, definition)
    me = store.AgentIdentity()
    claim = sweep.claim(me)
    assert isinstance(claim, store.Claim)
    sweep.finish(claim, me, "finished", metric=0.95, history=[0.95])
    result = sweep.claim(me)
    assert (
        isinstance(result, store.NoClaim)
        and result.complete
        and result.message
        == f"sweep complete: run {claim.run_id} reached the target: acc=0.95 "
        "(metric.target >= 0.9); 1 of 1 runs done (1 finished)"
    )
