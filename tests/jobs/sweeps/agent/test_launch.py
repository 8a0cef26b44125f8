"""A run's command line and environment, as wandb agent hands them to a program (in process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sweepkit.jobs.sweeps.agent.launch import FLUSH_INTERVAL_ENV, program_argv_env

DEFINITION = {
    "program": "train.py",
    "command": ["${env}", "${interpreter}", "${program}", "${args}", "${args_json_file}"],
}
PARAMS = {"lr": {"value": 0.25}, "opt": {"value": {"name": "adam"}}}


def test_paths_are_absolute_and_the_parameters_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_SERVICE", "a parent's wandb service")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv(FLUSH_INTERVAL_ENV, raising=False)
    run_dir = Path("sweeps/s1/runs/r1")  # relative, as --root may be
    argv, env = program_argv_env(DEFINITION, "s1", Path("sweeps/s1"), "r1", run_dir, 2, PARAMS)
    absolute = tmp_path / run_dir
    param_path = absolute / "wandb" / "sweep-s1" / "config-r1.yaml"
    assert argv[:3] == ["/usr/bin/env", "python", "train.py"]  # python from PATH, as wandb agent
    assert argv[3:5] == ["--lr=0.25", "--opt={'name': 'adam'}"]
    assert json.loads(Path(argv[5]).read_text()) == {"lr": 0.25, "opt": {"name": "adam"}}
    assert env["WANDB_SWEEP_PARAM_PATH"] == str(param_path)
    assert yaml.safe_load(param_path.read_text()) == {"wandb_version": 1, **PARAMS}
    assert env["WANDB_DIR"] == env["SWEEPKIT_RUN_DIR"] == str(absolute)
    assert env["SWEEPKIT_SWEEP_DIR"] == str(tmp_path / "sweeps" / "s1")
    assert (env["WANDB_SWEEP_ID"], env["WANDB_RUN_ID"], env["SWEEPKIT_ATTEMPT"]) == (
        "s1",
        "r1",
        "2",
    )
    assert env["WANDB_MODE"] == "offline" and env[FLUSH_INTERVAL_ENV] == "1"
    assert "WANDB_SERVICE" not in env, "the program starts its own wandb service"


def test_the_user_s_wandb_mode_and_flush_interval_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv(FLUSH_INTERVAL_ENV, "5")
    plain = {"program": "train.py"}  # the default command: no parameter JSON file is written
    argv, env = program_argv_env(plain, "s1", tmp_path, "r1", tmp_path / "r1", 1, PARAMS)
    assert env["WANDB_MODE"] == "disabled" and env[FLUSH_INTERVAL_ENV] == "5"
    assert argv[-2:] == ["--lr=0.25", "--opt={'name': 'adam'}"]
    assert not (tmp_path / "r1" / "wandb" / "sweep-s1" / "config-r1.json").exists()
