"""NaN and the infinities through the store (train/json_values.py): any float an end record holds
comes back as the same float from the journal and the snapshot; every JSON the kit writes is
strict JSON (no NaN/Infinity literals); a sweep whose runs logged NaN or inf keeps claiming,
proposing (bayes) and ranking a finite run best. Real store files in a temporary folder."""

from __future__ import annotations

import io
import json
import math
import struct
import zlib
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sweepkit.jobs.sweeps import status, store
from sweepkit.jobs.sweeps.store import journal
from sweepkit.train import json_values
from sweepkit.train.atomic import write_json_atomic

NONFINITE = [math.nan, math.inf, -math.inf]


def strict(text: str | bytes) -> Any:
    """JSON parsed as a strict parser does: NaN, Infinity and -Infinity literals refused."""

    def refuse(literal: str) -> Any:
        raise ValueError(f"{literal} is not JSON")

    return json.loads(text, parse_constant=refuse)


def same_float(a: Any, b: Any) -> bool:
    """The same float: bit for bit (-0.0 is not 0.0), except that every NaN is NaN (W&B's "NaN"
    keeps neither a NaN's sign nor its payload, which no reader tells apart)."""
    if isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return isinstance(b, float) and struct.pack("<d", a) == struct.pack("<d", b)


@given(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True))
def test_any_float_round_trips_through_the_journal_encoding(value: float) -> None:
    record = {"t": "end", "run": "r", "k": 0, "metric": value, "history": [value, 1.0, value]}
    line = journal.encode(record)
    body = journal.checked_body(line)
    assert body is not None
    strict(body)
    (back,) = journal.parse_bodies([body])
    assert same_float(value, json_values.number(back["metric"]))
    history = json_values.numbers(back["history"])
    assert same_float(value, history[0]) and same_float(value, history[2])


@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=12,
    )
)
def test_every_document_the_kit_dumps_is_strict_json(value: Any) -> None:
    strict(json_values.dumps(value))


def test_an_old_journal_line_with_a_nan_literal_still_reads() -> None:
    body = b'{"history":[NaN,0.5],"k":0,"metric":NaN,"run":"r","t":"end"}'
    (record,) = journal.parse_bodies([body])
    assert math.isnan(json_values.number(record["metric"]))
    assert f"{zlib.crc32(body):08x}"  # (lines are checksummed over exactly this body)


def test_run_json_is_written_as_strict_json(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "run.json", {"summary": {"loss": math.nan, "acc": -math.inf}})
    doc = strict((tmp_path / "run.json").read_text())
    assert doc["summary"] == {"loss": "NaN", "acc": "-Infinity"}


BAYES = {
    "method": "bayes",
    "metric": {"name": "loss", "goal": "minimize"},
    "command": ["${env}", "${interpreter}", "prog.py", "${args}"],
    "parameters": {"lr": {"min": 0.001, "max": 1.0}},
}


def end_runs(sweep: store.LocalSweep, metrics: list[float]) -> list[str]:
    """One claim per value, each finished with that value as its metric and history."""
    ids = []
    for i, metric in enumerate(metrics):
        me = store.AgentIdentity(host=f"node{i}", pid=100 + i)
        claim = sweep.claim(me)
        assert isinstance(claim, store.Claim), claim
        history = [0.5, metric]
        sweep.finish(claim, me, "finished", metric=metric, history=history, epochs=2, summary={})
        ids.append(claim.run_id)
    return ids


def test_a_bayes_sweep_with_nan_and_inf_runs_keeps_proposing_and_ranks_a_finite_run_best(
    tmp_path: Path,
) -> None:
    sweep = store.create_sweep(BAYES, tmp_path / "s", source="test")
    ids = end_runs(sweep, [math.nan, 0.25, math.inf, -math.inf, 0.125, math.nan])
    for line in (sweep.path / "journal.jsonl").read_bytes().splitlines():
        strict(line[9:])
    # the next agent (a fresh process's view of the folder) claims a bayes proposal
    fresh = store.open_sweep(sweep.path)
    claim = fresh.claim(store.AgentIdentity(host="later", pid=7))
    assert isinstance(claim, store.Claim), claim
    views = {v.run_id: v for v in fresh.runs(read_ended=False)}
    assert math.isnan(views[ids[0]].metric) and views[ids[2]].metric == math.inf
    assert views[ids[3]].metric == -math.inf  # -inf: never best, even when minimising
    assert math.isnan(views[ids[0]].metric_history[1])
    best = status.best_run(fresh, list(views.values()))
    assert best is not None and best.run_id == ids[4]
    table = status.render(fresh)
    assert f"best: {ids[4]} loss=0.125" in table
    assert "nan" in table and "inf" in table and "-inf" in table
    out = io.StringIO()
    status.write_json(fresh, out)
    doc = strict(out.getvalue())
    assert doc["best"] == ids[4]
    by_id = {r["run_id"]: r for r in doc["runs"]}
    assert by_id[ids[0]]["metric"] == "NaN" and by_id[ids[3]]["metric"] == "-Infinity"


def test_the_snapshot_keeps_nan_and_inf_and_is_strict_json(tmp_path: Path) -> None:
    sweep = store.create_sweep(BAYES, tmp_path / "s", source="test")
    ids = end_runs(sweep, [math.nan, math.inf, 0.5])
    assert sweep.write_snapshot(force=True)
    header, head, index, blobs = (sweep.path / "journal.snapshot").read_bytes().split(b"\n", 3)
    strict(header), strict(head)
    for entry in strict(index):  # each settled run's records, as their own JSON text
        strict(blobs[entry[4] : entry[4] + entry[5]])
    fresh = store.open_sweep(sweep.path)
    views = {v.run_id: v for v in fresh.runs(read_ended=False)}
    assert math.isnan(views[ids[0]].metric) and views[ids[1]].metric == math.inf
    assert status.best_run(fresh, list(views.values())).run_id == ids[2]  # type: ignore[union-attr]
    assert isinstance(fresh.claim(store.AgentIdentity(host="later", pid=7)), store.Claim)
