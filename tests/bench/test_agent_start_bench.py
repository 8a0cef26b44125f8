"""bench/agent_start.py runs end to end at its smallest size (figures are recorded, never asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_runs import run_bench


@pytest.mark.system  # starts agents, their programs and pythons importing wandb
def test_agent_start_benchmark_reports_every_method_and_the_baseline(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    run_bench("agent_start.py", "--repeats", "1", "--out", str(out), timeout=600)
    result = json.loads(out.read_text())
    assert set(result["median_s"]) == {"import_wandb", "grid", "random", "bayes"}
    assert all(len(v) == 1 and v[0] > 0 for v in result["samples_s"].values())
    assert result["date"] and result["machine"] and len(result["load_before"]) == 3
