"""bench/gpu_check.sh --quick on the CPU: every step of the one-call GPU check (smoke, the throughput
bench at both sizes, the trainer's SIGTERM and resume) with small settings, so that the script a
session with a device runs has not rotted since the last one. Figures are never asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.system  # starts processes
def test_gpu_check_quick_runs_every_step_on_cpu(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable}
    env["TMPDIR"] = str(tmp_path)
    proc = subprocess.run(
        ["bash", "bench/gpu_check.sh", "--quick"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    log = (tmp_path / "out" / "gpu_check.log").read_text()
    assert proc.returncode == 0, log
    assert log.rstrip().endswith("== gpu_check exit 0")
    for step in ("smoke", "throughput-224", "throughput-32", "throughput-32-cifar", "trainer"):
        assert f"== {step} exit 0 (" in log, log

    sizes = json.loads((tmp_path / "out" / "throughput-32.json").read_text())
    assert set(sizes["results_img_per_s"]) == {"baseline bs8", "kit bs8", "kit bs16"}
    assert all(rate > 0 for rate in sizes["results_img_per_s"].values())
    assert sizes["ratio_equal_batch"] > 0 and "ratio at equal batch (8)" in log
    assert "Self CPU time total" in log  # the profile of the kit's steps at 224 px

    # the trainer stopped on SIGTERM after its first epoch with the preempted code, and the rerun
    # on the same run folder resumed rather than starting over
    assert "SIGTERM after epoch 1: exit 75" in log
    run = json.loads((tmp_path / "out" / "train-run.json").read_text())
    assert run["state"] == "finished" and run["attempt"] == 2 and run["resumed_from"]["epoch"] >= 1
    assert len(run["epochs"]) == 6
