"""``status --json`` writes an ended run straight from its end record as a plain dict
(``RunReader.ended_json``): it must be, key for key and in order, the dict the view of that run
gives (``view_json(ended_view(run))``), which status wrote before and the report still reads."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sweepkit.jobs.sweeps.store.end_values import marked
from sweepkit.jobs.sweeps.store.fold import FoldedRun
from sweepkit.jobs.sweeps.store.reader import RunReader, view_json
from sweepkit.jobs.sweeps.vocabulary import DONE_STATES

numbers = st.one_of(
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.text(max_size=3),
)
values = st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=4), st.booleans())
params = st.dictionaries(
    st.text("abc.", min_size=1, max_size=4),
    st.one_of(
        st.fixed_dictionaries({"value": values}),
        st.fixed_dictionaries({"value": st.dictionaries(st.text("xy", min_size=1), values)}),
    ),
    max_size=3,
)


@st.composite
def ended_runs(draw: st.DrawFn) -> FoldedRun:
    run = FoldedRun(draw(st.text("abc123", min_size=1, max_size=8)), draw(params))
    attempts = draw(st.integers(1, 3))
    at = draw(st.floats(1e9, 2e9))
    for k in range(attempts):
        run.claims.append(
            {
                "t": "claim",
                "run": run.run_id,
                "k": k,
                "at": at + k,
                "host": draw(st.none() | st.text(max_size=5)),
                "slurm": draw(st.none() | st.fixed_dictionaries({"job_id": st.text(max_size=3)})),
            }
        )
        result = {
            "metric": draw(numbers),
            "history": draw(st.lists(st.floats(), max_size=4)),
            "summary": draw(st.dictionaries(st.text(max_size=3), st.floats(), max_size=2)),
        }
        run.ends[k] = {
            "t": "end",
            "run": run.run_id,
            "k": k,
            "state": draw(st.sampled_from((*DONE_STATES, "preempted"))),
            "at": at + k + draw(st.floats(0, 1e5)),
            "epochs": draw(st.integers(0, 5)),
            "metric_source": draw(st.sampled_from(("wandb", "run.json", "none"))),
            "error": draw(st.none() | st.text(max_size=6)),
            "exit_code": draw(st.none() | st.integers(-9, 2)),
            **json.loads(json.dumps(_safe(result))),
            **marked(result),
        }
    return run


def _safe(value: Any) -> Any:  # the journal's encoding of NaN and inf (json_values)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_safe(v) for v in value]
    return value


@given(run=ended_runs(), metric_name=st.sampled_from((None, "loss")), retries=st.integers(0, 2))
def test_an_ended_runs_json_row_is_its_views_row(
    run: FoldedRun, metric_name: str | None, retries: int
) -> None:
    reader = RunReader(Path("/sweeps/s1/runs"), metric_name, "minimize", retries)
    view = reader.ended_view(run)
    row = reader.ended_json(run)
    assert view is not None and row is not None
    expected = view_json(view)
    assert list(row) == list(expected)
    # compared as written (NaN is not equal to itself as a float)
    assert json.dumps(row) == json.dumps(expected)


def test_a_run_whose_end_record_says_too_little_has_no_json_row() -> None:
    run = FoldedRun("r1", {})
    run.claims.append({"t": "claim", "run": "r1", "k": 0, "at": 1.0})
    reader = RunReader(Path("/sweeps/s1/runs"), None, "minimize", 2)
    assert reader.ended_json(run) is None  # running
    run.ends[0] = {"t": "end", "run": "r1", "k": 0, "state": "finished", "at": 2.0}
    assert reader.ended_json(run) is None  # an older version's end record: no epochs
