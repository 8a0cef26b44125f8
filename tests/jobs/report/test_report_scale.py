"""A report of a big sweep stays readable and small: every run in a CSV beside the page, the page's
table cut, the per-epoch plot limited to the best and running runs, parallel coordinates with a
faint layer under the best runs. Constructed runs (the store's part is tested by
tests/bench/test_scale_bench.py)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from report_runs import Run, curve, driven_sweep, section, source

from sweepkit.jobs.report import analysis as analysis_mod
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


def test_importance_of_a_big_sweep_is_fitted_on_a_sample_the_page_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond ``IMPORTANCE_SAMPLE`` runs the forest sees a fixed sample of them (the same forest
    as one fitted on those rows alone), correlations every run; the page says which. At or
    under it, every run, as before."""
    runs, spec = driven_sweep(60)
    whole = analysis_mod.analyse(runs, spec)
    assert whole.importance_runs is None
    monkeypatch.setattr(analysis_mod, "IMPORTANCE_SAMPLE", 25)
    out = tmp_path / "report.html"
    _, sampled = write_report(source(runs, spec), out)
    assert sampled.importance_runs == 25
    rows = analysis_mod.importance_sample(60)
    assert rows is not None and len(set(rows)) == 25 and rows == analysis_mod.importance_sample(60)
    picked = [sampled.analysed[i] for i in rows]
    alone = analysis_mod.analyse(picked, spec)  # a sweep of those 25 runs: all of them fitted
    assert {s.name: s.importance for s in alone.params} == {
        s.name: s.importance for s in sampled.params
    }
    assert {s.name: s.correlation for s in sampled.params} == {
        s.name: s.correlation for s in whole.params
    }, "correlations from every run"
    text = section(out.read_text(), "importance")
    assert "fitted on a random sample of 25 of the 60 runs with a" in text
    monkeypatch.setattr(analysis_mod, "IMPORTANCE_SAMPLE", 60)
    write_report(source(runs, spec), out)
    assert "fitted on all 60 runs with a" in section(out.read_text(), "importance")
