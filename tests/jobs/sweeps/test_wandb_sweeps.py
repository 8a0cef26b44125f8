"""Sweeps of a plain W&B script (no sweepkit import, no run.json) under the offline agent: every
metric the sweep knows comes from the runs' own W&B records. Real agents, real wandb offline runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sweep_fixtures import create, status_json, sweepkit, write_definition
from wandb_program import expected, write_wandb_program

from sweepkit.jobs.sweeps import store
from sweepkit.jobs.sweeps.agent import local as agent
from sweepkit.jobs.sweeps.wandb_run.records import RunRecords, segment_folders


def definition(metric_name: str = "Validation Accuracy", **parameters: Any) -> dict[str, Any]:
    """A grid over ``parameters`` (a list: swept; anything else: pinned) of the W&B script."""
    return {
        "program": "wandb_prog.py",
        "method": "grid",
        "metric": {"name": metric_name, "goal": "maximize"},
        "parameters": {
            k: {"values": v} if isinstance(v, list) else {"value": v} for k, v in parameters.items()
        },
    }


def run_sweep(
    tmp_path: Path, spec: dict[str, Any], env: dict[str, str] | None = None
) -> tuple[str, str]:
    write_wandb_program(tmp_path)
    sweep = create(tmp_path, write_definition(tmp_path, spec))
    result = sweepkit("agent", sweep, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return sweep, result.stdout


def ends(sweep: str, cwd: Path) -> dict[str, dict[str, Any]]:
    """The journal's end records by run (the last one of each)."""
    out = {}
    for line in (cwd / sweep / "journal.jsonl").read_text().splitlines():
        record = json.loads(line.split(" ", 1)[1])
        if record["t"] == "end":
            out[record["run"]] = record
    return out


def by(status: dict[str, Any], key: str) -> dict[Any, dict[str, Any]]:
    return {r["params"][key]: r for r in status["runs"]}


@pytest.mark.system  # starts processes
def test_grid_metrics_are_the_last_logged_values_then_report_and_sync(tmp_path: Path) -> None:
    sweep, out = run_sweep(tmp_path, definition(lr=[0.5, 1.0], epochs=3))
    assert "without a value" not in out
    assert not list((tmp_path / sweep).rglob("run.json")), "the script writes none"
    status = status_json(sweep, tmp_path)
    journal = ends(sweep, tmp_path)
    for lr, run in by(status, "lr").items():
        logged = expected(lr, 3)
        assert run["state"] == "finished" and run["metric"] == pytest.approx(logged[-1])
        assert len(run["epochs"]) == 3 and run["metric_source"] == "wandb"
        assert [e["Validation Accuracy"] for e in run["epochs"]] == pytest.approx(logged)
        end = journal[run["run_id"]]
        assert end["metric"] == pytest.approx(logged[-1]) and end["epochs"] == 3
        assert end["history"] == pytest.approx(logged)
        assert run["config"]["lr"] == lr and run["config"]["hidden_units"] == 32
    assert status["best"] == by(status, "lr")[1.0]["run_id"]

    report = sweepkit("report", sweep, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    page = (tmp_path / sweep / "report.html").read_text()
    assert all(run["run_id"] in page for run in status["runs"])
    assert "hidden_units: 32" in page, "the best run's config, from its W&B records"
    assert "<b>2</b> finished" in page

    plan = sweepkit("sync", sweep, "--project", "p", "--dry-run", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert "2 run(s) to upload" in plan.stdout
    for run in status["runs"]:
        (folder,) = segment_folders(tmp_path / run["run_dir"])
        assert f"# run {run['run_id']} (finished" in plan.stdout and folder.name in plan.stdout


@pytest.mark.system  # starts processes
def test_define_metric_max_ranks_by_the_max(tmp_path: Path) -> None:
    sweep, _ = run_sweep(
        tmp_path, definition(shape=["peak", "rise"], summary_max=1, epochs=3, lr=1.0)
    )
    status = status_json(sweep, tmp_path)
    runs = by(status, "shape")
    assert runs["peak"]["metric"] == pytest.approx(100.0)  # its max; it ended at 10
    assert runs["rise"]["metric"] == pytest.approx(90.0)
    assert runs["peak"]["summary"]["Validation Accuracy"] == {"max": 100.0}
    assert status["best"] == runs["peak"]["run_id"]


@pytest.mark.system  # starts processes
def test_a_nested_metric_and_a_summary_set_by_the_script(tmp_path: Path) -> None:
    spec = definition("val.acc", metric="nested", set_summary=[None, 42.0], epochs=2, lr=0.5)
    sweep, out = run_sweep(tmp_path, spec)
    assert "without a value" not in out
    runs = {r["params"]["set_summary"]: r for r in status_json(sweep, tmp_path)["runs"]}
    assert runs[None]["metric"] == pytest.approx(expected(0.5, 2)[-1])
    assert runs[42.0]["metric"] == 42.0
    assert [e["val.acc"] for e in runs[None]["epochs"]] == pytest.approx(expected(0.5, 2))


@pytest.mark.system  # starts processes
def test_bayes_with_run_cap_hands_the_metrics_to_the_engine(tmp_path: Path) -> None:
    spec = definition(epochs=2)
    spec.update(method="bayes", run_cap=3)
    spec["parameters"]["lr"] = {"min": 0.1, "max": 1.0}
    sweep, _ = run_sweep(tmp_path, spec)
    local = store.open_sweep(str(tmp_path / sweep))
    local.refresh()
    engine = local.engine_runs()
    assert len(engine) == 3
    for run in engine:
        lr = run.config["lr"]["value"]
        assert run.summary_metrics["Validation Accuracy"] == pytest.approx(90.0 * lr)
        assert run.metric_history("Validation Accuracy") == pytest.approx(expected(lr, 2))


@pytest.mark.system  # starts processes
def test_hyperband_stops_weak_runs_and_keeps_what_it_read(tmp_path: Path) -> None:
    spec = definition(lr=[0.9, 0.8, 0.1, 0.7], epochs=6, epoch_s=0.8)
    spec["early_terminate"] = {"type": "hyperband", "min_iter": 1, "eta": 2}
    sweep, out = run_sweep(tmp_path, spec)
    assert "hyperband stops run" in out
    runs = by(status_json(sweep, tmp_path), "lr")
    weak = runs[0.1]
    assert weak["state"] == "stopped", weak
    journal = ends(sweep, tmp_path)
    read = journal[weak["run_id"]]["history"]
    assert 1 <= len(read) < 6 and read == pytest.approx(expected(0.1, 6)[: len(read)])
    for lr in (0.9, 0.8):
        assert runs[lr]["state"] == "finished" and len(runs[lr]["epochs"]) == 6


@pytest.mark.system  # starts processes
def test_a_sigkilled_script_fails_with_the_history_flushed_so_far(tmp_path: Path) -> None:
    sweep, _ = run_sweep(tmp_path, definition(lr=0.5, epochs=5, kill_after=3))
    (run,) = status_json(sweep, tmp_path)["runs"]
    assert run["state"] == "failed" and run["exit_code"] == -9
    history = ends(sweep, tmp_path)[run["run_id"]]["history"]
    # rows 1 and 2 were complete and flushed; row 3 waits for a higher step that never came
    assert len(history) >= 2 and history == pytest.approx(expected(0.5, 5)[: len(history)])
    assert len(history) < 5


@pytest.mark.system  # starts processes
def test_exit_75_and_resume_join_both_segments(tmp_path: Path) -> None:
    sweep, out = run_sweep(tmp_path, definition(lr=0.5, epochs=4, preempt_after=2))
    assert "queued to resume" in out and "resuming run" in out
    (run,) = status_json(sweep, tmp_path)["runs"]
    assert run["state"] == "finished" and run["attempts"] == 2
    first = expected(0.5, 4)
    # the resumed attempt logged epoch 2 again (+0.5): a later segment's step replaces it
    joined = [first[0]] + [v + 0.5 for v in first[1:]]
    assert [e["Validation Accuracy"] for e in run["epochs"]] == pytest.approx(joined)
    assert run["metric"] == pytest.approx(joined[-1])
    folders = segment_folders(tmp_path / run["run_dir"])
    assert len(folders) == 2
    records = RunRecords(tmp_path / run["run_dir"])
    records.refresh()
    assert [s.exit_code for s in records.segments] == [75, 0]
    plan = sweepkit("sync", sweep, "--project", "p", "--dry-run", cwd=tmp_path)
    assert all(folder.name in plan.stdout for folder in folders)


@pytest.mark.system  # starts processes
def test_wandb_mode_disabled_is_named_in_the_warning(tmp_path: Path) -> None:
    _, out = run_sweep(tmp_path, definition(lr=0.5, epochs=1), env={"WANDB_MODE": "disabled"})
    warning = out.split("finished without a value for the sweep's metric")[1]
    assert "WANDB_MODE=disabled" in warning and "WANDB_MODE=offline" in warning


@pytest.mark.system  # starts processes
def test_the_agent_sets_the_flush_interval_unless_the_user_did(tmp_path: Path) -> None:
    write_wandb_program(tmp_path)
    sweep = create(tmp_path, write_definition(tmp_path, definition(lr=0.5)))
    local = store.open_sweep(str(tmp_path / sweep))
    claim = local.claim(store.AgentIdentity())
    assert not isinstance(claim, store.NoClaim)
    runner = agent.LocalAgent(local)
    _, env = runner._launch(claim)
    assert env["WANDB_X_TRANSACTION_LOG_FLUSH_INTERVAL"] == "1"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_X_TRANSACTION_LOG_FLUSH_INTERVAL", "5")
        _, env = runner._launch(claim)
    assert env["WANDB_X_TRANSACTION_LOG_FLUSH_INTERVAL"] == "5"
