"""README "Your own script on your cluster": its steps, run as shown on the shipped example
(config/byo: a plain W&B script, its config.yaml, a sweep_config.yaml with program:), in a
folder shaped like a clone; then what they produced. The one step that needs a SLURM cluster,
`submit`, runs through the local twin of sbatch (`--launcher local`); its `--dry-run` script is
shellchecked."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from docs_blocks import blocks, sections

REPO = Path(__file__).resolve().parents[2]
PAGE, SECTION = "README.md", "Your own script on your cluster"


def steps_script(job_script: Path) -> str:
    """The section's steps as one shell script: its profile written where step 2 says, the
    `--dry-run` step's output (the job script) kept in job_script, the cluster-only `submit`
    run by the local launcher."""
    assert "as\n`my-cluster.yaml`" in sections(PAGE)[SECTION], "step 2 names the profile's file"
    script = ""
    for block in blocks(PAGE, SECTION):
        if block.lang == "yaml":
            script += f"cat > my-cluster.yaml <<'EOF'\n{block.body}EOF\n"
        elif block.lang == "bash" and block.tag == "cluster":
            (command,) = block.commands
            assert command.startswith("sweepkit submit ") and "--dry-run" not in command
            script += command + " --launcher local\n"
        elif block.lang == "bash" and "--dry-run" in block.body:
            script += f"{{\n{block.body}}} > {job_script}\n"
        elif block.lang == "bash":
            script += block.body
    return script


def test_the_example_script_imports_nothing_of_sweepkit() -> None:
    script = (REPO / "config" / "byo" / "train_script.py").read_text()
    assert not re.search(r"^\s*(from|import)\s+(jobs|train)\b", script, flags=re.M)
    assert "sweepkit" not in script.split('"""', 2)[2]  # only its docstring names the kit
    sweep = (REPO / "config" / "byo" / "sweep_config.yaml").read_text()
    assert "program: train_script.py" in sweep and "name: Validation Accuracy" in sweep


@pytest.mark.system  # starts processes
def test_readme_byo_commands_run_on_the_shipped_example(tmp_path: Path) -> None:
    work = tmp_path / "clone"
    work.mkdir()
    os.symlink(REPO / "config", work / "config")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "SLURM_"))}
    env = {k: v for k, v in env.items() if not k.startswith("SWEEPKIT_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["WANDB_SILENT"] = "true"
    job_script = tmp_path / "job.sbatch"
    script = steps_script(job_script) + 'echo "SWEEP=$SWEEP"\n'
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "without a value" not in out
    folder = work / "my-sweep"
    sweep = folder / out.rsplit("SWEEP=", 1)[1].strip()
    assert "runs: 2 finished (of 2 planned)" in out and "best: " in out
    status = subprocess.run(
        # --records: each run's epochs and config from its W&B records (plain --json: end records)
        [sys.executable, "-m", "sweepkit.jobs.cli", "status", str(sweep), "--json", "--records"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    runs = {r["params"]["learning_rate"]: r for r in json.loads(status.stdout)["runs"]}
    assert set(runs) == {0.1, 0.01}
    for run in runs.values():
        assert run["metric_source"] == "wandb" and len(run["epochs"]) == 5
        assert run["metric"] == pytest.approx(run["epochs"][-1]["Validation Accuracy"])
        assert run["config"]["batch_size"] == 64, "the script's config.yaml, from W&B"
    assert {bool(r["slurm"].get("array_job_id")) for r in runs.values()} == {True, False}, (
        "one run from the agent, one from submit --launcher local"
    )
    assert runs[0.1]["metric"] > runs[0.01]["metric"] > 50
    assert not list(sweep.rglob("run.json")), "the script writes no run.json"
    page = (sweep / "report.html").read_text()
    assert all(r["run_id"] in page for r in runs.values()) and "batch_size: 64" in page
    # the runs carry the local sweep id as their W&B sweep id: sync plans them from copies
    # without it (tests/jobs/sweeps/test_sync.py checks those copies and their upload)
    plan = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweepkit.jobs.cli",
            "sync",
            str(sweep),
            "--project",
            "p",
            "--dry-run",
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    assert plan.returncode == 0 and "2 run(s) to upload" in plan.stdout, plan.stderr
    assert "2 run(s) name the local sweep id" in plan.stdout and plan.stderr == "", plan.stderr
    assert "uploaded from a copy without it" in plan.stdout
    assert plan.stdout.count(f"{sweep}/.sync/") == 2 and not (sweep / ".sync").exists()
    # the job script step 4 printed, as sbatch would get it on a cluster: shellcheck-clean
    assert job_script.read_text().startswith("#!/bin/bash\n") and "sbatch" in job_script.read_text()
    if shutil.which("shellcheck"):
        lint = subprocess.run(["shellcheck", str(job_script)], capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout
