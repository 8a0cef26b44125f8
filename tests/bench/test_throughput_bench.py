"""bench/gpu_check.sh on the CPU: ``--quick`` runs every step of the one-call GPU check (smoke, the
speed ablation with its compile rows and the profile of the compile-default row, the
compile-fallback step, the 32 px CIFAR-stem throughput, the trainer's SIGTERM and resume) with
small settings, so that the script a session with a device runs has not rotted since the last one;
its arguments, ``--dry-run`` and shellcheck are checked too. Figures are never asserted, only that
they are there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STEPS = ("smoke", "ablation", "fallback-32", "throughput-32-cifar", "trainer")


def gpu_check(tmp_path: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable}
    env["TMPDIR"] = str(tmp_path)
    return subprocess.run(
        ["bash", "bench/gpu_check.sh", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )


@pytest.mark.slow  # starts processes; Inductor compiles ResNet-18 on the CPU
def test_gpu_check_quick_runs_every_step_on_cpu(tmp_path):
    proc = gpu_check(tmp_path, "--quick")
    out = tmp_path / "out"
    log = (out / "gpu_check.log").read_text()
    assert proc.returncode == 0, log
    assert log.rstrip().endswith("== gpu_check exit 0")
    for step in STEPS:
        assert f"== {step} exit 0 (" in log, log
    # within what the device tool brings back: at most 8 files, none in a deeper folder
    assert len(list(out.iterdir())) <= 8 and all(p.is_file() for p in out.iterdir())

    # the ablation with its compile rows (Inductor compiles ResNet-18 on the CPU), and the
    # profile of the row the trainer runs by default, written to a file
    ablation = json.loads((out / "ablation-32.json").read_text())
    rows = {r["row"]: r for r in ablation["rows"]}
    assert list(rows) == [
        "usual script bs4",
        "device data (uint8, augmented on the device)",
        "+ channels_last",
        "+ bf16",
        "+ compile default",
        "+ compile reduce-overhead (CUDA graphs)",
        "full kit bs4, default",
    ]
    assert [r["ran_as"] for r in rows.values()] == ["eager"] * 4 + [
        "default",
        "reduce-overhead",
        "default",
    ]
    assert all(r["images_per_s"] > 0 for r in rows.values())
    assert rows["+ bf16"]["vs_usual"] > 0 and rows["+ bf16"]["vs_above"] > 0
    table = (out / "ablation-32.md").read_text()
    assert table.count("\n| ") == 2 + len(rows)  # the header, its rule and one line per row
    assert "| ran as | row s |" in table
    profile = (out / "profile-32.txt").read_text()
    assert "input pipeline" in profile and "train step" in profile

    fallback = json.loads((out / "fallback-32.json").read_text())
    assert fallback["ran_as"] == {"kit bs8": "eager"}

    # the trainer stopped on SIGTERM after its first epoch with the preempted code, and the rerun
    # on the same run folder resumed rather than starting over
    assert "SIGTERM after epoch 1: exit 75" in log
    run = json.loads((out / "train-run.json").read_text())
    assert run["state"] == "finished" and run["attempt"] == 2 and run["resumed_from"]["epoch"] >= 1
    assert len(run["epochs"]) == 6


@pytest.mark.system  # starts processes
def test_gpu_check_dry_run_lists_the_steps_and_runs_none(tmp_path):
    proc = gpu_check(tmp_path, "--dry-run", timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = [line.split(" ")[1] for line in proc.stdout.splitlines() if "(limit " in line]
    assert steps[-3:] == ["smoke", "ablation", "fallback-32"]
    assert "bench/speed_ablation.py --out-dir" in proc.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["gpu_check.log"]
    proc = gpu_check(tmp_path, "--all", "--dry-run", timeout=60)
    assert "== trainer (limit" in proc.stdout and "== throughput-32-cifar (limit" in proc.stdout


@pytest.mark.system  # starts processes
def test_gpu_check_refuses_an_unknown_argument_in_one_line(tmp_path):
    proc = gpu_check(tmp_path, "--fast", timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "gpu_check.sh: unknown argument '--fast'; use --quick, --all, --dry-run or --help"
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.system  # starts processes
@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_gpu_check_passes_shellcheck():
    proc = subprocess.run(
        ["shellcheck", "bench/gpu_check.sh"], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stdout
