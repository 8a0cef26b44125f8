"""bench/stop_check.py, tiny: two gloo ranks in fresh processes per measurement, each mode of
the stop check timed, the figures written as JSON. Figures are never compared."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench_runs import run_bench

pytestmark = pytest.mark.system  # starts processes

ROOT = Path(__file__).resolve().parents[2]


def test_stop_check_bench_times_each_mode_on_two_ranks(tmp_path):
    out = tmp_path / "stop.json"
    proc = run_bench(
        "stop_check.py",
        "--sizes",
        "tiny",
        "--modes",
        "blocking,vote",
        "--steps",
        "3",
        "--warmup",
        "1",
        "--repeats",
        "1",
        "--out",
        str(out),
        timeout=600,
    )
    summary = json.loads(out.read_text())
    assert set(summary["median_step_ms"]["tiny"]) == {"blocking", "vote"}
    assert all(ms > 0 for ms in summary["median_step_ms"]["tiny"].values())
    assert "tiny: blocking" in proc.stdout


def test_stop_check_bench_refuses_an_unknown_mode_in_one_line():
    proc = subprocess.run(
        [sys.executable, "bench/stop_check.py", "--modes", "sometimes"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert (
        proc.returncode == 2
        and "--modes 'sometimes': choose from none, blocking, vote" in proc.stderr
    )
