"""Packing through the tests' real one-node SLURM, whose node has two fake GPUs (gres.conf names
/dev/tty0 and /dev/tty1), so that SLURM itself sets CUDA_VISIBLE_DEVICES and SLURM_JOB_GPUS; and
through the local launcher, which hands out the GPUs its own CUDA_VISIBLE_DEVICES lists."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from slurm_fixture import (
    BASE,
    Slurm,
    cluster,
    fast_sweep,
    run_infos,
    submitted_job,
    sweepkit,
    wait_for,
)

PACKED = {**BASE, "gpus": 2, "agents_per_task": 2, "cpus_per_task": 2}


@pytest.mark.slurm
def test_two_agents_per_task_each_get_one_gpu_of_the_allocation_and_half_the_cpus(
    slurm: Slurm, tmp_path: Path
) -> None:
    ref = fast_sweep(tmp_path, points=4, steps=3, step_s=0.2)
    result = sweepkit(
        "submit",
        ref,
        "--profile",
        "packed",
        "--cluster-config",
        cluster(tmp_path, packed=PACKED),
        env=slurm.env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    job = submitted_job(ref)
    assert job["array"] == "1-2%2"  # 4 runs, 2 agents per task
    script = Path(ref, "slurm", f"{job['job_id']}.sbatch").read_text()
    assert "#SBATCH --gres=gpu:2" in script and "AGENTS=2" in script

    def all_finished() -> bool:
        infos = run_infos(ref)
        return len(infos) == 4 and all(i["state"] == "finished" for i in infos)

    wait_for(all_finished, 240, "four finished runs")
    by_task: dict[str, list[dict]] = {}
    for info in run_infos(ref):
        by_task.setdefault(str(info["slurm"]["job_id"]), []).append(info["env"])  # type: ignore[index]
    assert len(by_task) == 2, by_task
    for envs in by_task.values():
        # SLURM handed the task both GPUs; each agent's run sees exactly one of them
        assert sorted(e["CUDA_VISIBLE_DEVICES"] for e in envs) == ["0", "1"], envs
        assert {e["SLURM_JOB_GPUS"] for e in envs} == {"0,1"}
        assert {e["OMP_NUM_THREADS"] for e in envs} == {"1"}  # 2 CPUs, 2 agents
        assert sorted(e["SWEEPKIT_AGENT_SLOT"] for e in envs) == ["0", "1"]


@pytest.mark.slurm
def test_more_agents_than_gpus_is_one_line_and_nothing_is_submitted(
    slurm: Slurm, tmp_path: Path
) -> None:
    ref = fast_sweep(tmp_path, points=2, steps=1, step_s=0.1)
    bad = {**PACKED, "agents_per_task": 3}
    result = sweepkit(
        "submit",
        ref,
        "--profile",
        "packed",
        "--cluster-config",
        cluster(tmp_path, packed=bad),
        env=slurm.env(),
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "key 'agents_per_task': 3 agents cannot share 2 GPU(s) evenly" in result.stderr
    assert not (Path(ref) / "slurm" / "submissions.jsonl").exists()


@pytest.mark.system  # starts processes
def test_the_local_launcher_hands_each_task_its_own_gpus_and_each_agent_one(
    tmp_path: Path,
) -> None:
    ref = fast_sweep(tmp_path, points=4, steps=3, step_s=0.2)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "3,5,6,7"}  # four GPUs, two tasks at once
    result = sweepkit(
        "submit",
        ref,
        "--profile",
        "packed",
        "--cluster-config",
        cluster(tmp_path, packed=PACKED),
        "--launcher",
        "local",
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    infos = run_infos(ref)
    assert len(infos) == 4 and all(i["state"] == "finished" for i in infos), infos
    by_task: dict[str, list[dict]] = {}
    for info in infos:
        by_task.setdefault(str(info["slurm"]["job_id"]), []).append(info["env"])  # type: ignore[index]
    assert len(by_task) == 2
    seen = []
    for envs in by_task.values():
        assert len({e["SLURM_JOB_GPUS"] for e in envs}) == 1  # the task's pair
        pair = envs[0]["SLURM_JOB_GPUS"].split(",")
        assert sorted(e["CUDA_VISIBLE_DEVICES"] for e in envs) == sorted(pair)
        assert {e["OMP_NUM_THREADS"] for e in envs} == {"1"}
        seen += pair
    # both tasks start at once (concurrency 2), so they hold different GPUs
    assert sorted(seen) == ["3", "5", "6", "7"]
