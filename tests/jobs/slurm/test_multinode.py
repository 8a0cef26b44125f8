"""What `submit` and the launcher check before a run over several nodes. The runs themselves go
over two real nodes (their own host names and addresses): tests/jobs/slurm/test_nodes.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from slurm_fixture import BASE, Slurm, cluster, make_sweep, sweepkit

pytestmark = pytest.mark.slurm

TRAINER = [
    "-m",
    "sweepkit.train",
    "--config",
    "config/presets/digits.yaml",
    "--model_name=resnet18",
    "--num_epochs=1",
    "--limit_train_batches=3",
    "--sample_ratio=0.25",
    "--device=cpu",
    "${args}",
]


def sweep(tmp_path: Path, launcher: list[str]) -> str:
    return make_sweep(
        tmp_path,
        {
            "program": "train",
            "command": ["${env}", "${interpreter}", *launcher, *TRAINER],
            "method": "grid",
            "metric": {"name": "Validation Accuracy", "goal": "maximize"},
            "parameters": {"learning_rate": {"values": [0.01]}},
        },
    )


def test_nodes_without_the_launcher_is_one_line_and_nothing_is_submitted(
    slurm: Slurm, tmp_path: Path
) -> None:
    ref = sweep(tmp_path, [])
    profiles = cluster(tmp_path, multi={**BASE, "nodes": 2})
    result = sweepkit(
        "submit", ref, "--profile", "multi", "--cluster-config", profiles, env=slurm.env()
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "key 'nodes': 2 nodes per task, but the command of" in result.stderr
    assert not (Path(ref) / "slurm").exists()


def test_a_multi_gpu_run_with_a_single_process_command_is_warned_about(tmp_path: Path) -> None:
    ref = sweep(tmp_path, [])
    profiles = cluster(tmp_path, four={**BASE, "gpus": 4})
    result = sweepkit("submit", ref, "--profile", "four", "--cluster-config", profiles, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "warning: profile 'four' gives each run 4 GPUs, but the command" in result.stderr
    launched = sweep(tmp_path / "launched", ["-m", "sweepkit.train.launch"])
    quiet = sweepkit(
        "submit", launched, "--profile", "four", "--cluster-config", profiles, "--dry-run"
    )
    assert quiet.returncode == 0 and "warning" not in quiet.stderr, quiet.stderr


def test_launcher_arguments_are_checked_in_one_line() -> None:
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweepkit.train.launch",
            "--nproc-per-node=0",
            "-m",
            "sweepkit.train",
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "--nproc-per-node '0' is not a number of processes" in bad.stderr
