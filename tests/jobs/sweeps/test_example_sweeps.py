"""The kit's example sweeps, created by name from any folder (``sweepkit sweep create digits_grid``),
run the kit's trainer (``-m sweepkit.train --config digits``) even in a project folder that holds
the user's own ``train.py`` and ``jobs/`` (issue 26: before one import name, ``-m train`` ran the
user's file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sweepkit.train.config.shipped import SWEEPS

SWEEPKIT = str(Path(sys.executable).parent / "sweepkit")
# the user's modules of the kit's old names: importing either fails loudly
LOUD = 'raise SystemExit("the user\'s own {} was imported")\n'


def users_project(folder: Path) -> Path:
    (folder / "train.py").write_text(LOUD.format("train.py"))
    (folder / "jobs").mkdir()
    (folder / "jobs" / "__init__.py").write_text(LOUD.format("jobs/"))
    (folder / "jobs" / "cli.py").write_text(LOUD.format("jobs/cli.py"))
    return folder


def clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WANDB_", "SLURM_", "SWEEPKIT_", "PYTHONPATH"))
    }
    env["WANDB_SILENT"] = "true"
    return env


def sweepkit(*argv: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SWEEPKIT, *argv], cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.system
def test_the_example_sweep_by_name_runs_the_kits_trainer_beside_a_users_train_py(
    tmp_path: Path,
) -> None:
    project = users_project(tmp_path)
    # by name, from a folder without the kit's config/: the kit's own file, as it ships
    create = sweepkit("sweep", "create", "digits_grid", cwd=project)
    assert create.returncode == 0, create.stderr
    by_name = yaml.safe_load((project / create.stdout.strip() / "sweep.yaml").read_text())
    shipped = yaml.safe_load((SWEEPS / "digits_grid.yaml").read_text())
    assert by_name["command"] == shipped["command"]
    assert by_name["command"][2:6] == ["-m", "sweepkit.train", "--config", "digits"]
    assert (
        by_name["parameters"]
        == shipped["parameters"]
        == {
            "learning_rate": {"values": [0.003, 0.001]},
            "batch_size": {"values": [32, 64]},
            "num_epochs": {"value": 2},
        }
    )
    # one short run of the same command (a grid of 4 two-epoch runs takes minutes on 2 busy
    # cores): a copy of the definition with one point and 2 batches of one epoch
    short = {**shipped, "parameters": {**shipped["parameters"]}}
    short["parameters"].update(
        learning_rate={"value": 0.001},
        batch_size={"value": 64},
        num_epochs={"value": 1},
        limit_train_batches={"value": 2},
    )
    (project / "short.yaml").write_text(yaml.safe_dump(short))
    made = sweepkit("sweep", "create", "short.yaml", cwd=project)
    assert made.returncode == 0, made.stderr
    sweep = project / made.stdout.strip()
    agent = sweepkit("agent", "--count", "1", str(sweep), cwd=project)
    out = agent.stdout + agent.stderr
    assert agent.returncode == 0, out
    assert "the user's own" not in out
    status = sweepkit("status", str(sweep), "--json", cwd=project)
    (run,) = json.loads(status.stdout)["runs"]
    assert run["state"] == "finished" and run["metric_source"] == "wandb", run
    record = json.loads((sweep / "runs" / run["run_id"] / "run.json").read_text())
    config = record["config"]
    # the digits preset, found by name, under the run's parameters
    assert (config["dataset"], config["model_name"], config["image_size"]) == (
        "digits",
        "resnet18",
        32,
    )
    assert (config["learning_rate"], config["batch_size"], config["num_epochs"]) == (0.001, 64, 1)
    assert (project / "train.py").read_text() == LOUD.format("train.py")
