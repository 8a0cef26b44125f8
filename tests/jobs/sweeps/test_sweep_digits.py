"""The real trainer on digits through whole sweeps, marked slow: the README demo's grid with
status and sync, and hyperband stopping the weak run. (Two agents sharing a sweep are here in the
hyperband test; with the fast program, in test_sweep_e2e.py.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from demo_sweep import DemoSweep
from sweep_fixtures import (
    REPO,
    create,
    start_agent,
    status_json,
    sweepkit,
)

from sweepkit.jobs.sweeps.wandb_run.records import RunRecords


def _project_copy(tmp_path: Path) -> Path:
    """The trainer runs from the project root (config/, train/); sweeps go under the copy."""
    work = tmp_path / "project"
    work.mkdir()
    for name in ("config", "train"):
        os.symlink(REPO / name, work / name)
    return work


@pytest.mark.slow
def test_digits_grid_end_to_end_with_status_and_sync(demo_sweep: DemoSweep) -> None:
    """The README demo's sweep (`make demo`, run once for the session by
    tests/support/demo_sweep.py): a 4-run digits grid through the real trainer; its status, run
    folders and W&B records agree, and sync --dry-run plans its upload."""
    work = REPO
    sweep = demo_sweep.sweep
    assert sweep.startswith("sweeps/") and "next: sweepkit agent" in demo_sweep.output
    assert "sweep complete: 4 of 4 runs done (4 finished)" in demo_sweep.output
    assert demo_sweep.output.count("starting run") == 4, demo_sweep.output
    status = status_json(sweep, work)
    assert status["counts"]["finished"] == 4 and status["complete"] and status["best"]
    for run in status["runs"]:
        info = json.loads((work / run["run_dir"] / "run.json").read_text())
        assert (
            info["state"] == "finished"
            and info["sweep_id"] == Path(sweep).name
            and info["run_id"] == run["run_id"]
        )
        assert info["config"]["learning_rate"] == run["params"]["learning_rate"], (
            "the swept value is what trained"
        )
        assert (
            info["config"]["batch_size"] == run["params"]["batch_size"] and len(info["epochs"]) == 2
        )
        assert run["metric"] == info["summary"]["Validation Accuracy"]
        # a finished run keeps its final weights only: at most 60 MB, not 270 MB of checkpoints
        folder = work / run["run_dir"]
        assert [p.name for p in (folder / "checkpoints").iterdir()] == ["final.pt"]
        assert sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) <= 60 * 2**20
        # the trainer's run.json and its W&B records (what the sweep ranks by) agree
        records = RunRecords(work / run["run_dir"])
        records.refresh()
        assert run["metric_source"] == "wandb" and records.exit_code == 0
        logged = records.history("Validation Accuracy")
        assert logged == [(e["epoch"], e["Validation Accuracy"]) for e in info["epochs"]]
        assert records.summary_value("Validation Accuracy") == run["metric"]
        assert records.config["learning_rate"] == info["config"]["learning_rate"]
        assert len(run["epochs"]) == len(info["epochs"]) == 2
    table = sweepkit("status", sweep, cwd=work)
    assert (
        table.returncode == 0
        and "runs: 4 finished (of 4 planned)" in table.stdout
        and "best:" in table.stdout
    )
    plan = sweepkit(
        "sync", sweep, "--project", "sweepkit-demo", "--entity", "my-team", "--dry-run", cwd=work
    )
    assert plan.returncode == 0, plan.stderr
    assert "4 run(s) to upload" in plan.stdout and "dry run: nothing uploaded" in plan.stdout
    # runs of a local sweep do not name its id as their W&B sweep (W&B's server would refuse them)
    assert "warning" not in plan.stderr, plan.stderr
    commands = [line.split() for line in plan.stdout.splitlines() if " sync --project " in line]
    assert len(commands) == 4
    for command in commands:
        assert command[1:6] == ["sync", "--project", "sweepkit-demo", "--entity", "my-team"]
        assert all("/wandb/offline-run-" in path and (work / path).is_dir() for path in command[6:])
    assert not (work / sweep / "synced.json").exists(), "a dry run records nothing"


@pytest.mark.slow
def test_hyperband_stops_the_weak_run_of_a_real_digits_sweep(tmp_path: Path) -> None:
    work = _project_copy(tmp_path)
    definition = yaml.safe_load((REPO / "config" / "sweeps" / "digits_grid.yaml").read_text())
    definition["early_terminate"] = {"type": "hyperband", "min_iter": 1, "eta": 2}
    # two learning rates that learn and one that cannot; the weak one comes last in grid order
    definition["parameters"] = {
        "learning_rate": {"values": [0.003, 0.002, 1.0e-7]},
        "num_epochs": {"value": 2},
    }
    path = work / "hb.yaml"
    path.write_text(yaml.safe_dump(definition))
    sweep = create(work, path)
    # two agents: the good runs train side by side, the weak one starts when one of them is done,
    # and after its first epoch it is the worst of three at hyperband's first band
    procs = [
        start_agent(sweep, work, work / f"hb{i}.log", env={"WANDB_MODE": "disabled"})
        for i in range(2)
    ]
    assert [p.wait(timeout=900) for p in procs] == [0, 0]
    logs = "".join((work / f"hb{i}.log").read_text() for i in range(2))
    runs = {r["params"]["learning_rate"]: r for r in status_json(sweep, work)["runs"]}
    weak = runs[1.0e-7]
    assert weak["state"] == "stopped" and len(weak["epochs"]) == 1, (weak, logs[-3000:])
    assert "hyperband stops run" in logs
    assert all(
        runs[lr]["state"] == "finished" and len(runs[lr]["epochs"]) == 2 for lr in (0.003, 0.002)
    )
    info = json.loads((work / weak["run_dir"] / "run.json").read_text())
    assert info["state"] == "preempted" and info["exit_code"] == 75, (
        "the trainer checkpointed on SIGTERM"
    )
