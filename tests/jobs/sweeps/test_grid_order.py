"""A grid's points by index (``GridOrder``), against W&B's grid search on generated grids.

The oracle is ``sweeps.grid_search.grid_search_next_runs`` itself: every point in its order
(compared with the key order of every dict, as the command line's ``${args}`` follows it), its
next points once some are held by runs (dict values with keys the program added, values given as
integral floats), and its ``yaml_hash``. A 10^7-point grid's last point and next free points are
computed in a few kilobytes.
"""

from __future__ import annotations

import json
import string
import tracemalloc
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sweepkit.jobs.sweeps.definition import quiet_sweeps_import
from sweepkit.jobs.sweeps.definition.grid import GridOrder, yaml_hash
from sweepkit.jobs.sweeps.state import plain

names = st.text(string.ascii_lowercase + "_", min_size=1, max_size=4)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from([0.0, -0.0, 1.0, 2.5, 1e-5, 3e6, float("inf")])
    | st.sampled_from(["a", "1", "true", "null", "b c"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(names, inner, max_size=2),
    max_leaves=4,
)
leaf_specs = st.one_of(
    st.lists(values, min_size=1, max_size=4).map(lambda vs: {"values": vs}),
    values.map(lambda v: {"value": v}),
    st.tuples(st.integers(-3, 3), st.integers(1, 3)).map(
        lambda t: {"distribution": "int_uniform", "min": t[0], "max": t[0] + t[1]}
    ),
    st.tuples(st.sampled_from([0, 0.5, -1]), st.sampled_from([1, 0.5, 0.25])).map(
        lambda t: {"distribution": "q_uniform", "min": t[0], "max": t[0] + 1.5, "q": t[1]}
    ),
)
specs = st.recursive(
    leaf_specs,
    lambda inner: st.dictionaries(names, inner, min_size=1, max_size=2).map(
        lambda ps: {"parameters": ps}
    ),
    max_leaves=4,
)
definitions = st.dictionaries(names, specs, min_size=1, max_size=3).map(
    lambda ps: {"method": "grid", "parameters": ps}
)


def engine_next(definition: dict[str, Any], configs: list[dict[str, Any]], n: int) -> list[Any]:
    quiet_sweeps_import()
    from sweeps.grid_search import grid_search_next_runs
    from sweeps.run import SweepRun

    runs = [SweepRun(name=f"r{i}", config=c) for i, c in enumerate(configs)]
    return [plain(r.config) for r in grid_search_next_runs(runs, definition, n=n) if r is not None]


def exact(value: Any) -> str:
    """The value with its dicts' key order and its types (1 against 1.0, True against 1)."""
    return json.dumps(value, default=repr) + repr(value)


@given(definition=definitions)
def test_every_point_in_the_engines_order(definition: dict[str, Any]) -> None:
    grid = GridOrder(definition)
    if grid.size > 300:
        return  # the engine's listing stays cheap per example
    expected = engine_next(definition, [], grid.size + 1)
    assert grid.size == len(expected)
    assert [exact(grid.point(i)) for i in range(grid.size)] == [exact(p) for p in expected]


@given(definition=definitions, data=st.data())
def test_next_points_once_runs_hold_some(definition: dict[str, Any], data: Any) -> None:
    grid = GridOrder(definition)
    if grid.size > 300:
        return
    held = data.draw(st.sets(st.integers(0, grid.size - 1), max_size=grid.size))
    configs = [as_run_wrote_it(grid.point(i)) for i in sorted(held)]
    # a run's config the engine does not match to a point (a key added to the grid's only dict
    # value, {}) holds none: index_of says None
    taken = {grid.index_of(c) for c in configs} - {None}
    assert taken <= held
    n = data.draw(st.integers(1, 5))
    expected = engine_next(definition, configs, n)
    assert [exact(grid.point(i)) for i in grid.first_free(taken, n)] == [exact(p) for p in expected]


def as_run_wrote_it(point: dict[str, Any]) -> dict[str, Any]:
    """A point as a run's config may hold it: integral numbers as floats, and a key the program
    added to a dict value (the engine ignores both)."""

    def loosen(value: Any) -> Any:
        if isinstance(value, dict):
            return {**value, "added_by_program": 1}
        return float(value) if type(value) is int else value

    return {name: {"value": loosen(holder["value"])} for name, holder in point.items()}


@given(value=values)
def test_yaml_hash_is_the_engines(value: Any) -> None:
    quiet_sweeps_import()
    from sweeps.grid_search import yaml_hash as engine_yaml_hash

    assert yaml_hash(value) == engine_yaml_hash(value)


@given(value=st.booleans() | st.integers() | st.floats())
def test_a_numbers_hash_is_the_engines_without_its_emitter(value: Any) -> None:
    """Numbers (every int, every float: NaN, the infinities, exponents) are hashed from
    PyYAML's representer's text, not dumped (``_dumped_number``): the same hash."""
    quiet_sweeps_import()
    from sweeps.grid_search import yaml_hash as engine_yaml_hash

    assert yaml_hash(value) == engine_yaml_hash(value)


def test_a_ten_million_point_grid_in_kilobytes() -> None:
    definition = {
        "method": "grid",
        "parameters": {
            "seed": {"distribution": "int_uniform", "min": 1, "max": 10_000},
            "lr": {"values": [10.0**-k for k in range(10)]},
            "depth": {"values": [18, 34, 50, 101, 152, 200, 250, 300, 350, 400]},
            "wd": {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.1},
        },
    }
    tracemalloc.start()
    grid = GridOrder(definition)
    last = grid.point(grid.size - 1)
    free = grid.first_free(range(1000), 3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert grid.size == 10_000_000
    assert free == [1000, 1001, 1002]
    assert last["seed"]["value"] == 10_000 and last["depth"]["value"] == 400
    assert grid.index_of(last) == grid.size - 1
    assert peak < 1_000_000
