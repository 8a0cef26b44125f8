"""The broken-sweep rule's counts (``fold.Outcomes``) and the bayes proposals made ahead still
pending (``fold.Ahead``) from a snapshot's head and the journal after it equal those of a full
replay, for any journal agents write and any place the snapshot was
taken (pure: the snapshot's bytes made and read in memory, snapshot_format.py); and a fresh agent
reads them with none of the runs the head left unread."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from snapshot_sweeps import DEFINITION, from_head, work

from sweepkit.jobs.sweeps import store
from sweepkit.jobs.sweeps.store.fold import STALE_AFTER_ENDS, Fold, Outcomes, apply

END_STATES = ("finished", "failed", "stopped", "crashed", "preempted", "lost")  # lost: foreign
TIMES = (1.0, 2.0, 3.0, 2.5)  # few, so that end times tie

# one step of agents' work: a new run, the end of a running attempt, a queued run resumed
steps = st.one_of(
    st.tuples(st.just("new")),
    st.tuples(
        st.just("end"),
        st.integers(0, 50),
        st.sampled_from(END_STATES),
        st.integers(0, 2),
        st.sampled_from(TIMES),
        st.one_of(st.none(), st.text(max_size=5)),
    ),
    st.tuples(st.just("resume"), st.integers(0, 50)),
    # a proposal made ahead (made from the fold as it is, or from up to 4 ends earlier), and a
    # new run that takes a pending one
    st.tuples(st.just("propose"), st.integers(0, 4)),
    st.tuples(st.just("take"), st.integers(0, 50)),
)


def journal(actions: list[tuple[Any, ...]], max_retries: int) -> list[dict[str, Any]]:
    """The records agents append for ``actions``: only what an agent does (a new run id per new
    run, an end of a running attempt, a claim of a queued run)."""
    fold, records = Fold(max_retries=max_retries), []
    for i, action in enumerate(actions):
        running = [r for r in fold.open.values() if r.state == "running"]
        queued = [r for r in fold.open.values() if r.state != "running"]
        if action[0] == "new":
            record = {"t": "claim", "run": f"r{i:03d}", "k": 0, "params": {"x": i}, "at": 0.5}
        elif action[0] == "end" and running:
            _, pick, state, epochs, at, error = action
            run = running[pick % len(running)]
            record = {"t": "end", "run": run.run_id, "k": run.k, "state": state, "at": at}
            record |= {"epochs": epochs, "exit_code": 1, "error": error}
        elif action[0] == "resume" and queued:
            run = queued[action[1] % len(queued)]
            record = {"t": "claim", "run": run.run_id, "k": run.k + 1, "at": 0.5}
        elif action[0] == "propose":
            ended = max(0, fold.ahead.ended - action[1])
            record = {"t": "propose", "id": f"p{i:03d}", "params": {"x": -i}, "ended": ended}
        elif action[0] == "take" and fold.ahead.pending:
            pending = list(fold.ahead.pending.values())[action[1] % len(fold.ahead.pending)]
            record = {"t": "claim", "run": f"r{i:03d}", "k": 0, "params": pending["params"]}
            record |= {"at": 0.5, "proposal": pending["id"]}
        else:
            continue
        apply(fold, [record])
        records.append(record)
    return records


def comparable(seen: Outcomes) -> Outcomes:
    """The running runs in any order: the rule asks each of them alike."""
    return dataclasses.replace(seen, running=tuple(sorted(seen.running)))


@given(
    actions=st.lists(steps, max_size=40),
    cut=st.floats(0, 1),
    max_retries=st.integers(0, 2),
)
def test_the_head_and_the_tail_give_a_full_replays_outcomes(
    actions: list[tuple[Any, ...]], cut: float, max_retries: int
) -> None:
    records = journal(actions, max_retries)
    at = int(cut * len(records))
    full = apply(Fold(max_retries=max_retries), records)
    fresh = apply(from_head(apply(Fold(max_retries=max_retries), records[:at])), records[at:])
    assert comparable(fresh.outcomes()) == comparable(full.outcomes())
    assert fresh.tally() == full.tally()
    assert fresh.ahead == full.ahead, "the same proposals pending, judged by the same count"
    taken = [r["proposal"] for r in records if "proposal" in r]
    assert len(taken) == len(set(taken)), "each proposal taken by one run"
    assert not set(taken) & set(full.ahead.pending), "a taken proposal is no longer pending"
    assert all(
        full.ahead.ended - p["ended"] <= STALE_AFTER_ENDS for p in full.ahead.pending.values()
    )


def test_a_fresh_agent_reads_the_outcomes_from_the_head_alone(tmp_path: Path) -> None:
    """Through the store's files: a snapshot written, a tail after it, and a fresh reader."""
    sweep = store.create_sweep(DEFINITION, tmp_path / "s", source="test", max_retries=1)
    work(sweep, 12, seed=5)
    assert sweep.write_snapshot(force=True)
    work(sweep, 5, seed=6, leave_running=2)
    full = store.open_sweep(sweep.path)
    full.refresh()
    fresh = store.open_sweep(sweep.path)
    seen = fresh.outcomes()
    assert fresh.fold.unread is not None and fresh.fold.unread.count > 0, "the head alone"
    assert comparable(seen) == comparable(full.fold.outcomes())
    assert seen.scored and seen.failed and len(seen.running) >= 2
