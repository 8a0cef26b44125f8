"""`sweepkit submit`: dry runs, --array sizing, records, and the local launcher twin.

The runs here are the fast program of slurm_fixture (it keeps the trainer's contract: run.json,
checkpoint on SIGUSR1/SIGTERM, exit 75, resume). Tests that need SLURM are in test_slurm.py,
except the sbatch error, which needs only a running slurmctld.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import wandb
import yaml
from docs_blocks import blocks
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
)

from sweepkit.jobs.slurm import array, submit, target
from sweepkit.jobs.slurm.profiles import load_profile
from sweepkit.train.errors import UserError


def dry_run(ref: str, config: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return sweepkit(
        "submit", ref, "--profile", "t", "--cluster-config", config, "--dry-run", *extra
    )


# ----- dry run and array sizing ---------------------------------------------------------------
@pytest.mark.system  # starts processes
def test_dry_run_prints_script_and_command_and_writes_nothing(tmp_path: Path) -> None:
    ref = fast_sweep(tmp_path, points=4, steps=1, step_s=0)
    before = sorted(p.name for p in Path(ref).iterdir())
    result = dry_run(ref, cluster(tmp_path, t=BASE))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("#!/bin/bash\n")
    assert "#SBATCH --array=1-4%2\n" in result.stdout
    assert f"#SBATCH --chdir={REPO}\n" in result.stdout
    assert f"#SBATCH --output={ref}/slurm/logs/%x-%A_%a.out\n" in result.stdout
    assert "# sbatch command: sbatch --parsable SCRIPT" in result.stdout
    assert sorted(p.name for p in Path(ref).iterdir()) == before  # no slurm/ folder, no record


@pytest.mark.system  # starts processes
def test_array_auto_follows_runs_per_task_and_user_specs_get_the_profile_limit(
    tmp_path: Path,
) -> None:
    ref = fast_sweep(tmp_path, points=5, steps=1, step_s=0)
    config = cluster(tmp_path, t=BASE)
    assert "#SBATCH --array=1-2%2\n" in dry_run(ref, config, "--runs-per-task", "3").stdout
    # more tasks than the 5 runs left: trimmed to them, with one note (issue 28)
    trimmed = dry_run(ref, config, "--array", "1-12")
    assert "#SBATCH --array=1-5%2\n" in trimmed.stdout and "submitting 1-5" in trimmed.stderr
    assert "#SBATCH --array=0-9:3%4\n" in dry_run(ref, config, "--array", "0-9:3%4").stdout
    one = cluster(tmp_path, t={**BASE, "concurrency": 8})
    assert "#SBATCH --array=1-5%5\n" in dry_run(ref, one).stdout  # never a limit above the size
    bad = dry_run(ref, config, "--array", "1-x")
    assert bad.returncode == 2 and "is not an sbatch array spec" in bad.stderr
    # an empty range or a zero limit: refused before anything is recorded, dry run or not
    for spec, words in (("5-1", "'5-1' is empty"), ("1-4%0", "%0 would run no task")):
        assert words in dry_run(ref, config, "--array", spec).stderr
        real = sweepkit(
            "submit", ref, "--profile", "t", "--cluster-config", config, "--launcher", "local",
            "--array", spec,
        )  # fmt: skip
        assert real.returncode == 2 and words in real.stderr and len(real.stderr.splitlines()) == 1
        assert not (Path(ref) / "slurm").exists(), "nothing recorded"


@pytest.mark.system  # starts processes
def test_array_auto_needs_a_sized_sweep(tmp_path: Path) -> None:
    program = tmp_path / "p.py"  # sweep create checks that the program exists
    program.write_text("")
    definition = {
        "program": str(program),
        "method": "random",
        "metric": {"name": "m", "goal": "maximize"},
        "parameters": {"x": {"min": 0.0, "max": 1.0}},
    }
    unbounded = make_sweep(tmp_path / "a", definition)
    result = dry_run(unbounded, cluster(tmp_path, t=BASE))
    assert (
        result.returncode == 2
        and "has no fixed size (method random without run_cap)" in result.stderr
    )
    capped = make_sweep(tmp_path / "b", {**definition, "run_cap": 7})
    assert "#SBATCH --array=1-7%2\n" in dry_run(capped, cluster(tmp_path, t=BASE)).stdout


def test_array_auto_for_a_wandb_sweep_counts_its_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A mock of the W&B cloud only (no network here): a 6-point grid with two finished runs,
    # one running and one preempted (the server hands that one out again).

    class Run:
        def __init__(self, state: str) -> None:
            self.state = state

    class Sweep:
        config = {
            "method": "grid",
            "parameters": {"a": {"values": [1, 2, 3]}, "b": {"values": [1, 2]}},
        }
        runs = [Run("finished"), Run("finished"), Run("running"), Run("preempted")]

    class Api:
        def sweep(self, ref: str) -> Sweep:
            assert ref == "lab/cifar/abc123"
            return Sweep()

    monkeypatch.setattr(wandb, "Api", Api)
    profile = load_profile("t", cluster(tmp_path, t=BASE))
    wandb_target = target.resolve_sweep("lab/cifar/abc123")
    assert not wandb_target.sweep.is_local
    assert array.array_specs("auto", profile, wandb_target, 1) == ["1-3%2"]
    assert array.array_specs("auto", profile, wandb_target, 2) == ["1-2%2"]


@pytest.mark.system  # starts processes
def test_unknown_sweep_reference_is_one_line(tmp_path: Path) -> None:
    result = sweepkit(
        "submit",
        str(tmp_path / "nope"),
        "--profile",
        "t",
        "--cluster-config",
        cluster(tmp_path, t=BASE),
    )
    assert result.returncode == 2
    assert (
        "neither a sweep folder nor a W&B sweep" in result.stderr
        and "Traceback" not in result.stderr
    )


@pytest.mark.system  # starts processes
def test_missing_image_is_an_error_for_a_real_submission(tmp_path: Path) -> None:
    ref = fast_sweep(tmp_path, points=1, steps=1, step_s=0)
    gpu = {**BASE, "runtime": "apptainer", "image": str(tmp_path / "missing.sif"), "gpus": 1}
    result = sweepkit("submit", ref, "--profile", "t", "--cluster-config", cluster(tmp_path, t=gpu))
    assert result.returncode == 2
    assert "profile 't', key 'image'" in result.stderr and "not found" in result.stderr
    assert not (Path(ref) / "slurm").exists()

    # A Podman image name that Podman does not have here (or no Podman at all): the same one line.
    podman = {**BASE, "runtime": "podman", "image": "localhost/sweepkit:never-built"}
    result = sweepkit(
        "submit", ref, "--profile", "t", "--cluster-config", cluster(tmp_path, t=podman)
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "profile 't', key 'image': no Podman image localhost/sweepkit:never-built" in (
        result.stderr
    )
    assert "ci/build-image.sh --engine podman" in result.stderr
    assert not (Path(ref) / "slurm").exists()


# ----- the local launcher twin ----------------------------------------------------------------
@pytest.mark.system  # starts processes
def test_local_launcher_runs_every_task_two_at_a_time_with_slurm_env(tmp_path: Path) -> None:
    ref = fast_sweep(tmp_path, points=4, steps=6, step_s=0.3)
    config = cluster(tmp_path, t=BASE)
    result = sweepkit(
        "submit", ref, "--profile", "t", "--cluster-config", config, "--launcher", "local"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    job = submitted_job(ref)
    assert (job["launcher"], job["array"], job["profile"]) == ("local", "1-4%2", "t")
    script = Path(ref) / str(job["script"])
    assert script.is_file() and "#SBATCH --array=1-4%2" in script.read_text()

    infos = run_infos(ref)
    assert sorted(i["state"] for i in infos) == ["finished"] * 4
    envs = [i["env"] for i in infos]
    assert sorted(e["SLURM_ARRAY_TASK_ID"] for e in envs) == ["1", "2", "3", "4"]
    assert len({e["SLURM_JOB_ID"] for e in envs}) == 4
    for env in envs:
        assert env["SLURM_ARRAY_JOB_ID"] == job["job_id"]
        assert (
            env["SLURM_ARRAY_TASK_COUNT"],
            env["SLURM_ARRAY_TASK_MIN"],
            env["SLURM_ARRAY_TASK_MAX"],
        ) == ("4", "1", "4")
        assert env["SLURM_CPUS_PER_TASK"] == "1" and env["OMP_NUM_THREADS"] == "1"
        assert env["SLURM_JOB_NAME"] == f"sweepkit-{Path(ref).name}" and env["SLURM_PROCID"] == "0"
        assert "SLURM_RESTART_COUNT" not in env
    spans = [(iso_ts(i["timings"]["started_at"]), iso_ts(i["timings"]["ended_at"])) for i in infos]
    assert max_overlap(spans) == 2
    logs = sorted((Path(ref) / "slurm" / "logs").iterdir())
    assert [p.name for p in logs] == [
        f"sweepkit-{Path(ref).name}-{job['job_id']}_{n}.out" for n in range(1, 5)
    ]
    assert all("== sweepkit task" in p.read_text() and "host:" in p.read_text() for p in logs)


@pytest.mark.system  # starts processes
def test_profile_env_expands_on_the_node_when_the_job_starts(tmp_path: Path) -> None:
    ref = fast_sweep(tmp_path, points=2, steps=1, step_s=0.1)
    env = {
        "WANDB_MODE": "offline",
        "PROFILE_DATA": "$HOME/data_${SLURM_ARRAY_TASK_ID}",
        "PROFILE_LITERAL": 'costs \\$5, says "hi" \\ back',
    }
    config = cluster(tmp_path, t={**BASE, "env": env})
    result = sweepkit(
        "submit", ref, "--profile", "t", "--cluster-config", config, "--launcher", "local",
        env={**os.environ, "HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    script = (Path(ref) / str(submitted_job(ref)["script"])).read_text()
    # the script holds the variables, not the submitting host's values
    assert 'export PROFILE_DATA="$HOME/data_${SLURM_ARRAY_TASK_ID}"\n' in script
    seen = sorted((i["env"]["PROFILE_DATA"], i["env"]["PROFILE_LITERAL"]) for i in run_infos(ref))
    literal = 'costs $5, says "hi" \\ back'
    assert seen == [(f"{tmp_path}/home/data_{n}", literal) for n in (1, 2)]


@pytest.mark.system  # starts processes
def test_local_launcher_signals_at_the_lead_time_and_requeues(tmp_path: Path) -> None:
    # time 1 min, lead 55 s: the launcher sends SIGUSR1 to the batch shell 5 s in, as SLURM would;
    # the run (7 s of work) checkpoints, the task is rerun with SLURM_RESTART_COUNT=1, the run
    # resumes and finishes.
    ref = fast_sweep(tmp_path, points=1, steps=14, step_s=0.5)
    config = cluster(tmp_path, t={**BASE, "time": "1", "signal_lead_s": 55})
    result = sweepkit(
        "submit", ref, "--profile", "t", "--cluster-config", config, "--launcher", "local"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "requeued" in result.stdout
    seen = events(ref)
    kinds = [e["event"] for e in seen]
    assert kinds[:3] == ["start", "preempted", "start"] and kinds[-1] == "finished", seen
    assert seen[1]["signal"] == "SIGUSR1" and seen[0]["restart_count"] is None
    assert seen[2]["restart_count"] == "1" and seen[2]["step"] == seen[1]["step"] > 0
    (info,) = run_infos(ref)
    assert info["state"] == "finished" and info["resumed_from"] is not None
    log = next((Path(ref) / "slurm" / "logs").iterdir()).read_text()
    assert "SIGUSR1" in log and "restart 1" in log


# ----- W&B sweeps in a container: the key file and the launch line as the job runs them ------


@pytest.mark.system  # starts processes
def test_wandb_job_reads_the_key_file_and_runs_wandb_agent_in_the_container(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apptainer"
    fake.write_text(FAKE_APPTAINER)
    fake.chmod(0o755)
    image = tmp_path / "sweepkit.sif"
    image.write_bytes(b"not really an image")
    key_file = tmp_path / "wandb_key"
    key = "k" * 40
    key_file.write_text(key)
    key_file.chmod(0o600)
    profile = {
        **BASE,
        "runtime": "apptainer",
        "image": str(image),
        "gpus": 1,
        "binds": ["/tmp:/scratch:rw"],
        "wandb_api_key_file": str(key_file),
        "env": {},  # W&B sweeps run online
    }
    config = cluster(tmp_path, t=profile)
    call_log = tmp_path / "calls.jsonl"
    # A key in the submitting shell is not passed on: the job reads the file.
    env = {**os.environ, "WANDB_API_KEY": "decoy"}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", FAKE_APPTAINER_LOG=str(call_log))
    workdir = tmp_path / "work"
    workdir.mkdir()
    argv = ["submit", "lab/cifar/abc123", "--profile", "t", "--cluster-config", config]
    run = sweepkit(*argv, "--launcher", "local", "--array", "1-2", env=env, cwd=workdir)
    assert run.returncode == 0, run.stdout + run.stderr
    record_dir = workdir / "sweeps" / "wandb" / "lab" / "cifar" / "abc123" / "slurm"
    job = json.loads((record_dir / "submissions.jsonl").read_text().splitlines()[-1])
    assert job["image"] == str(image) and str(job["image_digest"]).startswith("sha256:")
    lock = Path(__file__).resolve().parents[3] / "containers" / "requirements.lock"
    assert job["lock_sha256"] == hashlib.sha256(lock.read_bytes()).hexdigest()
    calls = [json.loads(line) for line in call_log.read_text().splitlines()]
    assert len(calls) == 2
    for call in calls:
        assert call["argv"][:3] == ["exec", "--nv", "--bind"] and "/tmp:/scratch:rw" in call["argv"]
        assert call["argv"][-7:] == [
            str(image),
            "wandb",
            "agent",
            "--forward-signals",
            "--count",
            "1",
            "lab/cifar/abc123",
        ]
        assert call["key_len"] == len(key) and call["nousersite"] == "1"
    script = (record_dir / f"{job['job_id']}.sbatch").read_text()
    logs = "".join(p.read_text() for p in (record_dir / "logs").iterdir())
    assert key not in script and key not in logs and key not in run.stdout

    # A key file others can read is refused: by submit, and by the job itself at run time.
    key_file.chmod(0o644)
    again = subprocess.run(
        run.args, cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 2 and "readable by others; run: chmod 600" in again.stderr
    job_run = subprocess.run(
        ["bash", str(record_dir / f"{job['job_id']}.sbatch")],
        cwd=workdir,
        env={**env, "SLURM_JOB_ID": "1", "SLURM_ARRAY_TASK_ID": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert job_run.returncode == 2 and "chmod 600" in job_run.stderr
    assert len(call_log.read_text().splitlines()) == 2  # the agent never started

    # Only rank 0 runs the agent.
    key_file.chmod(0o600)
    rank1 = subprocess.run(
        ["bash", str(record_dir / f"{job['job_id']}.sbatch")],
        cwd=workdir,
        env={**env, "SLURM_PROCID": "1", "SLURM_ARRAY_TASK_ID": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rank1.returncode == 0 and "only rank 0 runs the agent" in rank1.stdout
    assert len(call_log.read_text().splitlines()) == 2
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


# ----- sbatch's own errors ----------------------------------------------------------------------
def test_sbatch_errors_are_shown_verbatim_with_the_profile(slurm: Slurm, tmp_path: Path) -> None:
    ref = fast_sweep(tmp_path, points=1, steps=1, step_s=0)
    config = cluster(tmp_path, nosuch={**BASE, "partition": "nosuch"})
    result = sweepkit(
        "submit", ref, "--profile", "nosuch", "--cluster-config", config, env=slurm.env()
    )
    assert result.returncode == 2
    assert "sbatch rejected the job of profile 'nosuch'" in result.stderr
    assert "sbatch: error: invalid partition specified: nosuch" in result.stderr, result.stderr
    assert not (Path(ref) / "slurm").exists()  # no record, no script, no empty log folder


@pytest.mark.system  # starts processes
def test_userror_for_bad_runs_per_task(tmp_path: Path) -> None:
    ref = fast_sweep(tmp_path, points=1, steps=1, step_s=0)
    with pytest.raises(UserError, match="--runs-per-task 0"):
        submit.run(submit_args(ref, cluster(tmp_path, t=BASE), runs_per_task=0))


def submit_args(ref: str, config: str, **changes: Any) -> Any:
    parser = argparse.ArgumentParser()
    submit.add_arguments(parser)
    args = parser.parse_args([ref, "--profile", "t", "--cluster-config", config, "--dry-run"])
    for key, value in changes.items():
        setattr(args, key, value)
    return args


# ----- docs/slurm.md ----------------------------------------------------------------------------
def readme_slurm_blocks() -> list[tuple[str, str]]:
    """(info string, body) of each shell and output block of docs/slurm.md."""

    shown = [b for b in blocks("docs/slurm.md") if b.lang in ("bash", "text")]
    return [(f"{b.lang} {b.tag}".strip(), b.body) for b in shown]


@pytest.mark.system  # starts processes
def test_readme_slurm_commands_run_render_or_parse(tmp_path: Path) -> None:
    ref = fast_sweep(tmp_path, points=2, steps=2, step_s=0.1)
    known = (
        "squeue",
        "sinfo",
        "scancel",
        "tail",
        "mkdir",
        "sweepkit",
        "eval",
        "tests/slurm/slurm-down.sh",
        "tests/slurm/nodes-down.sh",
        "python -m pytest tests/jobs/slurm/",
    )
    blocks = readme_slurm_blocks()
    assert blocks, "no code blocks in docs/slurm.md"
    submits = 0
    for info, body in blocks:
        if info == "text":
            continue
        assert info == "bash cluster", info
        syntax = subprocess.run(["bash", "-n"], input=body, capture_output=True, text=True)
        assert syntax.returncode == 0, syntax.stderr
        for line in body.strip().splitlines():
            assert line.startswith(known), line
            words = line.split()
            if words[0] == "eval":  # eval "$(tests/slurm/NAME-up.sh)": the script is there
                assert (REPO / words[1].strip('"$()')).is_file(), line
                continue
            if words[0] == "python":  # the separate nodes' tests: run by the suite itself
                assert (REPO / words[-1]).is_file(), line
                continue
            if words[0] != "sweepkit":
                continue
            argv = [w.replace("sweeps/ab12cd34", ref) for w in words[1:]]
            if argv[0] == "submit":
                submits += 1
                local = "--launcher" in argv
                result = sweepkit(*argv, *([] if local or "--dry-run" in argv else ["--dry-run"]))
                assert result.returncode == 0, (line, result.stderr)
                if not local:
                    script = tmp_path / "readme.sbatch"
                    script.write_text(result.stdout)
                    lint = subprocess.run(
                        ["shellcheck", str(script)], capture_output=True, text=True
                    )
                    assert lint.returncode == 0, (line, lint.stdout)
            else:
                result = sweepkit(*argv)
                assert result.returncode == 0, (line, result.stderr)
    assert submits == 6
    assert sorted(i["state"] for i in run_infos(ref)) == ["finished", "finished"]  # the local one


@pytest.mark.system  # starts processes
def test_readme_profile_error_is_what_submit_prints(tmp_path: Path) -> None:
    (example,) = [body for info, body in readme_slurm_blocks() if info == "text"]
    config = yaml.safe_load((REPO / "config" / "cluster.yaml").read_text())
    config["profiles"]["gpu"]["account"] = "lab;id"
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "cluster.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [
            str(Path(REPO, ".venv", "bin", "sweepkit")),
            "submit",
            "sweeps/ab12cd34",
            "--profile",
            "gpu",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stderr.strip() == example.strip()


@pytest.mark.system  # starts processes
def test_a_wandb_sweep_refuses_an_offline_profile(tmp_path: Path) -> None:
    config = cluster(tmp_path, t=BASE)  # BASE sets WANDB_MODE=offline, right for local sweeps only
    result = sweepkit(
        "submit", "lab/cifar/abc123", "--profile", "t", "--cluster-config", config, "--dry-run"
    )
    assert result.returncode == 2
    assert "profile 't', key 'env.WANDB_MODE': offline runs cannot report" in result.stderr
