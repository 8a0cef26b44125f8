"""Sweeps through a real one-node SLURM: sbatch, squeue, scontrol and scancel, nothing mocked.

The session fixture starts munged, slurmctld and slurmd (tests/slurm/slurm-up.sh); these tests
skip only when that cannot start, with the reason. The node has the machine's CPUs; each task
asks for one, so two run at once on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from slurm_fixture import (
    BASE,
    FAKE_APPTAINER,
    REPO,
    Slurm,
    cluster,
    events,
    fast_sweep,
    iso_ts,
    make_sweep,
    max_overlap,
    run_infos,
    submitted_job,
    sweepkit,
    wait_for,
)

from sweepkit.jobs.sweeps.store import open_sweep

pytestmark = pytest.mark.slurm


def submit(slurm: Slurm, ref: str, *argv: str) -> str:
    """`sweepkit submit` for real; returns the array job id."""
    result = sweepkit("submit", ref, *argv, env=slurm.env())
    assert result.returncode == 0, result.stdout + result.stderr
    job = submitted_job(ref)
    assert result.stdout.startswith(f"Submitted array job {job['job_id']} ")
    assert f"squeue -j {job['job_id']}" in result.stdout
    return str(job["job_id"])


def tasks(slurm: Slurm, job_id: str) -> dict[str, dict[str, str]]:
    """`scontrol -o show job` of every task of an array, by task id."""
    out = slurm.run("scontrol", "-o", "show", "job", job_id).stdout
    found = {}
    for line in out.splitlines():
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        found[fields["ArrayTaskId"]] = fields
    return found


def seconds(fields: dict[str, str]) -> float:
    return (
        datetime.fromisoformat(fields["EndTime"]) - datetime.fromisoformat(fields["StartTime"])
    ).total_seconds()


def shellcheck(path: Path) -> None:
    result = subprocess.run(["shellcheck", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.slow
def test_digits_grid_runs_one_run_per_task_two_at_a_time(slurm: Slurm, tmp_path: Path) -> None:
    # The real trainer on digits, kept tiny: ResNet-18, one epoch of three steps.
    ref = make_sweep(
        tmp_path,
        {
            "program": "train",
            "command": [
                "${env}",
                "${interpreter}",
                "-m",
                "sweepkit.train",
                "--config",
                "config/presets/digits.yaml",
                "--model_name=resnet18",
                "--num_epochs=1",
                "--limit_train_batches=3",
                "${args}",
            ],
            "method": "grid",
            "metric": {"name": "Validation Accuracy", "goal": "maximize"},
            "parameters": {
                "learning_rate": {"values": [0.01, 0.001]},
                "batch_size": {"values": [32, 64]},
            },
        },
    )
    job = submit(
        slurm,
        ref,
        "--profile",
        "local-test",
        "--cluster-config",
        str(REPO / "config" / "cluster.yaml"),
    )
    assert submitted_job(ref)["array"] == "1-4%2"
    slurm.wait_done(job, timeout=300)

    by_task = tasks(slurm, job)
    assert sorted(by_task) == ["1", "2", "3", "4"]
    assert all(t["JobState"] == "COMPLETED" and t["ExitCode"] == "0:0" for t in by_task.values()), (
        by_task
    )
    runs = open_sweep(ref).runs()
    assert sorted(r.state for r in runs) == ["finished"] * 4
    assert sorted(r.slurm["array_task_id"] for r in runs) == ["1", "2", "3", "4"]
    assert {r.slurm["array_job_id"] for r in runs} == {job}
    assert len({r.slurm["job_id"] for r in runs}) == 4
    assert sorted((r.params["learning_rate"], r.params["batch_size"]) for r in runs) == [
        (0.001, 32),
        (0.001, 64),
        (0.01, 32),
        (0.01, 64),
    ]
    infos = run_infos(ref)
    spans = [(iso_ts(i["timings"]["started_at"]), iso_ts(i["timings"]["ended_at"])) for i in infos]
    assert max_overlap(spans) == 2
    assert all(i["config"]["model_name"] == "resnet18" for i in infos)
    script = Path(ref) / "slurm" / f"{job}.sbatch"
    shellcheck(script)
    assert "#SBATCH --array=1-4%2" in script.read_text()


def test_tasks_beyond_the_sweep_exit_zero_within_seconds(slurm: Slurm, tmp_path: Path) -> None:
    # `submit` trims an --array wider than the runs left (test_submit.py); tasks beyond the sweep
    # still happen, as here: the kept script sbatch'ed again by hand, with more tasks, while the
    # first array's two runs go on (or a second submit racing the first).
    ref = fast_sweep(tmp_path, points=2, steps=8, step_s=0.25)
    first = submit(
        slurm,
        ref,
        "--profile",
        "t",
        "--cluster-config",
        cluster(tmp_path, t=BASE),
        "--array",
        "1-2",
    )
    script = Path(ref) / "slurm" / f"{first}.sbatch"
    again = slurm.run("sbatch", "--parsable", "--array=3-6", str(script)).stdout.strip()
    again = again.split(";")[0]
    for job in (first, again):
        slurm.wait_done(job, timeout=120)
    by_task = {**tasks(slurm, first), **tasks(slurm, again)}
    assert sorted(by_task) == [str(n) for n in range(1, 7)]
    logs = {
        n: (
            Path(ref)
            / "slurm"
            / "logs"
            / f"sweepkit-{Path(ref).name}-{first if int(n) <= 2 else again}_{n}.out"
        ).read_text()
        for n in by_task
    }
    ran = [n for n, text in logs.items() if "starting run" in text]
    surplus = [n for n in by_task if n not in ran]
    assert len(ran) == 2 and len(surplus) == 4, logs
    for n in by_task:
        assert by_task[n]["JobState"] == "COMPLETED" and by_task[n]["ExitCode"] == "0:0", by_task[n]
    for n in surplus:
        assert seconds(by_task[n]) <= 10, by_task[n]
        assert "agent exited with status 0" in logs[n]
    assert sorted(i["state"] for i in run_infos(ref)) == ["finished", "finished"]


def test_usr1_checkpoints_requeues_and_the_run_finishes_from_its_checkpoint(
    slurm: Slurm, tmp_path: Path
) -> None:
    # SIGUSR1 to the batch shell, as --signal=B:USR1@lead delivers it, sent now with scancel.
    ref = fast_sweep(tmp_path, points=1, steps=16, step_s=0.5)
    job = submit(slurm, ref, "--profile", "t", "--cluster-config", cluster(tmp_path, t=BASE))
    wait_for(
        lambda: any(i.get("step", 0) >= 2 for i in run_infos(ref)), 60, "the run to take two steps"
    )
    slurm.run("scancel", "--signal=USR1", "--batch", f"{job}_1")
    slurm.wait_done(job, timeout=120)

    seen = events(ref)
    kinds = [e["event"] for e in seen]
    assert kinds == ["start", "preempted", "start", "finished"], seen
    assert seen[1]["signal"] == "SIGUSR1" and seen[1]["step"] >= 2
    assert seen[2]["restart_count"] == "1" and seen[2]["step"] == seen[1]["step"]
    assert seen[0]["job_id"] == seen[2]["job_id"]  # the same task, requeued
    (task,) = tasks(slurm, job).values()
    assert task["Restarts"] == "1" and task["JobState"] == "COMPLETED", task
    (run,) = open_sweep(ref).runs()
    assert run.state == "finished" and run.attempts == 2
    log = (Path(ref) / "slurm" / "logs" / f"sweepkit-{Path(ref).name}-{job}_1.out").read_text()
    assert "SIGUSR1" in log and "requeueing job" in log and "restart 1" in log


@pytest.mark.slow
def test_time_limit_signal_requeue_then_scancel_and_the_next_agent_resumes(
    slurm: Slurm, tmp_path: Path
) -> None:
    # --time=1 with --signal=B:USR1@50: SLURM itself signals the task within its first 30 s (it
    # looks every 30 s for jobs within lead + 30 s of their end). The run (45 s of work)
    # checkpoints, the task is requeued and resumes; then scancel stops that attempt (SIGTERM:
    # checkpoint, no requeue); a second submission's agent finishes the run.
    ref = fast_sweep(tmp_path, points=1, steps=90, step_s=0.5)
    short = {**BASE, "time": "1", "signal_lead_s": 50}
    job = submit(
        slurm, ref, "--profile", "short", "--cluster-config", cluster(tmp_path, short=short)
    )
    rendered = (Path(ref) / "slurm" / f"{job}.sbatch").read_text()
    assert "#SBATCH --time=1\n" in rendered and "#SBATCH --signal=B:USR1@50\n" in rendered

    def resumed() -> list[dict[str, object]]:
        return [e for e in events(ref) if e["event"] == "start" and e["restart_count"] == "1"]

    wait_for(resumed, 120, "the requeued task to resume the run")
    first = [e for e in events(ref) if e["event"] == "preempted"]
    assert first and first[0]["signal"] == "SIGUSR1" and first[0]["restart_count"] is None
    assert resumed()[0]["step"] == first[0]["step"] > 0
    wait_for(
        lambda: any(i.get("step", 0) > first[0]["step"] for i in run_infos(ref)), 30, "progress"
    )
    slurm.run("scancel", job)
    slurm.wait_done(job, timeout=60)

    (task,) = tasks(slurm, job).values()
    assert task["JobState"] == "CANCELLED" and task["Restarts"] == "1", task
    stopped = [e for e in events(ref) if e["event"] == "preempted"][-1]
    assert stopped["signal"] == "SIGTERM" and stopped["restart_count"] == "1"
    (run,) = open_sweep(ref).runs()
    assert run.state == "preempted" and run.queued

    # The next agent: --array auto counts the preempted run as one still to make.
    job2 = submit(slurm, ref, "--profile", "t", "--cluster-config", cluster(tmp_path, t=BASE))
    assert submitted_job(ref)["array"] == "1-1%1"
    slurm.wait_done(job2, timeout=120)
    last = events(ref)[-2:]
    assert [e["event"] for e in last] == ["start", "finished"]
    assert last[0]["step"] == stopped["step"] and last[0]["array_job_id"] == job2
    (run,) = open_sweep(ref).runs()
    assert run.state == "finished" and run.attempts == 3
    records = [
        json.loads(line)
        for line in (Path(ref) / "slurm" / "submissions.jsonl").read_text().splitlines()
    ]
    assert [r["job_id"] for r in records] == [job, job2]


def test_wandb_key_is_read_by_the_job_and_never_stored_by_slurm(
    slurm: Slurm, tmp_path: Path
) -> None:
    # A W&B sweep in a container, with a stand-in for apptainer (none on this machine) that
    # records the key's length. The submitting shell has a WANDB_API_KEY of its own: sbatch must
    # not get it, so SLURM never stores a key with the job's environment.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apptainer").write_text(FAKE_APPTAINER)
    (bin_dir / "apptainer").chmod(0o755)
    image = tmp_path / "sweepkit.sif"
    image.write_bytes(b"image")
    key = "wandbkey" * 5
    key_file = tmp_path / "key"
    key_file.write_text(key)
    key_file.chmod(0o600)
    profile = {
        **BASE,
        "runtime": "apptainer",
        "image": str(image),
        "wandb_api_key_file": str(key_file),
        "env": {},  # W&B sweeps run online
    }
    calls = tmp_path / "calls.jsonl"
    env = {
        **slurm.env(),
        "WANDB_API_KEY": "decoy-key-from-the-login-shell",
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_APPTAINER_LOG": str(calls),
        "FAKE_APPTAINER_SLEEP": "5",
    }
    workdir = tmp_path / "work"
    workdir.mkdir()
    argv = [
        "submit",
        "lab/cifar/abc123",
        "--profile",
        "t",
        "--cluster-config",
        cluster(tmp_path, t=profile),
    ]
    result = sweepkit(*argv, "--array", "1-1", env=env, cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    job = result.stdout.split()[3]
    wait_for(calls.exists, 60, "the job to start the container")
    # slurmctld keeps a running job's script and environment under StateSaveLocation.
    state = Path(slurm.conf).parent / "ctld"
    stored = b"".join(p.read_bytes() for p in state.rglob("*") if p.is_file() and "hash." in str(p))
    assert str(calls).encode() in stored  # the job's environment is there ...
    assert (
        b"decoy-key-from-the-login-shell" not in stored and key.encode() not in stored
    )  # ... no key
    slurm.wait_done(job, timeout=60)
    (call,) = [json.loads(line) for line in calls.read_text().splitlines()]
    assert call["key_len"] == len(key)
    assert call["argv"][-6:] == [
        "wandb",
        "agent",
        "--forward-signals",
        "--count",
        "1",
        "lab/cifar/abc123",
    ]
    (task,) = tasks(slurm, job).values()
    assert task["JobState"] == "COMPLETED" and task["ExitCode"] == "0:0", task
