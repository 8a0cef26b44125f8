"""Sweep definitions: every bad definition is one line naming the key and what is allowed; good ones
expand into the same command lines as wandb agent builds."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from sweep_fixtures import REPO, sweepkit

from sweepkit.jobs.sweeps.definition import (
    args_json,
    build_command,
    load_definition,
    planned_runs,
    validate,
)
from sweepkit.jobs.sweeps.definition.messages import distributions
from sweepkit.jobs.sweeps.definition.parameters import flat_params
from sweepkit.train.errors import UserError

GOOD_PARAMS = {"learning_rate": {"values": [0.1, 0.01]}}
CMD = ["${env}", "${interpreter}", "-m", "sweepkit.train", "${args}"]


def base(**changes: Any) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "method": "grid",
        "metric": {"name": "Validation Accuracy", "goal": "maximize"},
        "command": CMD,
        "parameters": GOOD_PARAMS,
    }
    definition.update(changes)
    return {k: v for k, v in definition.items() if v is not None}


# (definition, words the message must contain: the key, then what is allowed)
BAD = {
    "unknown method": (base(method="grd"), ["method", "'grd'", "grid, random, bayes"]),
    "custom method": (base(method="custom"), ["method", "custom", "grid, random, bayes"]),
    "bad goal": (
        base(metric={"name": "x", "goal": "up"}),
        ["metric.goal", "'up'", "minimize, maximize"],
    ),
    "metric without name": (base(metric={"goal": "maximize"}), ["metric", "name"]),
    "bayes without metric": (
        base(method="bayes", metric=None, parameters={"lr": {"min": 0.0, "max": 1.0}}),
        ["metric", "bayes", "goal"],
    ),
    "misspelt parameter key": (
        base(parameters={"lr": {"valuez": [1]}}),
        ["parameters.lr", "values", "distribution"],
    ),
    "unknown distribution": (
        base(method="random", parameters={"lr": {"distribution": "gaussian", "min": 0, "max": 1}}),
        ["parameters.lr", "log_uniform_values", "q_beta"],
    ),
    "parameter not a mapping": (
        base(parameters={"lr": [0.1, 0.01]}),
        ["parameters.lr", "must be a mapping", "values"],
    ),
    "min above max": (
        base(method="random", parameters={"lr": {"min": 2.0, "max": 1.0}}),
        ["parameters.lr", "min", "max"],
    ),
    "no parameters": (base(parameters=None), ["parameters", "missing"]),
    "grid over a continuous range": (
        base(parameters={"lr": {"min": 0.0, "max": 1.0}}),
        ["parameters.lr", "uniform", "grid allows"],
    ),
    "grid with probabilities": (
        base(parameters={"lr": {"values": [1, 2], "probabilities": [0.5, 0.5]}}),
        ["parameters.lr", "grid"],
    ),
    "negative run_cap": (base(run_cap=-1), ["run_cap", "-1", "above 0"]),
    "command not a list": (base(command="python -m sweepkit.train"), ["command", "array"]),
    "unknown command macro": (
        base(command=["${interpreter}", "${progam}"]),
        ["command", "${progam}", "${program}", "${args_json_file}"],
    ),
    "program macro without program": (base(command=None), ["program", "${program}"]),
    "early_terminate type": (
        base(early_terminate={"type": "median"}),
        ["early_terminate", "hyperband", "min_iter"],
    ),
    "early_terminate without metric": (
        base(metric=None, early_terminate={"type": "hyperband", "min_iter": 1}),
        ["metric", "early_terminate"],
    ),
    "hyperband bands impossible": (
        base(early_terminate={"type": "hyperband", "max_iter": 2, "s": 2, "eta": 3}),
        ["early_terminate", "Bands"],
    ),
    "cloud-only key": (base(job="entity/project/job:v0"), ["job", "W&B", "--backend wandb"]),
    # The schema refuses these as a whole; the message says what is wrong, not every form.
    "log_uniform_values from 0": (
        base(
            method="random",
            parameters={"lr": {"distribution": "log_uniform_values", "min": 0, "max": 1}},
        ),
        ["parameters.lr: log_uniform_values needs 0 < min < max (got min 0, max 1)", "uniform"],
    ),
    "q_log_uniform_values below 0": (
        base(
            method="random",
            parameters={
                "lr": {"distribution": "q_log_uniform_values", "min": -1, "max": 2, "q": 1}
            },
        ),
        ["parameters.lr: q_log_uniform_values needs 0 < min < max (got min -1, max 2)"],
    ),
    "empty values": (
        base(parameters={"lr": {"values": []}}),
        ["parameters.lr: values is empty", "value: v"],
    ),
    # Unknown keys: the closest valid key, then the allowed ones (as the trainer's config does).
    "parameter key typo": (
        base(parameters={"lr": {"valus": [0.1, 0.01]}}),
        ["parameters.lr.valus: not a parameter key; did you mean 'values'?", "min, max"],
    ),
    "nested parameter key typo": (
        base(parameters={"opt": {"parameters": {"lr": {"vaule": 0.1}}}}),
        ["parameters.opt.parameters.lr.vaule", "did you mean 'value'?"],
    ),
    "parameter key with no close match": (
        base(parameters={"lr": {"zzzz": [1]}}),
        ["parameters.lr.zzzz: not a parameter key; allowed keys: value, values"],
    ),
    # the engine cannot draw a parameter with an unknown key: W&B's engine refuses it too
    "parameter without a distribution": (
        base(parameters={"lr": {"values": [1, 2], "step": 1}}),
        ["parameters.lr.step: not a parameter key"],
    ),
    # a misspelt key that leaves hyperband without min_iter or max_iter: the engine cannot run it
    "early_terminate key typo": (
        base(early_terminate={"type": "hyperband", "min_itr": 3}),
        ["early_terminate.min_itr: not an early_terminate key; did you mean 'min_iter'?", "eta"],
    ),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_definition_is_one_line_naming_key_and_allowed(name: str) -> None:
    definition, words = BAD[name]
    with pytest.raises(UserError) as err:
        validate(definition, "bad.yaml")
    message = str(err.value)
    assert "\n" not in message, message
    assert message.startswith("bad.yaml: "), message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


@pytest.mark.parametrize("name", ["parameter key typo", "nested parameter key typo"])
def test_unknown_keys_are_named_briefly(name: str) -> None:
    with pytest.raises(UserError) as err:
        validate(BAD[name][0], "bad.yaml")
    assert len(str(err.value)) < 260 and "Additional properties" not in str(err.value)


@pytest.mark.system
def test_bad_definition_on_the_command_line_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(base(metric={"name": "Validation Accuracy", "goal": "upward"})))
    result = sweepkit("sweep", "create", str(bad), "--root", str(tmp_path / "sweeps"), cwd=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr.count("\n") == 1
        and "metric.goal" in result.stderr
        and "minimize, maximize" in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "sweeps").exists() or not any((tmp_path / "sweeps").iterdir()), (
        "no half-made sweep folder"
    )


@pytest.mark.system
def test_the_next_hint_is_shell_quoted_so_pasting_it_runs_only_sweepkit(tmp_path: Path) -> None:
    spec = tmp_path / "grid.yaml"
    spec.write_text(yaml.safe_dump(base()))
    root = tmp_path / "a b;touch PWNED;$(touch PWNED2)"
    result = sweepkit("sweep", "create", str(spec), "--root", str(root), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip()
    hint = next(line for line in result.stderr.splitlines() if line.startswith("next: "))
    pasted = hint.removeprefix("next: ").split("    (or: ")[0]
    # what a user's shell does with the pasted line, with sweepkit standing in as a printer
    shell = subprocess.run(
        ["bash", "-c", 'sweepkit() { printf "%s\\n" "$@"; }\n' + pasted],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert shell.stdout.splitlines() == ["agent", path]
    assert not any(tmp_path.glob("PWNED*")), "nothing hidden in the folder name ran"


@pytest.mark.parametrize(
    "text, words",
    [
        ("", ["empty or not a mapping"]),
        ("method: [grid\n", ["line", "YAML"]),
        ("- 1\n- 2\n", ["mapping"]),
    ],
)
def test_unreadable_files(tmp_path: Path, text: str, words: list[str]) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as err:
        load_definition(path)
    assert all(w in str(err.value) for w in words) and "\n" not in str(err.value)
    with pytest.raises(UserError, match="does not exist"):
        load_definition(tmp_path / "missing.yaml")


@pytest.mark.system
def test_folder_or_non_utf8_definition_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "sweeps"
    folder.mkdir()
    (folder / "grid.yaml").write_text(yaml.safe_dump(base()))
    with pytest.raises(
        UserError, match=r"sweeps is a folder; pass one of its YAML files, e\.g\. .*grid\.yaml"
    ):
        load_definition(folder)
    control = tmp_path / "control.yaml"
    control.write_bytes(b"method: grid\n\x07x: 1\n")
    with pytest.raises(UserError, match=r"control\.yaml line 2: control character #x0007"):
        load_definition(control)
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    result = sweepkit("sweep", "create", str(binary), "--root", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "b.yaml is not UTF-8 text" in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


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
    from sweeps import next_run

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
    from sweeps import next_runs

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
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

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
    from sweeps.config import schema_violations_from_proposed_config
    from sweeps.hyperband_stopping import hyperband_stop_runs
    from sweeps.run import next_run

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
