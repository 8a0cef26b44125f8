"""bench/sweep_overhead.py runs end to end with small settings (figures are recorded, never asserted)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bench_runs import run_bench


@pytest.mark.system  # starts processes
def test_sweep_overhead_benchmark_measures_both_stores_for_every_method(tmp_path: Path) -> None:
    proc = run_bench(
        "sweep_overhead.py",
        "--finished",
        "12",
        "--fresh",
        "1",
        "--agents",
        "2",
        "--claims",
        "2",
        "--repeats",
        "2",
        "--gp-claims",
        "1",
        "--agent-repeats",
        "1",
        "--dir",
        str(tmp_path),
        "--no-record",
        timeout=600,
    )
    rows = {
        m.group(1): m.group(0)
        for m in re.finditer(r"^\| (grid|random|bayes|bayes-gp) \|.*\|$", proc.stdout, re.M)
    }
    assert set(rows) == {"grid", "random", "bayes", "bayes-gp"}, proc.stdout
    for method, row in rows.items():
        cells = [c.strip() for c in row.strip("|").split("|")][1:]
        assert len(cells) == 8, row
        # every cell is "ours / Optuna" or one figure, in ms, both sides measured
        assert all(re.fullmatch(r"[\d.-]+( / [\d.-]+)? ms", c) for c in cells), (method, row)
    assert re.search(r"Agent start to program launch: \d+\.\d\d s", proc.stdout)
    assert "2 processes x 2 claims, 2 repetitions pooled" in proc.stdout
