"""Good sweep definitions: the shipped ones are valid, every engine distribution validates and
samples, nested parameters flatten, the planned runs are what the engine enumerates, and commands
expand into the same command lines as wandb agent builds; `sweep create`'s next hint is quoted.
(Bad definitions: test_definition_errors.py; keys accepted with a warning: test_definition_warnings.py.)
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from sweep_definitions import base
from sweep_fixtures import REPO, sweepkit
from sweeps import next_run, next_runs
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

from sweepkit.jobs.sweeps.definition import (
    args_json,
    build_command,
    load_definition,
    planned_runs,
    validate,
)
from sweepkit.jobs.sweeps.definition.messages import distributions
from sweepkit.jobs.sweeps.definition.parameters import flat_params


@pytest.mark.system
def test_the_next_hint_is_shell_quoted_so_pasting_it_runs_only_sweepkit(tmp_path: Path) -> None:
    spec = tmp_path / "grid.yaml"
    spec.write_text(yaml.safe_dump(base()))
    root = tmp_path / "a b;touch PWNED;$(touch PWNED2)"
    result = sweepkit("sweep", "create", str(spec), "--root", str(root), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip()
    hint = next(line for line in result.stderr.splitlines() if line.startswith("next: "))
    pasted = hint.removeprefix("next: ").split("    (or on SLURM: ")[0]
    # what a user's shell does with the pasted line, with sweepkit standing in as a printer
    shell = subprocess.run(
        ["bash", "-c", 'sweepkit() { printf "%s\\n" "$@"; }\n' + pasted],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert shell.stdout.splitlines() == ["agent", path]
    assert not any(tmp_path.glob("PWNED*")), "nothing hidden in the folder name ran"


@pytest.mark.parametrize(
    "name",
    [
        "sweep_config.yaml",
        "sweeps/random.yaml",
        "sweeps/bayes_hyperband.yaml",
        "sweeps/digits_grid.yaml",
    ],
)
def test_shipped_definitions_are_valid(name: str) -> None:
    definition = load_definition(REPO / "config" / name)
    assert (
        definition["command"][:4] == ["${env}", "${interpreter}", "-m", "sweepkit.train"]
        and definition["command"][-1] == "${args}"
    )


def test_the_usual_scripts_sweep_is_reproduced_and_digits_grid_has_four_points() -> None:
    usual = load_definition(REPO / "config" / "sweep_config.yaml")
    assert usual["method"] == "grid" and usual["metric"] == {
        "name": "Validation Accuracy",
        "goal": "maximize",
    }
    assert usual["parameters"] == {"learning_rate": {"values": [0.1, 0.01]}}
    assert planned_runs(usual) == 2
    digits = load_definition(REPO / "config" / "sweeps" / "digits_grid.yaml")
    assert planned_runs(digits) == 4 and "digits" in digits["command"]
    bayes = load_definition(REPO / "config" / "sweeps" / "bayes_hyperband.yaml")
    assert bayes["method"] == "bayes" and bayes["early_terminate"]["type"] == "hyperband"


def test_every_engine_distribution_validates_and_samples() -> None:
    examples = {
        "categorical": {"distribution": "categorical", "values": [1, 2]},
        "categorical_w_probabilities": {"values": [1, 2], "probabilities": [0.3, 0.7]},
        "constant": {"value": 3},
        "int_uniform": {"distribution": "int_uniform", "min": 1, "max": 4},
        "uniform": {"distribution": "uniform", "min": 0.0, "max": 1.0},
        "normal": {"distribution": "normal", "mu": 0.0, "sigma": 1.0},
        "log_normal": {"distribution": "log_normal", "mu": 0.0, "sigma": 1.0},
        "q_normal": {"distribution": "q_normal", "mu": 0.0, "sigma": 1.0, "q": 0.5},
        "q_log_normal": {"distribution": "q_log_normal", "mu": 0.0, "sigma": 1.0, "q": 0.5},
        "log_uniform": {"distribution": "log_uniform", "min": -5.0, "max": 0.0},
        "log_uniform_values": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1.0},
        "inv_log_uniform": {"distribution": "inv_log_uniform", "min": 0.0, "max": 2.0},
        "inv_log_uniform_values": {
            "distribution": "inv_log_uniform_values",
            "min": 0.1,
            "max": 1.0,
        },
        "q_uniform": {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 0.25},
        "q_log_uniform": {"distribution": "q_log_uniform", "min": 0.0, "max": 3.0, "q": 1.0},
        "q_log_uniform_values": {
            "distribution": "q_log_uniform_values",
            "min": 1.0,
            "max": 100.0,
            "q": 1.0,
        },
        "beta": {"distribution": "beta", "a": 2.0, "b": 3.0},
        "q_beta": {"distribution": "q_beta", "a": 2.0, "b": 3.0, "q": 0.1},
    }
    assert set(examples) == set(distributions()), "a distribution of the engine is not covered"
    definition = base(method="random", parameters={name: spec for name, spec in examples.items()})
    validate(definition, "all.yaml")
    run = next_run(definition, [])
    assert run is not None and set(run.config) == set(examples)


def test_nested_parameters_flatten_with_dots() -> None:
    definition = base(
        parameters={
            "optimizer": {"parameters": {"lr": {"values": [1, 2]}, "beta": {"value": 0.9}}},
            "wandb.mode": {"value": "offline"},
        }
    )
    validate(definition, "nested.yaml")
    assert planned_runs(definition) == 2
    assert flat_params(
        {"optimizer": {"value": {"lr": 1, "beta": 0.9}}, "wandb.mode": {"value": "offline"}}
    ) == {
        "optimizer.lr": 1,
        "optimizer.beta": 0.9,
        "wandb.mode": "offline",
    }


def test_planned_grid_size_is_what_the_engine_enumerates() -> None:
    definition = base(
        parameters={
            "a": {"values": [1, 2, 3]},
            "b": {"min": 1, "max": 4},
            "c": {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 0.3},
            "d": {"value": 7},
            "e": {"parameters": {"x": {"values": [1, 2]}, "y": {"value": 0}}},
        }
    )
    validate(definition, "grid.yaml")
    enumerated = [r for r in next_runs(definition, [], n=1000) if r is not None]
    assert planned_runs(definition) == len(enumerated) == 3 * 4 * 4 * 2


def test_planned_runs() -> None:
    assert (
        planned_runs(
            base(
                parameters={
                    "a": {"values": [1, 2, 3]},
                    "b": {"min": 1, "max": 4},
                    "c": {"value": 1},
                }
            )
        )
        == 12
    )
    assert planned_runs(base(parameters={"a": {"values": [1, 2, 3]}}, run_cap=2)) == 2
    assert planned_runs(base(method="random", parameters={"a": {"min": 0.0, "max": 1.0}})) is None
    assert (
        planned_runs(base(method="random", run_cap=7, parameters={"a": {"min": 0.0, "max": 1.0}}))
        == 7
    )


def test_command_macros_expand_as_wandb_agent_does(tmp_path: Path) -> None:
    params = {"lr": {"value": 0.01}, "flag": {"value": False}, "wandb.mode": {"value": "offline"}}
    expected = create_sweep_command_args({"args": params})
    json_file = tmp_path / "config.json"

    def expand(*chunks: str, program: str | None = None) -> list[str]:
        definition = {"command": list(chunks), **({"program": program} if program else {})}
        return build_command(definition, params, json_file)

    assert expand("${env}", "${interpreter}", "${program}", "${args}", program="train.py") == [
        "/usr/bin/env",
        "python",  # from PATH, as under wandb agent
        "train.py",
        *expected["args"],
    ]
    for macro in (
        "args_no_hyphens",
        "args_no_equals",
        "args_no_boolean_flags",
        "args_append_hydra",
        "args_override_hydra",
        "args_json",
    ):
        assert expand("x", "${" + macro + "}") == ["x", *expected[macro]], macro
    assert expand("${args_json_file}") == [str(json_file)]
    assert json.loads(args_json(params)) == {
        "lr": 0.01,
        "flag": False,
        "wandb.mode": "offline",
    }
    # the default command, when a definition has none, is wandb's: ${env} ${interpreter} ${program} ${args}
    assert build_command({"program": "p.py"}, params, json_file)[2:] == [
        "p.py",
        *expected["args"],
    ]


def test_envvar_macro(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWEEPKIT_TEST_PRESET", "config/presets/digits.yaml")
    definition = {
        "command": [
            "${interpreter}",
            "-m",
            "sweepkit.train",
            "--config",
            "${envvar:SWEEPKIT_TEST_PRESET}",
            "${args}",
        ]
    }
    validate({**base(), **definition}, "env.yaml")
    argv = build_command(definition, {"lr": {"value": 1}}, tmp_path / "x.json")
    assert argv[4] == "config/presets/digits.yaml" and argv[-1] == "--lr=1"
