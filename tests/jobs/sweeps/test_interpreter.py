"""``${interpreter}`` is ``python`` from PATH, as under ``wandb agent``
(``sweep_vars["interpreter"] = ["python"]`` in ``wandb/wandb_agent.py``), and a python that cannot
run the kit's trainer is named in one line before any run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from sweep_fixtures import create, grid, sweepkit, views, write_definition, write_program

from sweepkit.jobs.sweeps.definition import build_command
from sweepkit.jobs.sweeps.program_check import interpreter_problem

VENV_BIN = Path(sys.executable).parent
TRAINER = {
    "method": "grid",
    "metric": {"name": "Validation Accuracy", "goal": "maximize"},
    "command": ["${env}", "${interpreter}", "-m", "sweepkit.train", "${args}"],
    "parameters": {"learning_rate": {"values": [0.1]}},
}


def shim(folder: Path, target: str, record: Path | None = None) -> str:
    """A folder holding a ``python`` that (optionally) notes it ran, then execs ``target``;
    returns a PATH with it first and the rest of this PATH after."""
    folder.mkdir()
    note = f'echo "$$ $*" >> {record}\n' if record else ""
    (folder / "python").write_text(f'#!/bin/sh\n{note}exec {target} "$@"\n')
    (folder / "python").chmod(0o755)
    return os.pathsep.join([str(folder), os.environ["PATH"]])


def test_interpreter_is_python_from_path_as_wandb_agent_builds_it() -> None:
    argv = build_command(TRAINER, {"learning_rate": {"value": 0.1}}, Path("a.json"))
    assert argv == ["/usr/bin/env", "python", "-m", "sweepkit.train", "--learning_rate=0.1"]


def test_no_python_on_path_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    problem = interpreter_problem(TRAINER, "sweep.yaml", path=str(tmp_path))
    assert problem is not None and "\n" not in problem
    assert "there is no python on PATH" in problem and f"this one is {VENV_BIN}" in problem
    assert interpreter_problem(TRAINER, "sweep.yaml", path=str(VENV_BIN)) is None
    no_interpreter = {**TRAINER, "command": ["/opt/x/bin/python", "-m", "sweepkit.train"]}
    assert interpreter_problem(no_interpreter, "sweep.yaml", path=str(tmp_path)) is None


@pytest.mark.system
def test_first_python_on_path_runs_the_program(tmp_path: Path) -> None:
    record = tmp_path / "shim-ran.txt"
    path = shim(tmp_path / "shim", sys.executable, record)
    program = write_program(tmp_path)
    definition = write_definition(tmp_path, grid({"lr": [0.5]}, program))
    sweep = create(tmp_path, definition)
    result = sweepkit("agent", sweep, cwd=tmp_path, env={"PATH": path})
    assert result.returncode == 0, result.stdout + result.stderr
    [run] = views(sweep, tmp_path)
    assert run.state == "finished"
    assert f"{program} --lr=0.5" in record.read_text()  # the shim's python ran the program


@pytest.mark.system
def test_a_python_without_the_kit_is_one_line_before_any_run(tmp_path: Path) -> None:
    # a python of its own (-I: no PYTHONPATH, no user site): the kit is not installed in it
    path = shim(tmp_path / "other", "/usr/bin/python3 -I")
    problem = interpreter_problem(TRAINER, "sweep.yaml", path=path)
    assert problem is not None and "\n" not in problem
    assert f"{tmp_path / 'other' / 'python'} cannot import sweepkit.train" in problem
    sweep = create(tmp_path, write_definition(tmp_path, TRAINER))  # create only warns
    result = sweepkit("agent", sweep, cwd=tmp_path, env={"PATH": path})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot import sweepkit.train" in result.stderr and result.stderr.count("\n") == 1
    assert "activate the environment" in result.stderr
    assert views(sweep, tmp_path) == []  # no run was claimed


@pytest.mark.system
def test_sweep_create_warns_about_the_python_on_path(tmp_path: Path) -> None:
    path = shim(tmp_path / "other", "/usr/bin/python3 -I")
    result = sweepkit(
        "sweep", "create", str(write_definition(tmp_path, TRAINER)), "--root", "sweeps",
        cwd=tmp_path, env={"PATH": path},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "warning: " in result.stderr and "cannot import sweepkit.train" in result.stderr
