"""A learning-rate sweep in which some runs diverge to NaN or inf, with a tiny real W&B offline
program: every run finishes and is recorded, status ranks a finite run best and its JSON is strict,
the report renders, and a bayes sweep whose runs all diverged keeps proposing. Real agents, real
wandb offline runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from compat_fixtures import create_default_root, report_page, run_agent, status
from sweep_fixtures import sweepkit

# diverges: NaN above lr 0.5, inf above 0.3; else a finite loss that falls with lr
PROGRAM = """
import wandb
run = wandb.init()
lr = float(run.config.lr)
for epoch in (1, 2):
    loss = float("nan") if lr > 0.5 else float("inf") if lr > 0.3 else 1.0 / (lr * epoch)
    run.log({"loss": loss}, step=epoch)
if lr == 0.05:  # a string under the metric: counts as not logged, with one warning
    run.log({"loss": "diverged"}, step=3)
run.finish()
"""


def refuse(literal: str) -> Any:
    raise ValueError(f"{literal} is not JSON")


@pytest.mark.system
def test_a_lr_sweep_with_diverging_runs_finishes_ranks_and_keeps_proposing(tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text(PROGRAM)
    grid = {
        "program": "prog.py",
        "method": "grid",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"lr": {"values": [0.9, 0.05, 0.4, 0.2, 0.7]}},
    }
    ref = create_default_root(tmp_path, grid)
    said = run_agent(tmp_path, ref)
    assert said.count("that are not numbers (str: 'diverged')") == 1, said[-3000:]
    snap, rows = status(tmp_path, ref)
    raw = (tmp_path / ref / "journal.jsonl").read_text().splitlines()
    for line in raw:
        json.loads(line[9:], parse_constant=refuse)
    by_lr = {r["params"]["lr"]: r for r in snap["runs"]}
    assert [r["state"] for r in snap["runs"]] == ["finished"] * 5
    assert by_lr[0.9]["metric"] == "NaN" and by_lr[0.4]["metric"] == "Infinity"
    assert snap["best"] == by_lr[0.2]["run_id"]  # 2.5, the least finite loss
    assert by_lr[0.05]["metric"] == 10.0  # its last number, the string skipped
    assert rows[by_lr[0.9]["run_id"]]["loss"] == "nan"
    assert rows[by_lr[0.4]["run_id"]]["loss"] == "inf"
    out = sweepkit("status", ref, "--json", cwd=tmp_path)
    json.loads(out.stdout, parse_constant=refuse)
    page = report_page(tmp_path, ref)
    assert by_lr[0.2]["run_id"] in page and ">nan<" in page and ">inf<" in page

    bayes = {
        **grid,
        "method": "bayes",
        "run_cap": 3,
        "parameters": {"lr": {"min": 0.6, "max": 1.0}},
    }
    ref = create_default_root(tmp_path, bayes)
    run_agent(tmp_path, ref)
    snap, _ = status(tmp_path, ref)
    assert [r["state"] for r in snap["runs"]] == ["finished"] * 3  # proposals after NaN runs
    assert all(r["metric"] == "NaN" for r in snap["runs"]) and snap["best"] is None
