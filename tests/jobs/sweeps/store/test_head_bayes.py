"""What a bayes proposal reads of the runs a snapshot's head leaves unread, from the snapshot's
facts section (bayes_head.py): with the head's open runs and the journal after it, the same GP
data and the same proposal as a full replay, for any journal agents write and any place the
snapshot was taken (pure: the snapshot's bytes made and read in memory); a fresh bayes agent
claims without reading the body; facts that are absent, torn, of another definition or named by
a record after the snapshot are not used: the claim reads every run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from hypothesis import given
from hypothesis import strategies as st

from sweepkit.jobs.sweeps import store
from sweepkit.jobs.sweeps.store import bayes_head, snapshot, snapshot_format
from sweepkit.jobs.sweeps.store.engine import Engine
from sweepkit.jobs.sweeps.store.fold import Fold, apply

BAYES = {
    "method": "bayes",
    "metric": {"name": "acc", "goal": "maximize", "impute": "latest"},
    "command": ["${env}", "${interpreter}", "-m", "sweepkit.train", "${args}"],
    "parameters": {
        "lr": {"min": 0.001, "max": 0.1},
        "width": {"values": [16, 32, 64]},
        "depth": {"min": 1, "max": 6},
    },
}

metric_values = st.one_of(
    st.floats(),  # NaN, the infinities
    st.integers(-(10**20), 10**20),
    st.none(),
)
params = st.fixed_dictionaries(
    {
        "lr": st.fixed_dictionaries({"value": st.floats(0.001, 0.1)}),
        "width": st.fixed_dictionaries({"value": st.sampled_from([16, 32, 64])}),
        "depth": st.fixed_dictionaries({"value": st.one_of(st.integers(0, 6), st.floats())}),
    }
)
steps = st.one_of(
    st.tuples(st.just("new"), params),
    st.tuples(
        st.just("end"),
        st.integers(0, 30),
        st.sampled_from(["finished", "stopped", "failed", "crashed", "preempted"]),
        st.lists(metric_values, max_size=4),
        metric_values,
    ),
    st.tuples(st.just("resume"), st.integers(0, 30)),
)


def journal(actions: list[tuple[Any, ...]], max_retries: int) -> list[dict[str, Any]]:
    """The records agents append for ``actions`` (new runs, ends of running attempts with their
    histories and metric, resumed queued runs)."""
    fold, records = Fold("maximize", max_retries=max_retries, metric_name="acc"), []
    for i, action in enumerate(actions):
        running = [r for r in fold.open.values() if r.state == "running"]
        queued = [r for r in fold.open.values() if r.state != "running"]
        if action[0] == "new":
            record = {"t": "claim", "run": f"r{i:03d}", "k": 0, "params": action[1]}
        elif action[0] == "end" and running:
            run = running[action[1] % len(running)]
            record = {"t": "end", "run": run.run_id, "k": run.k, "state": action[2]}
            record.update(history=action[3], metric=action[4], epochs=len(action[3]))
        elif action[0] == "resume" and queued:
            run = queued[action[1] % len(queued)]
            record = {"t": "claim", "run": run.run_id, "k": run.k + 1}
        else:
            continue
        apply(fold, [record])
        records.append(record)
    return records


def fresh_facts(prefix: Fold, tail: list[dict[str, Any]], writer: Engine) -> list[Any] | None:
    """A fresh reader's runs as bayes reads them: the snapshot of ``prefix`` (its bytes, then its
    head and facts read back), the ``tail`` folded on."""
    index = writer.bayes_index()
    unread = [(i, r) for i, (k, r) in enumerate(prefix.runs.items()) if k not in prefix.open]
    facts = bayes_head.section(unread, index)
    data = snapshot_format.dump(
        prefix.runs, list(prefix.open), 0, (0, 0), False, prefix.max_retries, prefix.ahead,
        extra=bayes_head.header_fields(facts),
    ) + facts  # fmt: skip
    line, rest = data.split(b"\n", 1)
    header = json.loads(line)
    doc = snapshot_format.load_head(header, rest[: header["head_len"]])
    assert isinstance(doc, dict) and index is not None
    if not facts:  # a value the engine cannot take as a number: the full path fails as well
        return None
    placed = bayes_head.load(rest[-header["facts_len"] :], header, index[0])
    assert not isinstance(placed, str)
    fold = Fold("maximize", max_retries=prefix.max_retries, metric_name="acc")
    head_open = snapshot_format.open_runs(doc)
    fold.runs = {run.run_id: run for _, run in head_open}
    fold.open = dict(fold.runs)
    apply(fold, tail)
    return bayes_head.KeptFacts(placed, head_open).every(fold.runs.values())


@given(
    actions=st.lists(steps, max_size=40),
    cut=st.floats(0, 1),
    max_retries=st.integers(0, 1),
    impute=st.sampled_from(["worst", "best", "latest"]),
)
def test_the_facts_and_the_tail_give_a_full_replays_gp_data(
    actions: list[tuple[Any, ...]], cut: float, max_retries: int, impute: str
) -> None:
    definition = {**BAYES, "metric": {**BAYES["metric"], "impute": impute}}
    records = journal(actions, max_retries)
    at = int(cut * len(records))
    full = apply(Fold("maximize", max_retries=max_retries, metric_name="acc"), records)
    prefix = apply(Fold("maximize", max_retries=max_retries, metric_name="acc"), records[:at])
    fresh = fresh_facts(prefix, records[at:], Engine(definition))
    if fresh is None:
        return
    ours, theirs = Engine(definition)._bayes(), Engine(definition)._bayes()
    got = ours._gp_data([ours.facts(r) for r in fresh])
    want = theirs._gp_data([theirs.facts(r) for r in full.runs.values()])
    for a, b in zip(got, want, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
        assert np.asarray(a).shape == np.asarray(b).shape


# ----- through the store's files --------------------------------------------------------------
def claim_and_finish(sweep: store.LocalSweep, n: int, tag: str) -> None:
    for i in range(n):
        me = store.AgentIdentity(host=f"{tag}-{i}", pid=10_000 + i)
        claim = sweep.claim(me)
        assert isinstance(claim, store.Claim)
        state = "failed" if i % 3 == 2 else "finished"
        sweep.finish(claim, me, state, metric=0.1 * i, history=[0.05 * i, 0.1 * i])


def fresh_and_full_claims(sweep: store.LocalSweep, tmp_path: Path) -> tuple[Any, Any, Any]:
    """A fresh agent's claim on ``sweep`` and one on a copy without its snapshot (a full replay),
    from the same random state; and the fresh agent's sweep."""
    replay = tmp_path / "replay"
    shutil.copytree(sweep.path, replay)
    (replay / snapshot.SNAPSHOT_NAME).unlink()
    fresh, full = store.open_sweep(sweep.path), store.open_sweep(replay)
    me = store.AgentIdentity(host="fresh", pid=1)
    np.random.seed(5)
    got = fresh.claim(me)
    np.random.seed(5)
    want = full.claim(me)
    assert isinstance(got, store.Claim) and isinstance(want, store.Claim)
    assert got.params == want.params
    return got, want, fresh


def made(tmp_path: Path) -> store.LocalSweep:
    sweep = store.create_sweep(BAYES, tmp_path / "s", source="test", max_retries=1)
    claim_and_finish(sweep, 6, "a")
    assert sweep.write_snapshot(force=True)
    claim_and_finish(sweep, 2, "b")  # a tail after the snapshot
    return sweep


def test_a_fresh_bayes_agent_claims_without_reading_the_body(tmp_path: Path) -> None:
    sweep = made(tmp_path)
    header = json.loads((sweep.path / snapshot.SNAPSHOT_NAME).read_bytes().split(b"\n", 1)[0])
    assert header["facts_len"] > 0
    got, want, fresh = fresh_and_full_claims(sweep, tmp_path)
    assert fresh.fold.unread is not None and fresh.fold.unread.count == 6, "no body read"
    # the same agent's next claim, after its run ended, from the facts kept: the full reader's
    full = store.open_sweep(tmp_path / "replay")
    for agent, claim in ((fresh, got), (full, want)):
        me = store.AgentIdentity(host="fresh", pid=1)
        agent.finish(claim, me, "finished", metric=0.7, history=[0.3, 0.7])
    np.random.seed(6)
    again = fresh.claim(store.AgentIdentity(host="fresh", pid=1))
    np.random.seed(6)
    expected = full.claim(store.AgentIdentity(host="fresh", pid=1))
    assert isinstance(again, store.Claim) and isinstance(expected, store.Claim)
    assert again.params == expected.params
    assert fresh.fold.unread is not None, "still no body read"


def test_torn_facts_are_not_used(tmp_path: Path) -> None:
    sweep = made(tmp_path)
    path = sweep.path / snapshot.SNAPSHOT_NAME
    data = bytearray(path.read_bytes())
    data[-3] = ord("9") if data[-3] != ord("9") else ord("8")  # inside the facts
    path.write_bytes(bytes(data))
    _, _, fresh = fresh_and_full_claims(sweep, tmp_path)
    assert fresh.fold.unread is None, "every run read"


def test_a_snapshot_without_facts_means_every_run_read(tmp_path: Path) -> None:
    sweep = store.create_sweep(BAYES, tmp_path / "s", source="test", max_retries=1)
    claim_and_finish(sweep, 4, "a")
    sweep._state.bayes = None  # a writer that keeps no facts
    assert sweep.write_snapshot(force=True)
    _, _, fresh = fresh_and_full_claims(sweep, tmp_path)
    assert fresh.fold.unread is None, "every run read"


def test_facts_of_another_definition_are_not_used(tmp_path: Path) -> None:
    sweep = made(tmp_path)
    edited = {**BAYES, "metric": {**BAYES["metric"], "goal": "minimize"}}
    (sweep.path / "sweep.yaml").write_text(yaml.safe_dump(edited))
    _, _, fresh = fresh_and_full_claims(sweep, tmp_path)
    assert fresh.fold.unread is None, "every run read"


def test_facts_of_a_run_named_after_the_snapshot_are_not_used(tmp_path: Path) -> None:
    """A journal edited by hand: an end record after the snapshot names a done run it keeps."""
    sweep = made(tmp_path)
    done = next(r for r in sweep.fold.runs.values() if r.state == "finished")
    sweep._state.append([{"t": "end", "run": done.run_id, "k": 1, "state": "failed"}])
    _, _, fresh = fresh_and_full_claims(sweep, tmp_path)
    assert fresh.fold.unread is None, "every run read"
