"""What every compatibility test does: create a sweep the way the README does (the default,
relative ``sweeps/`` root), run it with ``sweepkit agent``, then read it back through status (JSON
and the table) and the report, all from the user's folder; and read a run's W&B log with W&B's
own reader, to compare."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from sweep_fixtures import sweepkit, write_definition

from sweepkit.jobs.report.analysis import format_value


def create_default_root(cwd: Path, definition: dict[str, Any]) -> str:
    """``sweepkit sweep create sweep.yaml`` with no --root: the README's relative sweeps/."""
    write_definition(cwd, definition)
    made = sweepkit("sweep", "create", "sweep.yaml", cwd=cwd)
    assert made.returncode == 0, made.stderr
    ref = made.stdout.strip()
    assert ref.startswith("sweeps/"), ref
    return ref


def run_agent(cwd: Path, ref: str, env: dict[str, str] | None = None) -> str:
    result = sweepkit("agent", ref, cwd=cwd, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "without a value for the sweep's metric" not in result.stdout, result.stdout[-4000:]
    return result.stdout


def status(cwd: Path, ref: str) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """``status --json --records`` (every run's own records read: its per-epoch rows, config) and
    the table's rows by run id (each row's cells by column)."""
    js = sweepkit("status", ref, "--json", "--records", cwd=cwd)
    assert js.returncode == 0, js.stderr
    table = sweepkit("status", ref, cwd=cwd)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    header = re.split(r"\s{2,}", lines[1].strip())
    rows = {}
    for line in lines[2:]:
        if line.startswith("runs: "):
            break
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return json.loads(js.stdout), rows


def report_page(cwd: Path, ref: str) -> str:
    made = sweepkit("report", ref, cwd=cwd, timeout=300)
    assert made.returncode == 0, made.stderr
    return (cwd / ref / "report.html").read_text()


def shown(value: float) -> str:
    """A metric as the status table and the report write it."""

    return format_value(value)


WANDB_CLI = str(Path(sys.executable).parent / "wandb")


def wandb_log(cwd: Path, run: dict[str, Any]) -> Path:
    """A run's W&B transaction log, through the link in its run folder wherever it was written."""
    (segment,) = (cwd / run["run_dir"] / "wandb").glob(f"*-{run['run_id']}")
    return segment / f"run-{run['run_id']}.wandb"


def wandb_records(log: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """W&B's own reading of a run's transaction log (``wandb leet inspect``, in the wandb-core
    binary), the oracle for what a program logged: state, config, summary and the program's
    command-line ``args`` as wandb recorded them, and the history rows in order."""

    def leet(*args: str) -> str:
        result = subprocess.run(
            [WANDB_CLI, "leet", "inspect", *args, str(log)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    records = json.loads(leet("--summary", "--json"))
    lines = [json.loads(line) for line in leet("--json").splitlines()]
    (records["args"],) = [
        r["environment"]["args"] for r in lines if "args" in r.get("environment", {})
    ]
    return records, [r["history"]["item"] for r in lines if r.get("type") == "history"]
