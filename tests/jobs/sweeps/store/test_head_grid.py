"""The grid points taken, from a snapshot's head and the journal after it (grid_taken.py), equal
those of a full replay for any journal agents write and any place the snapshot was taken (pure:
the snapshot's bytes made and read in memory); a fresh grid agent claims from the head alone,
the point a full replay would hand out; a head of another grid is not trusted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st
from snapshot_sweeps import from_head

from sweepkit.jobs.sweeps import store
from sweepkit.jobs.sweeps.definition.grid import GridOrder
from sweepkit.jobs.sweeps.store import snapshot
from sweepkit.jobs.sweeps.store.engine import Engine
from sweepkit.jobs.sweeps.store.fold import Fold, apply
from sweepkit.jobs.sweeps.store.grid_taken import GridTaken

GRID = {
    "method": "grid",
    "metric": {"name": "acc", "goal": "maximize"},
    "command": ["${env}", "${interpreter}", "-m", "sweepkit.train", "${args}"],
    "parameters": {"x": {"values": list(range(6))}, "y": {"values": ["a", "b"]}},
}

# a run's swept values: mostly grid points, some off the grid (x = 6, 7: no point of it)
points = st.fixed_dictionaries(
    {"x": st.fixed_dictionaries({"value": st.integers(0, 7)}), "y": st.just({"value": "b"})}
)
steps = st.one_of(
    st.tuples(st.just("new"), points),
    st.tuples(st.just("end"), st.integers(0, 30), st.sampled_from(["finished", "crashed"])),
    st.tuples(st.just("resume"), st.integers(0, 30)),
)


def journal(actions: list[tuple[Any, ...]], max_retries: int) -> list[dict[str, Any]]:
    """The records agents append for ``actions`` (new runs, ends of running attempts, resumed
    queued runs)."""
    fold, records = Fold(max_retries=max_retries), []
    for i, action in enumerate(actions):
        running = [r for r in fold.open.values() if r.state == "running"]
        queued = [r for r in fold.open.values() if r.state != "running"]
        if action[0] == "new":
            record = {"t": "claim", "run": f"r{i:03d}", "k": 0, "params": action[1]}
        elif action[0] == "end" and running:
            run = running[action[1] % len(running)]
            record = {"t": "end", "run": run.run_id, "k": run.k, "state": action[2]}
        elif action[0] == "resume" and queued:
            run = queued[action[1] % len(queued)]
            record = {"t": "claim", "run": run.run_id, "k": run.k + 1}
        else:
            continue
        apply(fold, [record])
        records.append(record)
    return records


@given(actions=st.lists(steps, max_size=40), cut=st.floats(0, 1), max_retries=st.integers(0, 1))
def test_the_head_and_the_tail_give_a_full_replays_grid_points(
    actions: list[tuple[Any, ...]], cut: float, max_retries: int
) -> None:
    records = journal(actions, max_retries)
    at = int(cut * len(records))
    full = apply(Fold(max_retries=max_retries), records)
    writer, fresh_engine, full_engine = Engine(GRID), Engine(GRID), Engine(GRID)
    prefix = apply(Fold(max_retries=max_retries), records[:at])
    fresh = apply(from_head(prefix, writer.grid_index()), records[at:])
    assert fresh_engine.reads_grid_head(fresh.unread)
    seen = fresh_engine._grid_taken(fresh.runs.values(), fresh.unread)
    assert seen == full_engine._grid_taken(full.runs.values(), None)
    order = GridOrder(GRID)
    expected = {i for r in full.runs.values() if (i := order.index_of(r.params)) is not None}
    assert set(range(order.size)) & {i for i in range(order.size) if i in seen} == expected
    assert fresh_engine.propose(3, fresh.runs.values(), fresh.unread) == full_engine.propose(
        3, full.runs.values()
    )


@given(
    indices=st.lists(st.integers(0, 40)),
    base=st.lists(st.integers(0, 40)),
    n=st.integers(0, 8),
    size=st.integers(0, 45),
)
def test_taken_ranges_are_the_set_of_indices(
    indices: list[int], base: list[int], n: int, size: int
) -> None:
    taken, held = GridTaken.of(indices, GridTaken.of(base)), set(indices) | set(base)
    assert {i for i in range(-2, 50) if i in taken} == held
    assert len(taken) == len(held)
    assert taken.first_free(n, size) == [i for i in range(size) if i not in held][:n]
    assert GridTaken.from_doc(json.loads(json.dumps(taken.to_doc()))) == taken
    starts_and_ends = taken.to_doc()
    assert starts_and_ends == sorted(starts_and_ends), "sorted ranges"
    assert all(a < b for a, b in zip(starts_and_ends, starts_and_ends[1:], strict=False)), (
        "disjoint and never adjacent: one range per block"
    )


def test_a_block_of_runs_in_order_is_one_range() -> None:
    assert GridTaken.of(range(20_000)).to_doc() == [0, 20_000]


# ----- through the store's files --------------------------------------------------------------
def claim_and_finish(sweep: store.LocalSweep, n: int, tag: str) -> None:
    for i in range(n):
        me = store.AgentIdentity(host=f"{tag}-{i}", pid=10_000 + i)
        claim = sweep.claim(me)
        assert isinstance(claim, store.Claim)
        sweep.finish(claim, me, "failed" if i % 3 else "finished", metric=0.5)


def test_a_fresh_grid_agent_claims_from_the_head_alone(tmp_path: Path) -> None:
    sweep = store.create_sweep(GRID, tmp_path / "s", source="test", max_retries=1)
    claim_and_finish(sweep, 7, "a")
    assert sweep.write_snapshot(force=True)
    claim_and_finish(sweep, 2, "b")  # a tail after the snapshot
    replay = tmp_path / "replay"
    shutil.copytree(sweep.path, replay)
    (replay / snapshot.SNAPSHOT_NAME).unlink()
    fresh, full = store.open_sweep(sweep.path), store.open_sweep(replay)
    me = store.AgentIdentity(host="fresh", pid=1)
    got, want = fresh.claim(me), full.claim(me)
    assert isinstance(got, store.Claim) and isinstance(want, store.Claim)
    assert fresh.fold.unread is not None and fresh.fold.unread.count == 7, "no body read"
    assert full.fold.unread is None
    assert got.params == want.params


def test_a_head_of_another_grid_is_not_trusted(tmp_path: Path) -> None:
    """A sweep.yaml whose grid changed after the snapshot (edited by hand): the head's points are
    of another order, so the claim reads every run."""
    sweep = store.create_sweep(GRID, tmp_path / "s", source="test", max_retries=1)
    claim_and_finish(sweep, 3, "a")
    assert sweep.write_snapshot(force=True)
    edited = {**GRID, "parameters": {**GRID["parameters"], "y": {"values": ["c", "a", "b"]}}}
    (sweep.path / "sweep.yaml").write_text(yaml.safe_dump(edited))
    fresh = store.open_sweep(sweep.path)
    claim = fresh.claim(store.AgentIdentity(host="fresh", pid=1))
    assert isinstance(claim, store.Claim)
    assert fresh.fold.unread is None, "every run read"
    order = GridOrder(fresh.definition)
    held = {order.index_of(r.params) for r in fresh.fold.runs.values() if r.run_id != claim.run_id}
    assert order.index_of(claim.params) not in held
