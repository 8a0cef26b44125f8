"""``sweepkit report``: analysis on constructed runs, the page and its edge cases, PNGs, the
W&B error path, and the page opened in headless Chromium (console errors, plots drawn).

Constructed runs are plain records with RunView's attributes; the end-to-end test makes a real
digits sweep with the store, the agent and the trainer.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from sweepkit.jobs.cli import main
from sweepkit.jobs.report.analysis import analyse, make_axis
from sweepkit.jobs.report.command import write_report
from sweepkit.jobs.report.source import SweepSource, read_submissions
from sweepkit.jobs.sweeps.state import RunView

pytestmark = pytest.mark.system  # starts processes (see tests/conftest.py)

PROJECT = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def Run(  # noqa: N802 - reads as the record it builds
    run_id: str,
    state: str,
    params: dict[str, Any],
    metric: float | None,
    epochs: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> RunView:
    """A run as the store gives it to the report, with plausible defaults."""
    defaults: dict[str, Any] = {
        "run_dir": Path("."),
        "host": "node1",
        "started_at": "2026-11-27T10:00:00+00:00",
        "ended_at": "2026-11-27T10:05:00+00:00",
        "attempts": 1,
    }
    return RunView(
        run_id, state, params, metric=metric, epochs=epochs or [], **{**defaults, **fields}
    )


METRIC = "Validation Accuracy"


def definition(parameters: dict[str, Any], goal: str = "maximize") -> dict[str, Any]:
    return {
        "method": "grid",
        "metric": {"name": METRIC, "goal": goal},
        "parameters": parameters,
        "command": ["${env}", "${interpreter}", "-m", "sweepkit.train", "${args}"],
    }


def curve(final: float, epochs: int = 3) -> list[dict[str, Any]]:
    return [
        {"epoch": e, METRIC: final * e / epochs, "Train Loss": 1.0 / e}
        for e in range(1, epochs + 1)
    ]


def driven_sweep(n: int = 24) -> tuple[list[RunView], dict[str, Any]]:
    """learning_rate and optimizer drive the metric; seed and batch_size do not."""
    rng = random.Random(1)
    runs = []
    for i in range(n):
        lr = 10 ** rng.uniform(-4, -1)
        params = {
            "learning_rate": lr,
            "seed": rng.randint(0, 1000),
            "batch_size": rng.choice([32, 64, 128]),
            "optimizer": rng.choice(["adam", "sgd"]),
        }
        final = 60 + 5 * (math.log10(lr) + 4) + (8 if params["optimizer"] == "adam" else 0)
        runs.append(Run(f"r{i:02d}", "finished", params, final, curve(final)))
    spec = {
        "learning_rate": {"distribution": "log_uniform_values", "min": 1e-4, "max": 0.1},
        "seed": {"distribution": "int_uniform", "min": 0, "max": 1000},
        "batch_size": {"values": [32, 64, 128]},
        "optimizer": {"values": ["adam", "sgd"]},
    }
    return runs, definition(spec)


def source(runs: list[RunView], spec: dict[str, Any], **kw: Any) -> SweepSource:
    return SweepSource(ref="sweeps/test", sweep_id="test1234", definition=spec, runs=runs, **kw)


def page_of(tmp_path: Path, runs: list[RunView], spec: dict[str, Any], **kw: Any) -> str:
    out = tmp_path / "report.html"
    write_report(source(runs, spec, **kw), out)
    return out.read_text()


def section(page: str, name: str) -> str:
    match = re.search(rf'<section id="{name}">(.*?)</section>', page, re.S)
    return match.group(1) if match else ""


# --- analysis ---------------------------------------------------------------------------------


def test_importance_ranks_parameters_that_drive_the_metric_above_those_that_do_not() -> None:
    runs, spec = driven_sweep()
    analysis = analyse(runs, spec)
    stats = {s.name: s for s in analysis.params}
    importance = {name: s.importance or 0.0 for name, s in stats.items()}
    assert importance["learning_rate"] > importance["seed"]
    assert importance["learning_rate"] > importance["batch_size"]
    assert importance["optimizer"] > importance["batch_size"]
    assert analysis.params[0].name == "learning_rate"
    assert sum(importance.values()) == pytest.approx(1.0)
    # Linear correlation on the log axis: the metric rises with log10(learning_rate).
    assert stats["learning_rate"].axis.log
    assert (stats["learning_rate"].correlation or 0.0) > 0.6
    levels = dict(stats["optimizer"].level_correlations)
    assert (levels["adam"] or 0.0) > 0 > (levels["sgd"] or 0.0)
    assert analysis.best is max(runs, key=lambda r: r.metric or 0.0)


def test_minimize_goal_picks_the_lowest_metric_as_best() -> None:
    runs, spec = driven_sweep(6)
    spec["metric"]["goal"] = "minimize"
    assert analyse(runs, spec).best is min(runs, key=lambda r: r.metric or 0.0)


def test_axes_categorical_for_non_numbers_log_for_wide_grids() -> None:
    assert make_axis("lr", [0.1, 0.01, 0.001]).log
    assert not make_axis("bs", [32, 64, 128]).log
    assert not make_axis("noise", [0.01, 0.5, 0.99], {"min": 0.0, "max": 1.0}).log
    mixed = make_axis("width", [1, "wide", None, True])
    assert mixed.categorical and set(mixed.levels) == {"1", "wide", "None", "true"}
    ordered = make_axis("opt", ["sgd", "adam"], {"values": ["sgd", "adam", "lamb"]})
    assert ordered.levels == ("sgd", "adam")
    assert [label for _, label in make_axis("bs", [32, 64, 128]).ticks()] == ["32", "64", "128"]


def test_a_metric_equal_in_every_run_ranks_nothing() -> None:
    runs = [Run(f"r{i}", "finished", {"lr": lr}, 50.0) for i, lr in enumerate([0.1, 0.01, 0.001])]
    (stat,) = analyse(runs, definition({"lr": {"values": [0.1, 0.01, 0.001]}})).params
    assert stat.importance == 0.0 and stat.correlation is None
    assert stat.note == f"every run has {METRIC} 50"


def test_counts_list_every_state_including_hyperband_stops() -> None:
    states = ["finished", "finished", "failed", "crashed", "stopped", "preempted", "pending"]
    runs = [
        Run(f"r{i}", s, {"x": i}, 1.0 if s == "finished" else None) for i, s in enumerate(states)
    ]
    counts = analyse(runs, definition({"x": {"values": list(range(7))}})).counts
    assert counts == {
        "finished": 2,
        "failed": 1,
        "crashed": 1,
        "stopped": 1,
        "preempted": 1,
        "pending": 1,
        "running": 0,
    }


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
    import warnings

    from matplotlib import rc_context
    from matplotlib.figure import Figure

    from sweepkit.jobs.report.figure_text import figure_rc

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
    import hashlib

    assert hashlib.sha256(lock.read_bytes()).hexdigest() in prov
    assert "sha256:feed" in prov and "sha256:beef" in prov and "2 different images" in prov
    assert "abc123" in prov and "#SBATCH --array=0-5%2" in prov
    assert "log_uniform_values" in prov  # the sweep definition


def test_png_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

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


# --- through the real store and the CLI --------------------------------------------------------


def store_sweep(
    root: Path, finals: dict[float, float | None], stopped: float | None = None
) -> Path:
    """A real store sweep over learning_rate whose runs end as given (None = failed), written as
    agents and the trainer would (claim, run.json, end record): no training involved."""
    from sweepkit.jobs.sweeps.definition import validate
    from sweepkit.jobs.sweeps.store import AgentIdentity, Claim, create_sweep

    spec = validate(
        definition({"learning_rate": {"values": list(finals)}, "epochs": {"value": 2}}),
        "test",
    )
    sweep = create_sweep(spec, root, source="test")
    me = AgentIdentity()
    for _ in finals:
        claim = sweep.claim(me)
        assert isinstance(claim, Claim)
        lr = claim.params["learning_rate"]["value"]
        final = finals[lr]
        state = "failed" if final is None else ("stopped" if lr == stopped else "finished")
        epochs = curve(final, 2) if final is not None else []
        record = {
            "schema": 1,
            "run_id": claim.run_id,
            "state": "failed" if final is None else "finished",
            "config": {"learning_rate": lr, "num_epochs": 2},
            "epochs": epochs,
            "summary": {METRIC: final} if final is not None else {},
            "timings": {"train_s": 1.5},
            "git_revision": "0123abcd",
            "image_digest": None,
            "error": "ValueError: loss is NaN" if final is None else None,
        }
        (claim.run_dir / "run.json").write_text(json.dumps(record))
        sweep.finish(claim, me, state, metric=final, exit_code=0 if final is not None else 1)
    return sweep.path


# The sweeps engine (imported by the store's claim) defines pydantic v1-style models.
@pytest.mark.filterwarnings("ignore:Support for class-based `config`")
@pytest.mark.filterwarnings("ignore:Valid config keys have changed")
def test_report_cli_on_a_store_sweep_with_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = store_sweep(tmp_path / "sweeps", {0.1: 70.0, 0.01: 90.0, 0.001: 80.0, 0.0001: None}, 0.1)
    out = tmp_path / "out" / "report.html"
    assert main(["report", str(path), "--out", str(out), "--png"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "best:" in printed and "learning_rate=0.01" in printed
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "report-importance.png",
        "report-metric-per-epoch.png",
        "report-parallel-coordinates.png",
        "report.html",
    ]
    page = out.read_text()
    counts = section(page, "counts")
    assert "<b>2</b> finished" in counts and "<b>1</b> stopped by hyperband" in counts
    assert "<b>1</b> failed" in counts and "4 runs of 4 planned" in page
    assert "--learning_rate=0.01" in section(page, "best") and "0123abcd" in page
    assert "loss is NaN" in section(page, "runs")
    assert "do not edit" in section(page, "provenance")  # sweep.yaml as the store wrote it
    # The default output lives in the sweep folder.
    assert main(["report", str(path)]) == 0
    assert (path / "report.html").is_file()


# --- CLI errors -------------------------------------------------------------------------------


def test_unknown_sweep_reference_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no sweep folder at" in err


def test_wandb_reference_without_the_cloud_is_one_line(tmp_path: Path) -> None:
    # The W&B cloud is unreachable from tests: only its error path is checked, with no API key
    # (so wandb fails before any network call).
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "WANDB_CONFIG_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "sweepkit.jobs.cli", "report", "ent/proj/abc123"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "W&B sweep ent/proj/abc123" in done.stderr
    assert "Traceback" not in done.stderr


def leftovers(root: Path) -> list[str]:
    """Temp files a write left behind anywhere under ``root``."""
    return [str(p) for p in root.rglob(".*") if ".tmp" in p.name]


@pytest.mark.filterwarnings("ignore:Support for class-based `config`")
@pytest.mark.filterwarnings("ignore:Valid config keys have changed")
def test_out_that_cannot_become_a_file_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = store_sweep(tmp_path / "sweeps", {0.1: 70.0, 0.01: 90.0})
    folder = tmp_path / "existing"
    folder.mkdir()
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "figs" / "r-importance.png").mkdir(parents=True)
    cases = [
        (["--out", str(folder)], f"--out {folder} is a folder; pass the HTML file to write"),
        (["--out", str(tmp_path / "afile" / "r.html")], "afile is not a folder"),
        (
            ["--out", str(tmp_path / "figs" / "r.html"), "--png"],
            "r-importance.png, where --png writes a figure, is a folder",
        ),
    ]
    for args, words in cases:
        assert main(["report", str(path), *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err, err
    assert list(folder.iterdir()) == [] and leftovers(tmp_path) == []
    assert [p.name for p in (tmp_path / "figs").iterdir()] == ["r-importance.png"]


def test_a_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    # A folder that appears at --out after the up-front check (or any failing rename).
    from sweepkit.train.errors import UserError

    out = tmp_path / "report.html"
    out.mkdir()
    runs = [Run("r1", "finished", {"learning_rate": 0.1}, 70.0, curve(70.0))]
    spec = definition({"learning_rate": {"values": [0.1]}})
    with pytest.raises(UserError, match=r"cannot write .*report\.html: Is a directory"):
        write_report(source(runs, spec), out)
    assert leftovers(tmp_path) == [] and list(out.iterdir()) == []


# --- in a browser -----------------------------------------------------------------------------


def drawn_fraction(image: Any) -> float:
    """Share of pixels that are not (near) the background white."""
    grey = image.convert("L")
    histogram = grey.histogram()
    return sum(histogram[:235]) / (grey.width * grey.height)


def need_chromium() -> None:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("headless Chromium missing: apt-get install chromium chromium-driver")


def open_in_chromium(html: Path, screenshot: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Console log entries, and for each figure its screenshot as a PIL image."""
    need_chromium()
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1300,900",
    ):
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.get(html.resolve().as_uri())
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1300, height + 120)
        driver.save_screenshot(str(screenshot))
        figures: dict[str, Any] = {}
        for element in driver.find_elements("css selector", "section figure svg"):
            name = element.find_element("xpath", "ancestor::section").get_attribute("id")
            figures[str(name)] = Image.open(io.BytesIO(element.screenshot_as_png))
        logs = driver.get_log("browser")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return logs, figures


def assert_opens_cleanly(html: Path, screenshot: Path, expected: set[str]) -> None:
    logs, figures = open_in_chromium(html, screenshot)
    assert [e for e in logs if e.get("level") in ("SEVERE", "ERROR")] == []
    assert set(figures) == expected
    for name, image in figures.items():
        assert image.width > 400 and image.height > 150, name
        assert drawn_fraction(image) > 0.02, f"{name} looks blank"
        assert len(image.convert("RGB").getcolors(1 << 20) or []) > 20, f"{name} has no colours"


@pytest.mark.browser
def test_constructed_report_in_chromium(tmp_path: Path) -> None:
    runs, spec = driven_sweep(12)
    out = tmp_path / "report.html"
    write_report(source(runs, spec), out)
    assert_opens_cleanly(
        out, tmp_path / "shot.png", {"parallel-coordinates", "importance", "metric-per-epoch"}
    )


DIGITS_SWEEP = """\
program: train
method: grid
metric: {name: Validation Accuracy, goal: maximize}
parameters:
  learning_rate: {values: [0.01, 0.001, 0.0001]}
  batch_size: {values: [32, 128]}
  num_epochs: {value: 1}
  # Kept small so that six real runs take about a minute on two CPU cores.
  model_name: {value: resnet18}
  limit_train_batches: {value: 3}
command: ["${env}", "${interpreter}", "-m", "sweepkit.train", "--config", "config/presets/digits.yaml", "${args}"]
"""


@pytest.mark.slow
@pytest.mark.browser
def test_real_digits_sweep_report_in_chromium(tmp_path: Path) -> None:
    """sweep create + agent + the trainer on digits (6 runs, 1 epoch), then the report in Chromium."""
    need_chromium()
    sweepkit = str(Path(sys.executable).parent / "sweepkit")
    definition_file = tmp_path / "sweep.yaml"
    definition_file.write_text(DIGITS_SWEEP)
    env = {**os.environ, "WANDB_MODE": "disabled"}

    def run(*args: str, timeout: float) -> str:
        done = subprocess.run(
            [sweepkit, *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout

    created = run(
        "sweep", "create", str(definition_file), "--root", str(tmp_path / "sweeps"), timeout=60
    )
    sweep = Path(created.splitlines()[0].strip())
    assert (sweep / "sweep.json").is_file()
    run("agent", str(sweep), timeout=600)
    out = tmp_path / "report.html"
    printed = run("report", str(sweep), "--out", str(out), "--png", timeout=120)
    assert "6 runs (6 finished)" in printed
    page = out.read_text()
    assert "<b>6</b> finished" in section(page, "counts")
    assert section(page, "runs").count('class="state-finished"') == 6
    assert_opens_cleanly(
        out, tmp_path / "screenshot.png", {"parallel-coordinates", "importance", "metric-per-epoch"}
    )


@pytest.mark.filterwarnings("ignore:Support for class-based `config`")
@pytest.mark.filterwarnings("ignore:Valid config keys have changed")
def test_readme_report_section_commands_run(tmp_path: Path) -> None:
    """docs/report.md, its top section ("(top)"): its bash blocks, run on a store sweep."""
    from docs_blocks import blocks as doc_blocks

    blocks = [b.body for b in doc_blocks("docs/report.md", "(top)", "bash") if b.tag == ""]
    assert blocks
    sweep = store_sweep(tmp_path / "sweeps", {0.1: 70.0, 0.01: 90.0, 0.001: 80.0})
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SWEEP": str(sweep),
    }
    for block in blocks:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, block + done.stdout + done.stderr
    assert (sweep / "report.html").is_file() and (tmp_path / "report.html").is_file()
    assert len(list(tmp_path.glob("report-*.png"))) == 3
