"""Keys W&B's server accepts with a warning: the same warning, one line each, and the definition is
accepted (checked against W&B's sweeps engine); `sweep create` warns and creates, or refuses in
one line, and warns once when metric.goal is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sweep_definitions import base
from sweep_fixtures import sweepkit
from sweeps.config import schema_violations_from_proposed_config
from sweeps.hyperband_stopping import hyperband_stop_runs
from sweeps.run import next_run

from sweepkit.jobs.sweeps.definition import (
    validate,
)

# Unknown keys W&B's server accepts with a warning (its engine never reads them): the same
# warning, one line each, and the definition is accepted (TOLERATED_UNKNOWN_KEYS).
TOLERATED = {
    "args_no_hyphens at the top level (a Lightning+Hydra template)": (
        base(args_no_hyphens=True),
        ["args_no_hyphens: not a sweep key", "W&B accepts it with this warning"],
    ),
    "unknown top-level key": (
        base(parameterz={"a": {"values": [1]}}),
        ["parameterz: not a sweep key; did you mean 'parameters'?"],
    ),
    "top-level typo metrc beside metric": (
        base(metrc={"name": "x", "goal": "maximize"}),
        ["metrc: not a sweep key; did you mean 'metric'?", "allowed keys: "],
    ),
    "metric key typo": (
        base(metric={"name": "acc", "gaol": "maximize"}),
        ["metric.gaol: not a metric key; did you mean 'goal'?", "name, goal, target"],
    ),
    "early_terminate max_epochs beside min_iter": (
        base(early_terminate={"type": "hyperband", "min_iter": 2, "max_epochs": 10}),
        ["early_terminate.max_epochs: not an early_terminate key", "min_iter"],
    ),
}


@pytest.mark.parametrize("name", TOLERATED)
def test_keys_w_and_b_accepts_with_a_warning_are_accepted_with_it(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    definition, words = TOLERATED[name]
    assert validate(definition, "tolerated.yaml") is definition
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("sweepkit: warning: tolerated.yaml: "), lines
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"


def test_tolerated_keys_are_what_the_sweeps_schema_flags_and_its_engine_runs() -> None:
    """The rule checked against W&B's own code: each tolerated definition is a schema violation
    for the sweeps package (what W&B's server hands back as a warning), and the engine still
    proposes runs and builds hyperband's bands from it."""

    for definition, _ in TOLERATED.values():
        assert schema_violations_from_proposed_config(definition), definition
        assert next_run(definition, []) is not None
        if "early_terminate" in definition:
            assert hyperband_stop_runs([], definition) == []


@pytest.mark.system
def test_create_warns_and_creates_or_refuses_in_one_line(tmp_path: Path) -> None:
    ok = base(
        args_no_hyphens=True, early_terminate={"type": "hyperband", "min_iter": 2, "max_epochs": 10}
    )
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump(ok))
    made = sweepkit("sweep", "create", "ok.yaml", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / made.stdout.strip() / "sweep.yaml").exists()
    assert "args_no_hyphens: not a sweep key" in made.stderr
    assert "early_terminate.max_epochs: not an early_terminate key" in made.stderr

    bad = base(parameters={"lr": {"values": [1, 2], "step": 1}})
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    refused = sweepkit("sweep", "create", "bad.yaml", cwd=tmp_path)
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert "bad.yaml: parameters.lr.step: not a parameter key" in line
    assert len(list((tmp_path / "sweeps").iterdir())) == 1, "no sweep folder for the refused one"


@pytest.mark.system
def test_create_warns_once_when_metric_goal_is_missing(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(base(metric={"name": "Validation Loss"})))
    made = sweepkit("sweep", "create", "s.yaml", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    warnings = [line for line in made.stderr.splitlines() if "metric.goal" in line]
    assert warnings == [
        "sweepkit: warning: s.yaml: metric.goal is not set, so W&B's default minimize applies "
        "and the lowest 'Validation Loss' ranks best; set metric.goal: maximize (or minimize) to say which"
    ]
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(base()))
    assert "metric.goal" not in sweepkit("sweep", "create", "g.yaml", cwd=tmp_path).stderr
