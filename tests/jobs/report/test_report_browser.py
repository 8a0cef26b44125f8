"""The report's page opened in headless Chromium: no console errors, every plot drawn; on constructed
runs and on the real digits sweep of `make demo` (the store, the agent and the trainer).
"""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from demo_sweep import DemoSweep
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
def test_real_digits_sweep_report_in_chromium(demo_sweep: DemoSweep, tmp_path: Path) -> None:
    """The report `make demo` wrote for its sweep (sweep create + agent + the trainer on digits,
    4 runs of 2 epochs; run once for the session by tests/support/demo_sweep.py), in Chromium."""
    need_chromium()
    sweep = PROJECT / demo_sweep.sweep
    assert "4 runs (4 finished)" in demo_sweep.output, demo_sweep.output
    out = sweep / "report.html"
    page = out.read_text()
    assert "<b>4</b> finished" in section(page, "counts")
    assert section(page, "runs").count('class="state-finished"') == 4
    assert_opens_cleanly(
        out, tmp_path / "screenshot.png", {"parallel-coordinates", "importance", "metric-per-epoch"}
    )
