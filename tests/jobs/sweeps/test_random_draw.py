"""Random proposals drawn without the engine (definition/random_draw.py) against W&B's
``random_search_next_runs`` from the same ``random`` seed, on generated definitions: the same
values, bit for bit, the same types and the same key order; a distribution it does not draw
(normal, beta, ...) is left to the engine."""

from __future__ import annotations

import json
import random
import string
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sweepkit.jobs.sweeps.definition import quiet_sweeps_import, random_draw
from sweepkit.jobs.sweeps.state import plain

names = st.text(string.ascii_lowercase, min_size=1, max_size=3)
scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-10, 10) | st.text(max_size=2)
bounds = st.tuples(st.floats(-8, 8), st.floats(0.01, 8)).map(lambda t: (t[0], t[0] + t[1]))
positive = st.tuples(st.floats(1e-6, 10), st.floats(1.01, 1e3)).map(lambda t: (t[0], t[0] * t[1]))
quanta = st.none() | st.sampled_from([1, 2, 0.1, 0.25, 1e-3])


def ranged(kind: str, pair: tuple[float, float], q: Any = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"distribution": kind, "min": pair[0], "max": pair[1]}
    return spec if q is None else {**spec, "q": q}


leaf_specs = st.one_of(
    scalars.map(lambda v: {"value": v}),
    st.lists(scalars, min_size=1, max_size=5).map(lambda vs: {"values": vs}),
    st.lists(st.integers(0, 5), min_size=1, max_size=4).map(
        lambda ws: {
            "values": list(range(len(ws))),
            "probabilities": [w / (sum(ws) or 1) for w in ws],
        }
    ),
    st.tuples(st.integers(-50, 50), st.integers(1, 10**6)).map(
        lambda t: {"min": t[0], "max": t[0] + t[1]}
    ),
    bounds.map(lambda b: {"min": b[0] + 0.5, "max": b[1] + 0.75}),
    bounds.map(lambda b: ranged("uniform", b)),
    st.tuples(st.sampled_from(["log_uniform", "inv_log_uniform"]), bounds).map(
        lambda t: ranged(*t)
    ),
    st.tuples(st.sampled_from(["log_uniform_values", "inv_log_uniform_values"]), positive).map(
        lambda t: ranged(*t)
    ),
    st.tuples(bounds, quanta).map(lambda t: ranged("q_uniform", *t)),
    st.tuples(bounds.map(lambda b: (b[0] / 4, b[1] / 4)), quanta).map(
        lambda t: ranged("q_log_uniform", *t)
    ),
    st.tuples(positive, quanta).map(lambda t: ranged("q_log_uniform_values", *t)),
)
specs = st.recursive(
    leaf_specs,
    lambda inner: st.dictionaries(names, inner, min_size=1, max_size=2).map(
        lambda ps: {"parameters": ps}
    ),
    max_leaves=4,
)
definitions = st.dictionaries(names, specs, min_size=1, max_size=4).map(
    lambda ps: {"method": "random", "parameters": ps}
)


def exact(value: Any) -> str:
    return json.dumps(value, default=repr) + repr(value)


@given(definition=definitions, seed=st.integers(0, 2**32))
def test_the_same_proposals_as_the_engine_from_the_same_seed(
    definition: dict[str, Any], seed: int
) -> None:
    quiet_sweeps_import()
    from sweeps.random_search import random_search_next_runs

    parameters = random_draw.samplers(definition)
    assert parameters is not None
    random.seed(seed)
    theirs = [plain(r.config) for r in random_search_next_runs(definition, n=3)]
    random.seed(seed)
    assert [exact(p) for p in random_draw.draw(parameters, 3)] == [exact(p) for p in theirs]


def test_the_distributions_it_does_not_draw_are_the_engines() -> None:
    for spec in (
        {"distribution": "normal", "mu": 0, "sigma": 1},
        {"distribution": "beta", "a": 2, "b": 3},
        {
            "min": 1.0,
            "max": 4.0,
        },  # an integral float: int_uniform or uniform, as the engine reads it
    ):
        definition = {"method": "random", "parameters": {"a": {"value": 1}, "b": spec}}
        assert random_draw.samplers(definition) is None, spec
