"""``epochs`` in ``status`` for a sweep without a metric: the distinct steps a run logged values
at (its own step metric when it declared one, as Lightning's ``WandbLogger`` does, else W&B's
``_step``), or a dash when it logged none. Real W&B offline runs under the real agent."""

from __future__ import annotations

from pathlib import Path

import pytest
from sweep_fixtures import create, sweepkit, write_definition

PROGRAM = r"""
import wandb
run = wandb.init()
kind = run.config.kind
if kind == "lightning":
    # WandbLogger: its own x-axis, and a row per log call (train and validation apart)
    run.define_metric("trainer/global_step")
    run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
    for epoch in range(3):
        step = 4 * (epoch + 1) - 1
        run.log({"val_acc": 0.5 + epoch / 10, "epoch": epoch, "trainer/global_step": step})
        run.log({"train_loss": 1.0 / (epoch + 1), "epoch": epoch, "trainer/global_step": step})
elif kind == "stepped":
    for epoch in range(3):  # two calls at one step make one row
        run.log({"train_loss": 1.0 / (epoch + 1)}, step=epoch)
        run.log({"val_acc": 0.5 + epoch / 10}, step=epoch)
run.finish()
"""


@pytest.mark.system
def test_epochs_without_a_metric_are_distinct_steps_or_a_dash(tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text(PROGRAM)
    definition = {
        "program": "prog.py",
        "method": "grid",
        "parameters": {"kind": {"values": ["lightning", "stepped", "silent"]}},
    }
    sweep = create(tmp_path, write_definition(tmp_path, definition))
    result = sweepkit("agent", sweep, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    table = sweepkit("status", sweep, cwd=tmp_path).stdout.splitlines()
    header = next(line.split() for line in table if line.startswith("run "))
    rows = [line.split() for line in table if line.split()[1:2] == ["finished"]]
    epochs = {row[header.index("kind")]: row[header.index("epochs")] for row in rows}
    assert epochs == {"lightning": "3", "stepped": "3", "silent": "-"}, table
