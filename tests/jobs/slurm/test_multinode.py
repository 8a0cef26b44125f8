"""A run over several nodes through real sbatch and srun: the tests' one-node SLURM with
``--nodes=1 --ntasks=2`` stands in for two nodes (the c10d rendezvous goes over loopback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from slurm_fixture import BASE, Slurm, cluster, make_sweep, run_infos, sweepkit, wait_for

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


def test_one_agent_claims_the_run_and_srun_starts_its_ranks_on_every_node(
    slurm: Slurm, tmp_path: Path
) -> None:
    ref = sweep(tmp_path, ["-m", "sweepkit.train.launch", "--nproc-per-node=1"])
    profiles = cluster(tmp_path, multi={**BASE, "nodes": 2})
    dry = sweepkit("submit", ref, "--profile", "multi", "--cluster-config", profiles, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    script = dry.stdout.rsplit("# sbatch command:", 1)[0]
    assert "#SBATCH --nodes=2\n#SBATCH --ntasks=2\n" in script
    path = tmp_path / "multi.sbatch"
    path.write_text(script)
    (Path(ref) / "slurm" / "logs").mkdir(parents=True)
    # the one node stands in for two: both tasks of the job on it
    job = slurm.run("sbatch", "--parsable", "--nodes=1", str(path)).stdout.strip().split(";")[0]
    slurm.wait_done(job, timeout=400)

    infos = run_infos(ref)
    assert len(infos) == 1, infos  # one claimed run, one record
    info = infos[0]
    assert info["state"] == "finished" and info["world_size"] == 2, info
    output = (Path(ref) / "runs" / str(info["run_id"]) / "output.log").read_text()
    assert "sweepkit launch: srun --ntasks=2" in output and "--rdzv-backend=c10d" in output
    assert "2 data-parallel processes of batch 16" in output
    assert output.count("finished: Validation Accuracy") == 1  # rank 0 alone reports
    log = next((Path(ref) / "slurm" / "logs").glob("*.out")).read_text()
    assert log.count("launch:   ") == 1  # one agent for the task


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


def test_the_lead_signal_reaches_every_rank_the_task_requeues_and_the_run_resumes(
    slurm: Slurm, tmp_path: Path
) -> None:
    ref = make_sweep(
        tmp_path,
        {
            "program": "train",
            "command": [
                "${env}",
                "${interpreter}",
                "-m",
                "sweepkit.train.launch",
                "--nproc-per-node=1",
                *TRAINER[:4],
                "--model_name=resnet18",
                "--num_epochs=2",
                "--sample_ratio=0.25",
                "--stem=cifar",
                "--image_size=16",
                "--device=cpu",
                "--deterministic=true",
                "${args}",
            ],
            "method": "grid",
            "metric": {"name": "Validation Accuracy", "goal": "maximize"},
            "parameters": {"learning_rate": {"values": [0.001]}},
        },
    )
    profiles = cluster(tmp_path, multi={**BASE, "nodes": 2})
    dry = sweepkit("submit", ref, "--profile", "multi", "--cluster-config", profiles, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    path = tmp_path / "multi.sbatch"
    path.write_text(dry.stdout.rsplit("# sbatch command:", 1)[0])
    (Path(ref) / "slurm" / "logs").mkdir(parents=True)
    job = slurm.run("sbatch", "--parsable", "--nodes=1", str(path)).stdout.strip().split(";")[0]

    def training() -> bool:
        return any("training resnet18" in p.read_text() for p in Path(ref).glob("runs/*/train.log"))

    wait_for(training, 300, "the run's ranks to train")
    # what SLURM sends signal_lead_s before the time limit: USR1 to the batch shell
    slurm.run("scancel", "--batch", "--signal=USR1", job)
    slurm.wait_done(job, timeout=400)

    infos = run_infos(ref)
    assert len(infos) == 1
    info = infos[0]
    assert info["state"] == "finished" and info["attempt"] == 2, info
    assert info["world_size"] == 2 and info["resumed_from"] is not None
    log = next((Path(ref) / "slurm" / "logs").glob("*.out")).read_text()
    assert "SIGUSR1" in log and "requeueing job" in log and "restart 1" in log, log
