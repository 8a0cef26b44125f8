"""The report's page opened in headless Chromium: no console errors, every plot drawn; on constructed
runs and on a real digits sweep made with the store, the agent and the trainer.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from report_runs import (
    drawn_fraction,
    driven_sweep,
    section,
    source,
)
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from sweepkit.jobs.report.command import write_report

PROJECT = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def need_chromium() -> None:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("headless Chromium missing: apt-get install chromium chromium-driver")


def open_in_chromium(html: Path, screenshot: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Console log entries, and for each figure its screenshot as a PIL image."""
    need_chromium()

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


@pytest.mark.browser
def test_constructed_report_in_chromium(tmp_path: Path) -> None:
    runs, spec = driven_sweep(12)
    out = tmp_path / "report.html"
    write_report(source(runs, spec), out)
    assert_opens_cleanly(
        out, tmp_path / "shot.png", {"parallel-coordinates", "importance", "metric-per-epoch"}
    )


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
