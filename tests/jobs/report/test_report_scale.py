"""A report of a big sweep stays readable and small: every run in a CSV beside the page, the page's
table cut, the per-epoch plot limited to the best and running runs, parallel coordinates with a
faint layer under the best runs. Constructed runs (the store's part is tested by
tests/bench/test_scale_bench.py)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from report_runs import Run, curve, driven_sweep, section, source

from sweepkit.jobs.report import plots
from sweepkit.jobs.report.command import write_report
from sweepkit.jobs.report.render import TABLE_ROWS
from sweepkit.jobs.report.source import EPOCH_BEST


def test_big_sweep_report_has_a_csv_a_cut_table_and_readable_plots(tmp_path: Path) -> None:
    runs, spec = driven_sweep(260)
    for run in runs[EPOCH_BEST:]:  # ended runs as the store gives them: no epochs read
        run.epoch_count, run.epochs = len(run.epochs), []
    running = [
        Run(f"live{i}", "running", runs[i].params, None, curve(50.0, 2), ended_at=None)
        for i in range(3)
    ]
    out = tmp_path / "report.html"
    written, analysis = write_report(source(runs + running, spec), out)
    assert [p.name for p in written] == ["report.html", "report-runs.csv"]
    with open(tmp_path / "report-runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["run_id"] for r in rows) == sorted(r.run_id for r in runs + running)
    assert rows[0]["run_id"] == analysis.best.run_id and rows[0]["epochs"] == "3"
    assert all(r["epochs"] == "3" for r in rows if r["state"] == "finished")
    page = out.read_text()
    table = section(page, "runs")
    assert table.count("<tr") == TABLE_ROWS + 1 and 'href="report-runs.csv"' in table
    assert f"The first {TABLE_ROWS} of 263 runs" in table
    caption = section(page, "metric-per-epoch")
    assert f"the {EPOCH_BEST} best of 260 runs with a value and 3 of the 3 running runs" in caption
    pc = section(page, "parallel-coordinates")
    assert len(re.findall(r"<title>", pc)) == plots.VIVID_RUNS  # hover: the best runs only
    assert "<image" in pc  # the other runs: one raster layer
    assert f"Only the {plots.VIVID_RUNS} best runs" in pc
    assert out.stat().st_size < 5_000_000
