"""bench/agent_start.py runs end to end at its smallest size (figures are recorded, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.system  # starts agents, their programs and pythons importing wandb
def test_agent_start_benchmark_reports_every_method_and_the_baseline(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "bench/agent_start.py", "--repeats", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert set(result["median_s"]) == {"import_wandb", "grid", "random", "bayes"}
    assert all(len(v) == 1 and v[0] > 0 for v in result["samples_s"].values())
    assert result["date"] and result["machine"] and len(result["load_before"]) == 3
