"""README "Bring your own training script": its commands, run as shown on the shipped example
(config/byo: a plain W&B script, its config.yaml, a sweep_config.yaml with program:), in a
folder shaped like a clone; then what they produced."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.system  # starts processes (see tests/conftest.py)

REPO = Path(__file__).resolve().parents[2]
SECTION = "Bring your own training script"


def section_block() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split(f"## {SECTION}\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return block


def test_the_example_script_imports_nothing_of_sweepkit() -> None:
    script = (REPO / "config" / "byo" / "train_script.py").read_text()
    assert not re.search(r"^\s*(from|import)\s+(jobs|train)\b", script, flags=re.M)
    assert "sweepkit" not in script.split('"""', 2)[2]  # only its docstring names the kit
    sweep = (REPO / "config" / "byo" / "sweep_config.yaml").read_text()
    assert "program: train_script.py" in sweep and "name: Validation Accuracy" in sweep


def test_readme_byo_commands_run_on_the_shipped_example(tmp_path: Path) -> None:
    work = tmp_path / "clone"
    work.mkdir()
    os.symlink(REPO / "config", work / "config")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "SLURM_"))}
    env = {k: v for k, v in env.items() if not k.startswith("SWEEPKIT_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["WANDB_SILENT"] = "true"
    script = section_block() + 'echo "SWEEP=$SWEEP"\n'
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
        [sys.executable, "-m", "jobs.cli", "status", str(sweep), "--json"],
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
    # without it (tests/jobs/sweeps/test_sweep_e2e.py checks those copies and their upload)
    plan = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "sync", str(sweep), "--project", "p", "--dry-run"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    assert plan.returncode == 0 and "2 run(s) to upload" in plan.stdout, plan.stderr
    assert "2 run(s) name the local sweep id" in plan.stdout and plan.stderr == "", plan.stderr
    assert "uploaded from a copy without it" in plan.stdout
    assert plan.stdout.count(f"{sweep}/.sync/") == 2 and not (sweep / ".sync").exists()
