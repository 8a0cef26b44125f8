"""``sweepkit report`` through the real store and the CLI: a store sweep's page and PNGs, the
commands of docs/report.md, and the CLI's one-line errors (unknown sweep, W&B without the cloud,
an --out that cannot be written).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from docs_blocks import blocks as doc_blocks
from report_runs import Run, curve, definition, section, source, store_sweep

from sweepkit.jobs.cli import main
from sweepkit.jobs.report.command import write_report
from sweepkit.train.errors import UserError


def leftovers(root: Path) -> list[str]:
    """Temp files a write left behind anywhere under ``root``."""
    return [str(p) for p in root.rglob(".*") if ".tmp" in p.name]


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


@pytest.mark.system  # starts processes
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

    out = tmp_path / "report.html"
    out.mkdir()
    runs = [Run("r1", "finished", {"learning_rate": 0.1}, 70.0, curve(70.0))]
    spec = definition({"learning_rate": {"values": [0.1]}})
    with pytest.raises(UserError, match=r"cannot write .*report\.html: Is a directory"):
        write_report(source(runs, spec), out)
    assert leftovers(tmp_path) == [] and list(out.iterdir()) == []


@pytest.mark.system  # starts processes
@pytest.mark.filterwarnings("ignore:Support for class-based `config`")
@pytest.mark.filterwarnings("ignore:Valid config keys have changed")
def test_readme_report_section_commands_run(tmp_path: Path) -> None:
    """docs/report.md, its top section ("(top)"): its bash blocks, run on a store sweep."""

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
