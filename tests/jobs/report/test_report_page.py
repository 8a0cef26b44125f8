"""The report's page from constructed runs: self-contained with every section, its edge cases (one
run, all failed, none, single values, hostile text), provenance, and the PNG files.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
from matplotlib import rc_context
from matplotlib.figure import Figure
from PIL import Image
from report_runs import (
    Run,
    curve,
    definition,
    drawn_fraction,
    driven_sweep,
    section,
    source,
    store_sweep,
)

from sweepkit.jobs.cli import main
from sweepkit.jobs.report.analysis import analyse
from sweepkit.jobs.report.command import write_report
from sweepkit.jobs.report.figure_text import figure_rc
from sweepkit.jobs.report.source import read_submissions
from sweepkit.jobs.sweeps.state import RunView


def page_of(tmp_path: Path, runs: list[RunView], spec: dict[str, Any], **kw: Any) -> str:
    out = tmp_path / "report.html"
    write_report(source(runs, spec, **kw), out)
    return out.read_text()


# --- the page ---------------------------------------------------------------------------------


def test_page_is_self_contained_with_every_section(tmp_path: Path) -> None:
    runs, spec = driven_sweep(8)
    page = page_of(tmp_path, runs, spec)
    for name in (
        "counts",
        "best",
        "parallel-coordinates",
        "importance",
        "metric-per-epoch",
        "runs",
    ):
        assert section(page, name), name
    assert "<script" not in page.lower()
    for url in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert url.startswith(("#", "data:")), url  # nothing fetched at view time
    # One hover title per run line in the parallel coordinates.
    assert section(page, "parallel-coordinates").count("<title>") == len(runs)
    best = max(runs, key=lambda r: r.metric or 0.0)
    assert f"--learning_rate={best.params['learning_rate']}" in section(page, "best")


def test_one_run_says_so_and_draws_no_empty_plot(tmp_path: Path) -> None:
    runs = [Run("only", "finished", {"lr": 0.1}, 80.0, curve(80.0))]
    page = page_of(tmp_path, runs, definition({"lr": {"values": [0.1, 0.01]}}))
    assert "Fewer than two finished runs" in page
    assert not section(page, "parallel-coordinates") and not section(page, "importance")
    assert "only" in section(page, "best")
    assert "<svg" in section(page, "metric-per-epoch")  # its one curve is real data


def test_all_runs_failed(tmp_path: Path) -> None:
    runs = [
        Run("a", "failed", {"lr": 0.1}, None, error="RuntimeError: CUDA out of memory"),
        Run("b", "crashed", {"lr": 0.01}, None),
        Run("c", "failed", {"lr": 0.001}, None, curve(10.0, 1)),
    ]
    page = page_of(tmp_path, runs, definition({"lr": {"values": [0.1, 0.01, 0.001]}}))
    assert "Fewer than two finished runs" in page
    assert "<svg" not in section(page, "parallel-coordinates") + section(page, "best")
    assert "CUDA out of memory" in section(page, "runs")
    assert "<b>2</b> failed" in section(page, "counts")
    assert "<b>1</b> crashed" in section(page, "counts")


def test_no_runs_at_all(tmp_path: Path) -> None:
    page = page_of(tmp_path, [], definition({"lr": {"values": [0.1]}}))
    assert "No runs yet" in page and "<svg" not in page


def test_parameter_with_a_single_value(tmp_path: Path) -> None:
    """A swept parameter that took one value, and a fixed one (``value:``), which is not swept."""
    runs = [
        Run(f"r{i}", "finished", {"lr": lr, "epochs": 1, "seed": 7}, 90 - i, curve(90 - i))
        for i, lr in enumerate([0.1, 0.01, 0.001])
    ]
    spec = definition(
        {"lr": {"values": [0.1, 0.01, 0.001]}, "epochs": {"values": [1]}, "seed": {"value": 7}}
    )
    analysis = analyse(runs, spec)
    stats = {s.name: s for s in analysis.params}
    assert set(stats) == {"lr", "epochs"} and analysis.fixed == {"seed": 7}
    assert stats["epochs"].importance == 0.0 and stats["epochs"].correlation is None
    assert "single value (1)" in stats["epochs"].note
    page = page_of(tmp_path, runs, spec)
    assert "single value (1)" in section(page, "importance")
    assert "<code>seed=7</code>" in page and "seed" not in section(page, "importance")
    assert "<svg" in section(page, "parallel-coordinates")
    assert "--seed=7" in section(page, "best")  # fixed values are still part of the rerun


def test_non_numeric_and_hostile_values(tmp_path: Path) -> None:
    values = ["adam", "<script>alert(1)</script>", None, True, [1, 2], 3]
    runs = [
        Run(f"r{i}", "finished", {"opt": v, "width": {"a": i % 2}}, float(i), curve(float(i)))
        for i, v in enumerate(values)
    ]
    runs.append(Run("nan", "finished", {"opt": "adam", "width": {"a": 0}}, float("nan")))
    spec = definition(
        {"opt": {"values": values}, "width": {"parameters": {"a": {"values": [0, 1]}}}}
    )
    analysis = analyse(runs, spec)
    assert {s.name for s in analysis.params} == {"opt", "width.a"}
    assert analysis.excluded == 1  # the NaN metric
    page = page_of(tmp_path, runs, spec)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<svg" in section(page, "parallel-coordinates")


def test_text_is_text_math_signs_and_cjk_names_draw_without_warnings(tmp_path: Path) -> None:

    hostile = "$SCRATCH/data_$\\frac{"  # mathtext would stop the report: ParseSyntaxException
    metric = "验证准确率"  # a CJK metric name
    values = [hostile, "plain", "$x$"]
    runs = [
        Run(f"r{i}", "finished", {"学习率": v}, float(i), [{"epoch": 1, metric: float(i)}])
        for i, v in enumerate(values)
    ]
    spec = {
        **definition({"学习率": {"values": values}}),
        "metric": {"name": metric, "goal": "maximize"},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no font or mathtext warning, as an error
        written, _ = write_report(source(runs, spec), tmp_path / "r.html", png=True)
    page = (tmp_path / "r.html").read_text()
    pc = section(page, "parallel-coordinates")
    assert "$SCRATCH/data_$\\frac{" in pc and "学习率" in pc  # drawn as written, as SVG text
    assert len(written) == 4
    # a CJK font from the system packages covers the glyphs: drawn, not boxes (matplotlib warns
    # "Glyph ... missing from font(s)" for every glyph no font in the family has)
    assert len(figure_rc()["font.family"]) > 1, (
        "no CJK font on this machine: run tests/install-system-deps.sh (fonts-wqy-microhei)"
    )
    with rc_context(figure_rc()), warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = Figure()
        fig.text(0.1, 0.5, metric + " 学习率")
        fig.savefig(io.BytesIO(), format="png")


def test_provenance_from_runs_submissions_and_lock_file(tmp_path: Path) -> None:
    sweep = tmp_path / "proj" / "sweeps" / "abc"
    (sweep / "slurm").mkdir(parents=True)
    lock = tmp_path / "proj" / "containers" / "requirements.lock"
    lock.parent.mkdir()
    lock.write_text("numpy==1.26.4 --hash=sha256:00\n")
    (sweep / "slurm" / "4242.sbatch").write_text("#!/bin/bash\n#SBATCH --array=0-5%2\nsrun true\n")
    line = {
        "job_id": "4242",
        "profile": "a100",
        "array": "0-5%2",
        "script": "slurm/4242.sbatch",
        "submitted_at": "2026-11-27T09:00:00+00:00",
        "image": "sweepkit.sif",
        "image_digest": "sha256:feed",
        "git_revision": "abc123",
        "launcher": "slurm",
    }
    (sweep / "slurm" / "submissions.jsonl").write_text(json.dumps(line) + "\n{torn")
    runs, spec = driven_sweep(4)
    for run in runs:
        run.record = {"git_revision": "abc123", "image_digest": "sha256:beef"}
    page = page_of(tmp_path, runs, spec, path=sweep, submissions=read_submissions(sweep / "slurm"))
    prov = section(page, "provenance")

    assert hashlib.sha256(lock.read_bytes()).hexdigest() in prov
    assert "sha256:feed" in prov and "sha256:beef" in prov and "2 different images" in prov
    assert "abc123" in prov and "#SBATCH --array=0-5%2" in prov
    assert "log_uniform_values" in prov  # the sweep definition


def test_png_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs, spec = driven_sweep(6)
    written, _ = write_report(source(runs, spec), tmp_path / "r.html", png=True)
    names = sorted(p.name for p in written)
    assert names == [
        "r-importance.png",
        "r-metric-per-epoch.png",
        "r-parallel-coordinates.png",
        "r.html",
    ]
    for path in written[1:]:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 600
            assert drawn_fraction(image) > 0.02
    # no run with a metric yet: no figure, and the CLI says so rather than writing nothing quietly
    sweep = store_sweep(tmp_path / "empty", {0.1: None})
    out = tmp_path / "e.html"
    assert main(["report", str(sweep), "--out", str(out), "--png"]) == 0
    assert not list(tmp_path.glob("e-*.png"))
    assert "--png: no figure to write yet" in capsys.readouterr().out
