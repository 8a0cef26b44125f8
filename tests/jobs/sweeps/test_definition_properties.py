"""Generated sweep definitions against W&B's own engine (issue 28, item 8): whatever the engine
(the ``sweeps`` package) accepts, ``sweepkit sweep create`` creates; whatever it refuses gets one
line and exit 2, never a traceback.

The oracle is the engine's own checks, as W&B's server and agent apply them: the definition is
validated (``SweepConfig``: the JSON schema and the filling of defaults), its first run drawn
(``next_runs``), and its early termination built (``stop_runs``). Unknown top-level, ``metric``
and ``early_terminate`` keys are left out of the generator: W&B's server creates such a sweep with
a warning where the engine's strict validation refuses it (``TOLERATED_UNKNOWN_KEYS`` in
check.py, tested in test_definition_warnings.py). Nested parameters (``parameters:`` inside a
parameter) are left out too: ``next_runs(..., validate=True)`` refuses every definition whose
parameters are all nested ("Parameters section ... must be a dict of at least length 1", after its
own flattening), and lets a nested range pass that it refuses at the top level (min == max), where
W&B's agent and the kit run nested sweeps flattened: this engine entry point is no oracle there.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sweepkit.jobs.cli import main as sweepkit_main
from sweepkit.jobs.sweeps.definition.check import quiet_sweeps_import
from sweepkit.train.config import dump_yaml


def engine_distributions() -> list[str]:
    """Every distribution name the engine's schema knows (the oracle's list, not ours)."""
    quiet_sweeps_import()
    from sweeps.config.schema import sweep_config_jsonschema

    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            enum = node.get("properties", {}).get("distribution", {}).get("enum", [])
            found.update(enum)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(sweep_config_jsonschema)
    return sorted(found)


# and one name the engine does not know, which it refuses
DISTRIBUTIONS = [*engine_distributions(), "gaussian"]
finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
numbers = st.one_of(st.integers(-5, 20), finite, st.sampled_from([0.0, 1e-5, 0.5, 1.0, 1e3]))
scalars = st.one_of(numbers, st.booleans(), st.text(max_size=6), st.none())
identifiers = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
names = st.sampled_from([identifiers] * 5 + [st.text(min_size=1, max_size=6)]).flatmap(
    lambda strategy: strategy
)


def ordered(values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``{min, max}`` with min <= max, as a user writes a range."""
    return st.tuples(values, values).map(sorted).map(lambda pair: {"min": pair[0], "max": pair[1]})


def ranges() -> st.SearchStrategy[dict[str, Any]]:
    """A range, ordered or not, with or without a distribution and its extra keys."""
    extra = st.fixed_dictionaries(
        {},
        optional={
            "distribution": st.sampled_from(DISTRIBUTIONS),
            "q": numbers,
            "mu": numbers,
            "sigma": numbers,
        },
    )
    bounds = st.one_of(
        ordered(st.integers(-5, 20)),
        ordered(finite),
        st.fixed_dictionaries({"min": numbers, "max": numbers}),
    )
    return st.tuples(bounds, extra).map(lambda both: {**both[0], **both[1]})


def good_parameter() -> st.SearchStrategy[dict[str, Any]]:
    """The shapes W&B's documentation shows."""
    return st.one_of(
        st.fixed_dictionaries({"value": scalars}),
        st.fixed_dictionaries({"values": st.lists(scalars, min_size=1, max_size=4)}),
        ordered(st.integers(-5, 20)),
        ordered(finite),
        ordered(st.floats(1e-6, 10.0)).map(lambda r: {**r, "distribution": "log_uniform_values"}),
        ordered(st.integers(0, 9)).map(lambda r: {**r, "distribution": "int_uniform"}),
    )


def wild_parameter() -> st.SearchStrategy[Any]:
    """Shapes a user gets wrong: odd keys and values, empty lists, no mapping at all."""
    return st.one_of(
        st.fixed_dictionaries(
            {"values": st.lists(scalars, max_size=4)},
            optional={
                "distribution": st.sampled_from(["categorical", "constant", "uniform"]),
                "probabilities": st.lists(numbers, max_size=4),
            },
        ),
        ranges(),
        st.fixed_dictionaries({"distribution": st.sampled_from(DISTRIBUTIONS)}),
        scalars,
    )


def mostly(good: st.SearchStrategy[Any], wild: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` five times in six: a definition has several parts, and one wrong part refuses it,
    so that both sides of the oracle are reached often."""
    return st.sampled_from([good] * 5 + [wild]).flatmap(lambda strategy: strategy)


def parameter(depth: int) -> st.SearchStrategy[Any]:
    shape = mostly(good_parameter(), wild_parameter())
    if depth > 0:
        nested = st.fixed_dictionaries({"parameters": parameters(depth - 1)})
        shape = mostly(shape, nested)
    return shape


def parameters(depth: int = 1) -> st.SearchStrategy[dict[str, Any]]:
    return mostly(st.dictionaries(names, parameter(depth), min_size=1, max_size=3), st.just({}))


good_hyperband = st.fixed_dictionaries(
    {"type": st.just("hyperband"), "min_iter": st.integers(1, 5)},
    optional={"eta": st.integers(2, 4)},
)
hyperband = mostly(
    good_hyperband,
    st.fixed_dictionaries(
        {"type": st.sampled_from(["hyperband", "median"])},
        optional={
            "min_iter": st.integers(-1, 5),
            "max_iter": st.integers(-1, 30),
            "eta": st.integers(-1, 4),
            "s": st.integers(-1, 4),
        },
    ),
)
good_metric = st.fixed_dictionaries(
    {"name": identifiers, "goal": st.sampled_from(["minimize", "maximize"])}
)
metric = mostly(
    good_metric,
    st.fixed_dictionaries(
        {"name": names},
        optional={"goal": st.sampled_from(["minimize", "maximize", "up"]), "target": numbers},
    ),
)
methods = st.sampled_from(["grid", "random", "bayes"] * 4 + ["custom", "grd", ""])
definitions = st.fixed_dictionaries(
    {
        "method": methods,
        "parameters": parameters(depth=0),
        "program": st.just("train.py"),
    },
    optional={
        "metric": metric,
        "run_cap": st.integers(-2, 50),
        "early_terminate": hyperband,
    },
)


def engine_accepts(definition: dict[str, Any]) -> bool:
    """The engine's own checks: validate, draw the first run, build the early termination."""
    quiet_sweeps_import()
    import sweeps

    config = copy.deepcopy(definition)
    try:
        sweeps.next_runs(config, [], validate=True)
        if "early_terminate" in config:
            sweeps.stop_runs(config, [], validate=True)
    except Exception:  # the engine's refusals are of many types: any is a refusal
        return False
    return True


def test_the_generators_reach_both_sides_of_the_oracle():
    """Not vacuous: the hand-picked ends of the generator land on both sides."""
    good = {"method": "grid", "parameters": {"a": {"values": [1, 2]}}, "program": "train.py"}
    assert engine_accepts(good)
    assert not engine_accepts({**good, "method": "grd"})
    assert not engine_accepts({**good, "parameters": {"a": {"min": 0.0, "max": 1.0}}})


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(definition=definitions)
# found by the long profile: a control character in a parameter's name broke the line in two
@example(definition={"method": "grid", "parameters": {"\r": 0}, "program": "train.py"})
# and hyperband's max_iter without s: the engine's stop rule fails on the missing key
@example(
    definition={
        "method": "grid",
        "parameters": {"_": {"value": None}},
        "program": "train.py",
        "metric": {"name": "_", "goal": "minimize"},
        "early_terminate": {"type": "hyperband", "min_iter": 1, "max_iter": 0},
    }
)
def test_what_the_engine_accepts_is_created_and_the_rest_is_one_line(
    definition, tmp_path_factory, capsys
):
    folder = tmp_path_factory.mktemp("def")
    (folder / "train.py").write_text("import wandb\n")
    path = folder / "sweep.yaml"
    path.write_text(dump_yaml(definition, sort_keys=False))
    accepted = engine_accepts(definition)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # the program is found from here
        code = sweepkit_main(["sweep", "create", str(path), "--root", str(folder / "sweeps")])
    err = capsys.readouterr().err
    errors = [
        line
        for line in err.splitlines()
        if not line.startswith(("sweepkit: warning", "warning:", "created", "next:"))
    ]
    assert "Traceback" not in err
    if accepted:
        assert code == 0, f"the engine accepts it, the kit refused: {err}"
    else:
        assert code == 2, f"the engine refuses it, the kit created it: {definition}"
        assert len(errors) == 1, err
        assert not (folder / "sweeps").exists() or not any((folder / "sweeps").iterdir())
