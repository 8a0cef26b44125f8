"""Bad sweep definitions: every one is one line naming the key and what is allowed, in Python and on
the command line (exit 2, no half-made sweep folder); unreadable, folder and non-UTF-8 files too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sweep_definitions import base
from sweep_fixtures import sweepkit

from sweepkit.jobs.sweeps.definition import (
    load_definition,
    validate,
)
from sweepkit.train.errors import UserError

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
