"""Files written by an earlier version, read by this one: the golden sweep in tests/golden/ (a real
8-run grid of the plain W&B script, run offline by sweepkit 0.1.0 with wandb 0.31.0; its
make_golden.py says how) through the readers users meet: ``sweepkit status --json``, the store's
``open_sweep`` and the W&B records reader. The values are written out here, never recomputed:
if a change reads an old journal, snapshot or ``.wandb`` log differently, these tests fail."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweepkit.jobs.cli import main
from sweepkit.jobs.sweeps.store import create_sweep, open_sweep
from sweepkit.jobs.sweeps.wandb_run.metrics import RunMetricsReader, is_number
from sweepkit.jobs.sweeps.wandb_run.records import RunRecords

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "sweep-0.1.0-wandb-0.31.0"
METRIC = "Validation Accuracy"

# run id: (lr, preempt_after, kill_after), state, attempts, exit code, metric history (the sweep's
# metric as logged, a resumed attempt's rows replacing the first one's), W&B segment exit codes.
# Preempted runs were resumed under the same id (their resumed epochs log 0.5 more); killed runs
# (SIGKILL after epoch 3) fail with what wandb had flushed: two epochs.
RUNS: dict[str, tuple[tuple[float, int, int], str, int, int, list[float], list[int | None]]] = {
    "6qg6wdlx": ((0.2, 0, 0), "finished", 1, 0, [6.0, 12.0, 18.0], [0]),
    "d1cg9ftm": ((0.2, 2, 0), "finished", 2, 0, [6.0, 12.5, 18.5], [75, 0]),
    "wcazk535": ((0.5, 0, 0), "finished", 1, 0, [15.0, 30.0, 45.0], [0]),
    "31od7jn5": ((0.5, 2, 0), "finished", 2, 0, [15.0, 30.5, 45.5], [75, 0]),
    "5abbtjae": ((0.2, 0, 3), "failed", 1, -9, [6.0, 12.0], [None]),
    "xk034atz": ((0.2, 2, 3), "failed", 2, -9, [6.0, 12.5], [75, None]),
    "vx8wlg6u": ((0.5, 0, 3), "failed", 1, -9, [15.0, 30.0], [None]),
    "0gmo4oqf": ((0.5, 2, 3), "failed", 2, -9, [15.0, 30.5], [75, None]),
}
COUNTS = {
    "pending": 0,
    "running": 0,
    "finished": 4,
    "failed": 4,
    "crashed": 0,
    "preempted": 0,
    "stopped": 0,
}


@pytest.fixture(params=["snapshot and tail", "journal alone"])
def golden(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A copy of the golden sweep (readers may write beside it), read from its snapshot plus the
    journal after it, or with the snapshot removed, from the whole journal."""
    copy = tmp_path / GOLDEN.name
    shutil.copytree(GOLDEN, copy)
    if request.param == "journal alone":
        (copy / "journal.snapshot").unlink()
    return copy


def swept(params: dict[str, Any]) -> tuple[float, int, int]:
    return params["lr"], params["preempt_after"], params["kill_after"]


def test_status_json_of_the_golden_sweep(golden: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With ``--records``: every run's own W&B records read, its per-epoch rows among them."""
    assert main(["status", str(golden), "--json", "--records"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert err == ""
    assert doc["sweep_id"] == "t12ex6om"
    assert doc["method"] == "grid" and doc["metric"] == {"name": METRIC, "goal": "maximize"}
    assert doc["planned_runs"] == 8 and doc["complete"] is True
    assert doc["counts"] == COUNTS
    assert doc["best"] == "31od7jn5"  # the resumed lr=0.5 run: 45.5 beats 45.0
    got = {
        run["run_id"]: (
            swept(run["params"]),
            run["state"],
            run["attempts"],
            run["exit_code"],
            run["metric_history"],
        )
        for run in doc["runs"]
    }
    assert got == {run_id: expected[:5] for run_id, expected in RUNS.items()}
    for run in doc["runs"]:
        history = RUNS[run["run_id"]][4]
        assert run["metric"] == history[-1] and run["epoch_count"] == len(history)
        assert [row[METRIC] for row in run["epochs"]] == history
        assert run["metric_source"] == "wandb" and run["queued"] is False
        assert run["summary"] == {METRIC: history[-1], "Train Loss": 1 / len(history)}
        killed = run["state"] == "failed"
        assert (run["error"] is not None) == killed
        if killed:  # the output's last line: the program printed epoch 3 before its SIGKILL
            lr, preempt_after, _ = RUNS[run["run_id"]][0]
            assert run["error"].endswith(f"epoch 3: {90 * lr + (0.5 if preempt_after else 0):.3f}")


def test_status_json_shows_ended_runs_from_their_end_records(
    golden: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``--records``, no ended run's records are read: the document is the one every
    run's records give (the golden values above), but for what only those records hold: the
    per-epoch rows and the config (null), and the summary's values that are not numbers."""
    assert main(["status", str(golden), "--json", "--records"]) == 0
    whole = json.loads(capsys.readouterr().out)

    def not_read(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"an ended run's own records were read: {args}")

    monkeypatch.setattr(RunMetricsReader, "read", not_read)
    monkeypatch.setattr(RunMetricsReader, "run_json", not_read)
    assert main(["status", str(golden), "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    for run in whole["runs"]:
        run["epochs"] = run["config"] = None
        run["summary"] = {k: v for k, v in run["summary"].items() if is_number(v)}
    assert json.loads(out) == whole
    assert all(r["metric_source"] == "wandb" and r["metric_history"] for r in whole["runs"])
    assert main(["status", str(golden), "--records"]) == 2
    assert "--records: only with --json" in capsys.readouterr().err


def test_the_store_reads_ended_runs_from_their_end_records(golden: Path) -> None:
    sweep = open_sweep(golden)
    assert sweep.sweep_id == "t12ex6om" and sweep.metric_name == METRIC
    views = sweep.runs(read_ended=False)  # no run folder read: the journal's end records alone
    got = {
        v.run_id: (swept(v.params), v.state, v.attempts, v.exit_code, v.metric_history)
        for v in views
    }
    assert got == {run_id: expected[:5] for run_id, expected in RUNS.items()}
    for v in views:
        assert v.metric == v.metric_history[-1] and v.epoch_count == len(v.metric_history)
    assert sweep.counts(views) == COUNTS
    assert sweep.complete()


@pytest.mark.parametrize("run_id", sorted(RUNS))
def test_the_wandb_records_of_each_golden_run(run_id: str) -> None:
    (lr, preempt_after, kill_after), _, _, _, history, exit_codes = RUNS[run_id]
    records = RunRecords(GOLDEN / "runs" / run_id)
    records.refresh(final=True)
    assert records.found
    assert [segment.exit_code for segment in records.segments] == exit_codes
    assert records.exit_code == exit_codes[-1]
    steps = list(range(1, len(history) + 1))
    assert records.history(METRIC) == list(zip(steps, history, strict=True))
    assert records.history("Train Loss") == [(step, 1 / step) for step in steps]
    assert [row["_step"] for row in records.rows] == steps
    summary = records.summary
    assert sorted(summary) == ["Train Loss", METRIC, "_runtime", "_step", "_timestamp", "_wandb"]
    assert summary[METRIC] == history[-1] and summary["Train Loss"] == 1 / len(history)
    assert summary["_step"] == len(history) and summary["_wandb"] == {"runtime": 0}
    assert records.summary_value(METRIC) == history[-1]
    config = records.config
    assert (config["lr"], config["preempt_after"], config["kill_after"]) == (
        lr,
        preempt_after,
        kill_after,
    )
    assert config["epochs"] == 3
    assert records.run == {
        "run_id": run_id,
        "sweep_id": "t12ex6om",
        "project": "uncategorized",
        "entity": "",
    }


def test_a_resumed_runs_rows_join_both_segments_value_for_value() -> None:
    records = RunRecords(GOLDEN / "runs" / "31od7jn5")
    records.refresh(final=True)
    # epoch 2 was logged by both attempts: the resumed one's row (30.5, its own times) replaces it
    assert records.rows == [
        {
            "_step": 1,
            METRIC: 15,
            "Train Loss": 1,
            "_timestamp": 1796403601.1599617,
            "_runtime": 0.366503899,
        },
        {
            "_step": 2,
            "Train Loss": 0.5,
            "_timestamp": 1796403602.4226055,
            "_runtime": 0.1774969,
            METRIC: 30.5,
        },
        {
            "_step": 3,
            "Train Loss": 0.3333333333333333,
            "_timestamp": 1796403602.4233375,
            "_runtime": 0.18896176,
            METRIC: 45.5,
        },
    ]
    assert records.summary["_timestamp"] == 1796403602.4233375


def test_the_golden_sweeps_command_has_nothing_to_map(golden: Path) -> None:
    """Its definition (``program:``, W&B's default command) is read as 0.1.0 wrote it, silently."""
    sweep = open_sweep(golden)
    assert sweep.legacy_command_warning is None
    assert sweep.definition == yaml.safe_load((golden / "sweep.yaml").read_text())


# how sweepkit 0.1 ran its trainer (config/sweeps/digits_grid.yaml then), on two short runs
OLD_DEFINITION = {
    "method": "grid",
    "metric": {"name": "Validation Accuracy", "goal": "maximize"},
    "command": [
        "${env}",
        "${interpreter}",
        "-m",
        "train",
        "--config",
        "config/presets/digits.yaml",
        "${args}",
    ],
    "parameters": {
        "learning_rate": {"values": [0.003, 0.001]},
        "num_epochs": {"value": 1},
        "limit_train_batches": {"value": 1},
    },
}


@pytest.mark.system
def test_an_old_sweeps_train_command_runs_the_kits_trainer_with_one_warning(tmp_path: Path) -> None:
    """A sweep folder whose sweep.yaml says ``-m train`` (written here by the store, as 0.1 wrote
    it: the golden sweep above runs a plain script, so it has no such command), in a project
    folder whose own train.py would run instead if the command were left as it is."""
    os.symlink(Path(__file__).resolve().parents[3] / "config", tmp_path / "config")
    (tmp_path / "train.py").write_text('raise SystemExit("the user\'s train.py ran")\n')
    sweep = create_sweep(OLD_DEFINITION, tmp_path / "sweeps", source="sweep.yaml").path
    assert "- train\n" in (sweep / "sweep.yaml").read_text()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "SWEEPKIT_"))}
    env.pop("PYTHONPATH", None)
    sweepkit = str(Path(sys.executable).parent / "sweepkit")
    agent = subprocess.run(
        [sweepkit, "agent", str(sweep)],
        cwd=tmp_path,
        env={**env, "WANDB_SILENT": "true"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert agent.returncode == 0, agent.stdout + agent.stderr
    said = (agent.stdout + agent.stderr).splitlines()  # the agent's lines go to stdout
    warnings = [line for line in said if "names the kit's modules" in line]
    assert warnings == [
        "sweepkit agent: warning: this sweep's command (${env} ${interpreter} -m train --config "
        "config/presets/digits.yaml ${args}) names the kit's modules as before sweepkit 0.2; "
        "running it as ${env} ${interpreter} -m sweepkit.train --config "
        "config/presets/digits.yaml ${args}"
    ], "said once for the agent's two runs"
    assert "the user's train.py ran" not in agent.stdout + agent.stderr
    status = subprocess.run(
        [sweepkit, "status", str(sweep), "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert "warning" not in status.stderr, "only what runs the program says it"
    runs = json.loads(status.stdout)["runs"]
    assert [r["state"] for r in runs] == ["finished", "finished"]
    assert "- train\n" in (sweep / "sweep.yaml").read_text(), "the folder is left as it was"
