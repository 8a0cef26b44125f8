"""bench/wandb_records.py runs end to end with small settings (figures are recorded, never asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_runs import run_bench


@pytest.mark.system  # starts processes
def test_reader_and_agent_polling_benchmark_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    run_bench("wandb_records.py", "--rows", "60", "--agent-s", "9", "--out", str(out), timeout=600)
    result = json.loads(out.read_text())
    reader = result["reader"]
    assert reader["rows"] == 60 and reader["log_bytes"] > 0
    for key in (
        "full_read_wall_s",
        "full_read_cpu_s",
        "poll_nothing_new_cpu_us",
        "wandb_leet_inspect_summary_wall_s",
    ):
        assert reader[key] > 0, key
    assert [a["hyperband"] for a in result["agent"]] == [False, True]
    assert all(a["window_s"] > 0 and a["agent_cpu_s"] >= 0 for a in result["agent"])
    assert result["date"] and result["machine"]
