"""sweepkit sweep create checks the sweep's program before any run: the trainer's own parsing and
validation of the argv agents would build, the metric against what the trainer logs, and the files
the command names. Each mistake here would otherwise fail (or waste) every run of the array."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from docs_blocks import blocks
from sweep_fixtures import REPO, sweepkit

DIGITS_GRID = yaml.safe_load((REPO / "config" / "sweeps" / "digits_grid.yaml").read_text())


def create(tmp_path: Path, definition: dict[str, Any]) -> Any:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    # from the checkout, like the README: the command's preset path is relative to it
    return sweepkit("sweep", "create", str(path), "--root", str(tmp_path / "sweeps"), cwd=REPO)


def variant(**changes: Any) -> dict[str, Any]:
    definition = yaml.safe_load(yaml.safe_dump(DIGITS_GRID))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        holder = definition
        for key in parents:
            holder = holder[key]
        holder[last] = value
    return definition


def command(*extra: str) -> list[str]:
    preset = ["--config", "config/presets/digits.yaml"]
    return ["${env}", "${interpreter}", "-m", "sweepkit.train", *preset, *extra]


@pytest.mark.system  # starts processes
@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        (
            variant(parameters__learnig_rate={"values": [0.1]}),
            "parameters.learnig_rate: unknown config key 'learnig_rate' in agent arguments; "
            "did you mean 'learning_rate'?",
        ),
        (variant(parameters__batch_size={"values": [32, "big"]}), "parameters.batch_size:"),
        (
            variant(parameters__learning_rate={"min": -1.0, "max": 0.1}),
            "parameters.learning_rate:",
        ),
        (
            variant(
                command=[
                    "${env}",
                    "${interpreter}",
                    "-m",
                    "sweepkit.train",
                    "--config",
                    "config/presets/digts.yaml",
                    "${args}",
                ]
            ),
            f"command --config config/presets/digts.yaml not found from {REPO}",
        ),
        (
            variant(metric={"name": "Val Accuracy", "goal": "maximize"}),
            "metric.name 'Val Accuracy' is not a metric the trainer logs; "
            "did you mean 'Validation Accuracy'?",
        ),
        (
            variant(
                metric={"name": "Test Accuracy", "goal": "maximize"},
                early_terminate={"type": "hyperband", "min_iter": 1},
            ),
            "is logged only when a run ends, but hyperband",
        ),
        (  # nested values are checked too
            variant(parameters__checkpoint={"parameters": {"keep": {"values": [1, 0]}}}),
            "parameters.checkpoint:",
        ),
        (  # a fault of the command itself is the command's, not the first parameter's
            variant(command=command("--set", "num_epoch=1", "${args}")),
            "command: unknown config key 'num_epoch'",
        ),
        (  # without ${args} the values arrive through wandb.config: checked that way
            variant(command=command(), parameters__learnig_rate={"values": [0.1]}),
            "parameters.learnig_rate:",
        ),
        (  # ... and never arrive when W&B is disabled
            variant(command=command("--set", "wandb.mode=disabled")),
            "no ${args} and wandb.mode is disabled",
        ),
    ],
    ids=[
        "key-typo",
        "bad-value",
        "out-of-range",
        "preset-typo",
        "metric-typo",
        "final-metric",
        "nested",
        "command",
        "no-args",
        "no-args-disabled",
    ],
)
def test_a_mistake_that_would_fail_every_run_is_refused_at_create(
    tmp_path: Path, definition: dict[str, Any], expected: str
) -> None:
    result = create(tmp_path, definition)
    assert result.returncode == 2, result.stdout + result.stderr
    assert expected in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "sweeps").exists() or not any((tmp_path / "sweeps").iterdir())


@pytest.mark.system  # starts processes
def test_a_module_that_is_not_importable_here_is_a_warning(tmp_path: Path) -> None:
    command = ["${env}", "${interpreter}", "-m", "trian", "${args}"]
    result = create(tmp_path, variant(command=command))
    assert result.returncode == 0, result.stderr  # it may exist only in the agents' image
    assert "warning: the command runs -m trian, which is not importable here" in result.stderr


@pytest.mark.system  # starts processes
def test_the_shipped_definitions_pass(tmp_path: Path) -> None:
    for path in [
        REPO / "config" / "sweep_config.yaml",
        *(REPO / "config" / "sweeps").glob("*.yaml"),
    ]:
        result = create(tmp_path, yaml.safe_load(path.read_text()))
        assert result.returncode == 0 and "warning" not in result.stderr, (path, result.stderr)


@pytest.mark.system  # starts processes
def test_the_readmes_example_is_what_create_prints(tmp_path: Path) -> None:
    (shown,) = [
        line
        for b in blocks(lang="text")
        for line in b.commands
        if "parameters.learnig_rate" in line
    ]
    definition = variant()
    definition["parameters"]["learnig_rate"] = definition["parameters"].pop("learning_rate")
    result = create(tmp_path, definition)
    assert result.stderr.strip().replace(str(tmp_path / "sweep.yaml"), "sweep.yaml") == shown


@pytest.mark.system  # starts processes
def test_values_the_trainer_takes_in_the_sweeps_context_are_accepted(tmp_path: Path) -> None:
    # refused with the preset's dataset (digits has 10 classes), fine with the sweep's own
    cross = variant(
        parameters__dataset={"value": "synthetic"}, parameters__num_classes={"values": [100, 1000]}
    )
    result = create(tmp_path, cross)
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr
    # a distribution whose tails (not its median) the trainer refuses: a warning, not a refusal
    tails = variant(
        method="random",
        parameters__learning_rate={"distribution": "normal", "mu": 0.01, "sigma": 0.005},
    )
    result = create(tmp_path, tails)
    assert result.returncode == 0, result.stderr
    assert "warning: " in result.stderr and "parameters.learning_rate: some values" in result.stderr


@pytest.mark.system  # starts processes
def test_a_config_path_from_an_environment_variable_is_expanded(tmp_path: Path) -> None:
    definition = variant(command=command()[:-1] + ["${envvar:PRESET}", "${args}"])
    env = {"PRESET": "config/presets/digits.yaml"}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    ok = sweepkit("sweep", "create", str(path), "--root", str(tmp_path / "s"), cwd=REPO, env=env)
    assert ok.returncode == 0, ok.stderr
    env = {"PRESET": "config/presets/nope.yaml"}
    bad = sweepkit("sweep", "create", str(path), "--root", str(tmp_path / "s"), cwd=REPO, env=env)
    assert bad.returncode == 2 and "config/presets/nope.yaml not found" in bad.stderr
