"""The journal snapshot's head (jobs/sweeps/store/snapshot.py, snapshot_format.py): a fresh agent
claims from the head alone (the open runs and the counts of the others), never reading the
others, and gets what a full replay would give it. A head or body that is torn, foreign or out of
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
from sweepkit.jobs.sweeps.store import claim_policy, snapshot
from sweepkit.jobs.sweeps.store.fold import Fold, Unread, apply


def without_snapshot(path: Path, into: Path) -> Path:
    """A copy of the sweep folder with no snapshot: what a full replay reads."""
    shutil.copytree(path, into)
    (into / snapshot.SNAPSHOT_NAME).unlink(missing_ok=True)
    return into


def deferred(sweep: store.LocalSweep) -> bool:
    """True while the runs the snapshot's head left unread have not been read."""
    return sweep.fold.unread is not None


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


# ----- the fold with a snapshot's runs unread (pure) ------------------------------------------
def test_unread_runs_are_counted_and_a_new_run_needs_none_of_them() -> None:
    full = apply(Fold(), [{"t": "claim", "run": r, "k": 0, "params": {}} for r in "abcd"])
    apply(full, [{"t": "end", "run": r, "k": 0, "state": "finished"} for r in "ac"])
    head = {"b": full.runs["b"], "d": full.runs["d"]}
    fold = Fold(runs=dict(head), open=dict(head), unread=Unread(2, 2, {"finished": 2}))
    new_run = [{"t": "claim", "run": "e", "k": 0, "params": {}}]
    apply(fold, new_run)
    apply(full, new_run)
    assert list(fold.runs) == ["b", "d", "e"] and fold.run_count == 5
    assert fold.tally() == full.tally()
    assert claim_policy.no_claim(fold, None) == claim_policy.NoClaim(
        False, "nothing to claim: 2 of 5 runs done, 3 running on other agents"
    )
    assert claim_policy.no_claim(fold, None) == claim_policy.no_claim(full, None)


def test_records_after_the_snapshot_that_name_a_done_run_apply_as_in_a_full_replay(
    tmp_path: Path,
) -> None:
    """A journal edited by hand: a claim that reuses a done run's id, and one that resumes a done
    run. A claim reads the head only; once every run is read, the fold is a full replay's."""
    sweep = sweep_with_snapshot(tmp_path)
    done = [r for r in sweep.refresh().values() if r.done(sweep.max_retries)][:2]
    me = store.AgentIdentity(host="hand", pid=1)
    sweep.append(
        [
            claim_policy.claim_record(done[0].run_id, 0, {"lr": {"value": 0.9}}, me, 5.0),
            claim_policy.claim_record(done[1].run_id, done[1].k + 1, None, me, 6.0),
        ]
    )
    fresh = store.open_sweep(sweep.path)
    fresh.complete()
    assert deferred(fresh)
    seen = facts(fresh)
    assert seen == facts(store.open_sweep(without_snapshot(sweep.path, tmp_path / "f")))
    assert fresh.fold.runs[done[1].run_id].state == "running"


# ----- claims from the head -------------------------------------------------------------------
def test_a_fresh_claim_reads_only_the_head_and_matches_a_full_replay(tmp_path: Path) -> None:
    sweep = sweep_with_snapshot(tmp_path)
    full = store.open_sweep(without_snapshot(sweep.path, tmp_path / "full"))
    fresh = store.open_sweep(sweep.path)
    fresh.complete()  # a claim's read: the head and the journal after it
    assert deferred(fresh)
    assert (fresh.fold.run_count, list(fresh.open_runs())) == (
        len(full.refresh()),
        list(full.open_runs()),
    )
    assert claim_policy.queue(fresh.fold) and [
        r.run_id for r in claim_policy.queue(fresh.fold)
    ] == [r.run_id for r in claim_policy.queue(full.fold)]
    # what the broken-sweep rule reads, from the head's counts (running runs in any order)
    seen, whole = fresh.outcomes(), full.outcomes()
    assert (seen.scored, seen.failed, seen.failed_trained, seen.last_failed) == (
        whole.scored,
        whole.failed,
        whole.failed_trained,
        whole.last_failed,
    ) and sorted(seen.running) == sorted(whole.running)
    assert seen.failed and seen.last_failed is not None and deferred(fresh)
    # claims from each: the queued runs first (the same ones), then new runs
    for i in range(len(claim_policy.queue(full.fold)) + 2):
        me = store.AgentIdentity(host=f"fresh{i}", pid=20_000 + i)
        a, b = fresh.claim(me), full.claim(me)
        assert isinstance(a, store.Claim) and isinstance(b, store.Claim)
        assert (a.resumed, a.k) == (b.resumed, b.k)
        if a.resumed:
            assert a.run_id == b.run_id
        assert claim_policy.complete(fresh.fold, None, None) == claim_policy.complete(
            full.fold, None, None
        )
    assert deferred(fresh), "no claim read the runs the head left unread"
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


def test_a_version_1_snapshot_is_ignored_and_rebuilt_and_every_run_keeps_its_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A snapshot in the layout of version 1 (the header, then the index and records of every
    run), left by an older sweepkit: not read (nothing is wrong, so no warning), the sweep read
    from its whole journal, and the snapshot written anew by the next agent."""
    sweep = sweep_with_snapshot(tmp_path)
    runs = sweep.refresh()
    index, blobs, start = [], [], 0
    for run in runs.values():
        raw = json.dumps([run.params, run.claims, [run.ends[k] for k in sorted(run.ends)]]).encode()
        index.append([run.run_id, run.state, run.k, run.crashes, start, len(raw)])
        blobs.append(raw)
        start += len(raw)
    rest = json.dumps(index).encode() + b"\n" + b"".join(blobs)
    journal = (sweep.path / "journal.jsonl").read_bytes()
    crcs = snapshot.check_crcs(journal[: snapshot.CHECK_BYTES], journal[-snapshot.CHECK_BYTES :])
    header = {"v": 1, "offset": len(journal), "head_crc": crcs[0], "tail_crc": crcs[1]}
    header |= {"target_hit": False, "index_len": rest.index(b"\n") + 1, "crc": zlib.crc32(rest)}
    (sweep.path / snapshot.SNAPSHOT_NAME).write_bytes(json.dumps(header).encode() + b"\n" + rest)
    expected = facts(store.open_sweep(without_snapshot(sweep.path, tmp_path / "f")))
    capsys.readouterr()
    old = store.open_sweep(sweep.path)
    assert facts(old) == expected and not deferred(old)
    assert capsys.readouterr().err == ""
    # the next agent whose read passes the snapshot threshold writes one of today's version
    monkeypatch.setattr(snapshot, "WRITE_AFTER_BYTES", 1)
    agent = store.open_sweep(sweep.path)
    assert isinstance(agent.claim(store.AgentIdentity(host="after", pid=2)), store.Claim)
    first_line = (sweep.path / snapshot.SNAPSHOT_NAME).read_bytes().split(b"\n", 1)[0]
    assert json.loads(first_line)["v"] == snapshot.VERSION
    fresh = store.open_sweep(sweep.path)
    fresh.complete()
    assert deferred(fresh)
    assert facts(fresh) == facts(store.open_sweep(without_snapshot(sweep.path, tmp_path / "g")))


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
    fresh.complete()
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
    """A foreign end state is neither open nor done: the head's counts keep it apart."""
    sweep = store.create_sweep(DEFINITION, tmp_path / "s", source="test", max_retries=1)
    work(sweep, 3, seed=4, leave_running=1)
    claim = claim_policy.claim_record("odd", 0, {"lr": {"value": 0.5}}, store.AgentIdentity(), 1.0)
    sweep.append([claim, {"t": "end", "run": "odd", "k": 0, "state": "lost", "at": 2.0}])
    assert sweep.write_snapshot(force=True)
    fresh = store.open_sweep(sweep.path)
    full = store.open_sweep(without_snapshot(sweep.path, tmp_path / "f"))
    fresh.complete()
    answer = claim_policy.no_claim(full.fold, None) if full.refresh() else None
    assert claim_policy.no_claim(fresh.fold, None) == answer and deferred(fresh)
    assert fresh.fold.tally() == full.fold.tally()
