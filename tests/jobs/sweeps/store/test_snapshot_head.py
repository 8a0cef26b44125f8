"""The journal snapshot's head (jobs/sweeps/store/snapshot.py, snapshot_format.py): a fresh agent
claims from the head alone (the open runs and the settled runs' counts), never reading the settled
runs, and gets what a full replay would give it. A head or body that is torn, foreign or out of
step with the other is found out; a body found wrong only when it is read at last is replaced by
folding the journal the snapshot covers. Concurrent writers and a writer killed mid-write leave a
readable sweep."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from snapshot_sweeps import DEFINITION, facts, work

from sweepkit.jobs.sweeps import store
from sweepkit.jobs.sweeps.store import plan, snapshot
from sweepkit.jobs.sweeps.store.fold import Fold, FoldedRun, Runs, Settled, apply


def without_snapshot(path: Path, into: Path) -> Path:
    """A copy of the sweep folder with no snapshot: what a full replay reads."""
    shutil.copytree(path, into)
    (into / snapshot.SNAPSHOT_NAME).unlink(missing_ok=True)
    return into


def deferred(sweep: store.LocalSweep) -> bool:
    """True while the settled runs of the snapshot have not been read."""
    return sweep.fold.runs.settled is not None


def sweep_with_snapshot(tmp_path: Path, run_cap: int | None = None) -> store.LocalSweep:
    definition = {**DEFINITION, "run_cap": run_cap} if run_cap else DEFINITION
    sweep = store.create_sweep(definition, tmp_path / "s", source="test", max_retries=1)
    work(sweep, 12, seed=1)
    queue_one(sweep, "preempted")  # queued in the snapshot's head
    assert sweep.write_snapshot(force=True)
    work(sweep, 3, seed=2, leave_running=1)  # a tail after it
    queue_one(sweep, "crashed")  # and queued in the tail
    return sweep


def queue_one(sweep: store.LocalSweep, state: str) -> None:
    me = store.AgentIdentity(host=f"q-{state}", pid=1)
    claim = sweep.claim(me)
    assert isinstance(claim, store.Claim) and not claim.resumed
    sweep.finish(claim, me, state)


# ----- the fold's deferred runs (pure) ------------------------------------------------------
def test_deferred_runs_are_read_only_when_asked_for_and_keep_the_fold_order() -> None:
    full = apply(Fold(), [{"t": "claim", "run": r, "k": 0, "params": {}} for r in "abcd"])
    apply(full, [{"t": "end", "run": r, "k": 0, "state": "finished"} for r in "ac"])
    loads = []

    def load() -> list[tuple[int, FoldedRun]]:
        loads.append(1)
        return [(0, full.runs["a"]), (2, full.runs["c"])]

    runs = Runs({"b": full.runs["b"], "d": full.runs["d"]})
    runs.defer(Settled(2, 2, {"finished": 2}, {"b": 1, "d": 3}, lambda i: i in "ac", load))
    fold = Fold(runs=runs, open=dict(runs.read()))
    apply(fold, [{"t": "claim", "run": "e", "k": 0, "params": {}}])  # a new run: no read
    assert len(fold.runs) == 5 and not loads and "x" not in fold.runs
    assert plan.no_claim(fold, None) == plan.NoClaim(
        False, "nothing to claim: 2 of 5 runs done, 3 running on other agents"
    )
    assert not loads
    assert list(fold.runs) == ["a", "b", "c", "d", "e"] and loads == [1]


def test_a_settled_run_named_by_a_record_is_read_first() -> None:
    settled = apply(Fold(), [{"t": "claim", "run": "a", "k": 0, "params": {"x": 1}}])
    apply(settled, [{"t": "end", "run": "a", "k": 0, "state": "finished"}])
    runs = Runs()
    runs.defer(Settled(1, 1, {"finished": 1}, {}, lambda i: True, lambda: [(0, settled.runs["a"])]))
    fold = apply(Fold(runs=runs), [{"t": "claim", "run": "a", "k": 0, "params": {"x": 2}}])
    assert fold.runs.settled is None and fold.runs["a"].params == {"x": 1}  # a replay ignores it
    assert fold.open == {}


# ----- claims from the head -------------------------------------------------------------------
def test_a_fresh_claim_reads_only_the_head_and_matches_a_full_replay(tmp_path: Path) -> None:
    sweep = sweep_with_snapshot(tmp_path)
    full = store.open_sweep(without_snapshot(sweep.path, tmp_path / "full"))
    fresh = store.open_sweep(sweep.path)
    fresh.refresh()
    assert deferred(fresh)
    assert (len(fresh.fold.runs), list(fresh.open_runs())) == (
        len(full.refresh()),
        list(full.open_runs()),
    )
    assert plan.queue(fresh.fold) and [r.run_id for r in plan.queue(fresh.fold)] == [
        r.run_id for r in plan.queue(full.fold)
    ]
    # claims from each: the queued runs first (the same ones), then new runs
    for i in range(len(plan.queue(full.fold)) + 2):
        me = store.AgentIdentity(host=f"fresh{i}", pid=20_000 + i)
        a, b = fresh.claim(me), full.claim(me)
        assert isinstance(a, store.Claim) and isinstance(b, store.Claim)
        assert (a.resumed, a.k) == (b.resumed, b.k)
        if a.resumed:
            assert a.run_id == b.run_id
        assert plan.complete(fresh.fold, None, None) == plan.complete(full.fold, None, None)
    assert deferred(fresh), "no claim read the settled runs"
    # and once it reads every run, it knows what a full replay of its own journal knows
    assert facts(fresh) == facts(store.open_sweep(without_snapshot(sweep.path, tmp_path / "f")))


def test_the_run_cap_and_the_nothing_to_claim_answer_come_from_the_head(tmp_path: Path) -> None:
    sweep = sweep_with_snapshot(tmp_path, run_cap=17)
    full = store.open_sweep(without_snapshot(sweep.path, tmp_path / "full"))
    fresh = store.open_sweep(sweep.path)
    me = store.AgentIdentity(host="late", pid=1)
    # the queued runs are resumed, new runs made up to the cap, then nothing is left to claim
    while isinstance(got := full.claim(me), store.Claim):
        mine = fresh.claim(me)
        assert isinstance(mine, store.Claim) and (mine.resumed, mine.k) == (got.resumed, got.k)
        assert mine.run_id == got.run_id or not got.resumed
    assert len(full.refresh()) == 17
    assert fresh.claim(me) == got and got.message.startswith("nothing to claim: ")
    assert deferred(fresh)
    assert facts(fresh) == facts(store.open_sweep(without_snapshot(sweep.path, tmp_path / "f")))


def test_a_snapshot_of_todays_format_version_1_is_still_read(tmp_path: Path) -> None:
    """The golden files hold one written by the version before; this one is built here from the
    same fold, in that layout, and read back whole."""
    sweep = sweep_with_snapshot(tmp_path)
    reader = store.open_sweep(sweep.path)
    runs = reader.refresh()
    index, blobs, start = [], [], 0
    for run in runs.values():
        raw = json.dumps([run.params, run.claims, [run.ends[k] for k in sorted(run.ends)]]).encode()
        index.append([run.run_id, run.state, run.k, run.crashes, start, len(raw)])
        blobs.append(raw)
        start += len(raw)
    rest = json.dumps(index).encode() + b"\n" + b"".join(blobs)
    journal = (sweep.path / "journal.jsonl").read_bytes()
    offset = len(journal)
    crcs = snapshot.check_crcs(journal[: snapshot.CHECK_BYTES], journal[-snapshot.CHECK_BYTES :])
    header = {"v": 1, "offset": offset, "head_crc": crcs[0], "tail_crc": crcs[1]}
    header |= {"target_hit": False, "index_len": rest.index(b"\n") + 1}
    header["crc"] = zlib.crc32(rest)
    (sweep.path / snapshot.SNAPSHOT_NAME).write_bytes(json.dumps(header).encode() + b"\n" + rest)
    old = store.open_sweep(sweep.path)
    assert any(isinstance(r, snapshot.SnapshotRun) for r in old.refresh().values())
    assert facts(old) == facts(store.open_sweep(without_snapshot(sweep.path, tmp_path / "f")))


# ----- damage ---------------------------------------------------------------------------------
def _parts(path: Path) -> tuple[bytes, bytes, bytes]:
    data = (path / snapshot.SNAPSHOT_NAME).read_bytes()
    line, rest = data.split(b"\n", 1)
    head_len = json.loads(line)["head_len"]
    return line + b"\n", rest[:head_len], rest[head_len:]


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1 :]


@pytest.mark.parametrize("where", ["torn in the head", "a byte of the head", "a header field"])
def test_a_damaged_head_means_a_full_replay_with_one_warning(
    tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = sweep_with_snapshot(tmp_path)
    line, head, body = _parts(sweep.path)
    if where == "torn in the head":
        data = line + head[: len(head) // 2]
    elif where == "a byte of the head":
        data = line + _flip(head, len(head) // 2) + body
    else:  # the target said hit: the checksum covers the header too
        fields = json.loads(line)
        fields["target_hit"] = not fields["target_hit"]
        data = json.dumps(fields, separators=(",", ":")).encode() + b"\n" + head + body
    (sweep.path / snapshot.SNAPSHOT_NAME).write_bytes(data)
    capsys.readouterr()
    reader = store.open_sweep(sweep.path)
    reader.refresh()
    lines = [x for x in capsys.readouterr().err.splitlines() if "journal snapshot" in x]
    assert len(lines) == 1 and "ignored" in lines[0]
    assert not deferred(reader)
    assert facts(reader) == facts(store.open_sweep(without_snapshot(sweep.path, tmp_path / "f")))


@pytest.mark.parametrize("how", ["a byte of the body", "replaced by a newer snapshot"])
def test_a_body_out_of_step_with_its_head_is_folded_from_the_journal(
    tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The head was read and sound; the body, read later, is not the one the head was written
    with: its runs come from the journal bytes the snapshot covers, with one warning."""
    sweep = sweep_with_snapshot(tmp_path)
    reader = store.open_sweep(sweep.path)
    reader.claim(store.AgentIdentity(host="fresh", pid=3))  # from the head
    assert deferred(reader)
    if how == "a byte of the body":
        line, head, body = _parts(sweep.path)
        (sweep.path / snapshot.SNAPSHOT_NAME).write_bytes(line + head + _flip(body, 3))
    else:
        work(sweep, 4, seed=3)
        assert sweep.write_snapshot(force=True)
    capsys.readouterr()
    seen = facts(reader)  # reads every run
    lines = [x for x in capsys.readouterr().err.splitlines() if "journal snapshot" in x]
    assert len(lines) == 1 and "folded from the journal" in lines[0]
    assert not any(isinstance(r, snapshot.SnapshotRun) for r in reader.fold.runs.values())
    assert seen == facts(store.open_sweep(without_snapshot(sweep.path, tmp_path / "f")))


# ----- concurrent writers, and a writer killed mid-write -------------------------------------
def _write_snapshots(path: str, stop_at: float) -> None:
    while time.time() < stop_at:
        reader = store.open_sweep(path)
        reader.refresh()
        reader.write_snapshot(force=True)


def _claim_and_end(path: str, seed: int) -> None:
    reader = store.open_sweep(path)
    work(reader, 6, seed=seed, leave_running=1)
    facts(reader)  # a reader that started from some snapshot reads every run in the end


@pytest.mark.system
def test_concurrent_snapshot_writers_and_claims_agree_with_a_full_replay(tmp_path: Path) -> None:
    sweep = store.create_sweep(DEFINITION, tmp_path / "s", source="test", max_retries=1)
    work(sweep, 4, seed=9)
    ctx = multiprocessing.get_context("fork")
    writers = [
        ctx.Process(target=_write_snapshots, args=(str(sweep.path), time.time() + 3600))
        for _ in range(3)
    ]
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
    fresh = store.open_sweep(sweep.path)
    fresh.refresh()
    assert deferred(fresh)
    full = facts(store.open_sweep(without_snapshot(sweep.path, tmp_path / "f")))
    assert facts(fresh) == full
    assert sum(k + 1 for _, k, *_ in full["runs"].values()) == 4 + 4 * 6  # every claim, once


def _killed_mid_write(path: str) -> None:
    """Writes a snapshot whose bytes stop half way, then hangs until killed."""
    real_write = os.write

    def half_then_hang(fd: int, data: Any) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        time.sleep(3600)
        return 0

    os.write = half_then_hang  # type: ignore[assignment]
    reader = store.open_sweep(path)
    reader.refresh()
    reader.write_snapshot(force=True)


@pytest.mark.system
def test_a_writer_killed_mid_write_leaves_the_last_snapshot_in_use(tmp_path: Path) -> None:
    sweep = sweep_with_snapshot(tmp_path)
    before = (sweep.path / snapshot.SNAPSHOT_NAME).read_bytes()
    writer = multiprocessing.get_context("fork").Process(
        target=_killed_mid_write, args=(str(sweep.path),)
    )
    writer.start()
    tmp = []
    for _ in range(600):  # until its temporary file is half written
        tmp = [p for p in sweep.path.iterdir() if p.name.endswith(".tmp") and p.stat().st_size]
        if tmp:
            break
        time.sleep(0.05)
    assert writer.pid is not None and tmp
    os.kill(writer.pid, signal.SIGKILL)
    writer.join()
    assert (sweep.path / snapshot.SNAPSHOT_NAME).read_bytes() == before
    fresh = store.open_sweep(sweep.path)
    fresh.claim(store.AgentIdentity(host="after", pid=5))
    assert deferred(fresh)
    full = store.open_sweep(without_snapshot(sweep.path, tmp_path / "f"))
    assert facts(fresh) == facts(full)


def test_the_head_counts_a_run_of_no_known_end_state_as_a_full_replay_does(tmp_path: Path) -> None:
    """A foreign end state is neither open nor final: the settled runs' counts keep it apart."""
    sweep = store.create_sweep(DEFINITION, tmp_path / "s", source="test", max_retries=1)
    work(sweep, 3, seed=4, leave_running=1)
    claim = plan.claim_record("odd", 0, {"lr": {"value": 0.5}}, store.AgentIdentity(), 1.0)
    sweep.append([claim, {"t": "end", "run": "odd", "k": 0, "state": "lost", "at": 2.0}])
    assert sweep.write_snapshot(force=True)
    fresh = store.open_sweep(sweep.path)
    full = store.open_sweep(without_snapshot(sweep.path, tmp_path / "f"))
    fresh.refresh()
    answer = plan.no_claim(full.fold, None) if full.refresh() else None
    assert plan.no_claim(fresh.fold, None) == answer and deferred(fresh)
    assert fresh.fold.tally() == full.fold.tally()
