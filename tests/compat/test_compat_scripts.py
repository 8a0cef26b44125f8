"""Plain W&B scripts of the shapes real programs take, unchanged under ``sweepkit sweep create`` +
``sweepkit agent`` with the README's default relative sweep root: a script that changes its
working folder (as Hydra does), passes ``dir=`` to ``wandb.init`` (as Lightning's WandbLogger
does with ``save_dir="."``), sets ``WANDB_DIR`` itself, logs with no ``step``, logs every batch
with an epoch-level metric, uses ``define_metric`` min and max, and ``/`` names. Each sweep's
metric must be what the script logged, ranked as W&B ranks it, in status and the report. Real
agents, real wandb offline runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from compat_fixtures import create_default_root, report_page, run_agent, shown, status
from sweep_fixtures import sweepkit
from sweeps.hyperband_stopping import hyperband_stop_runs
from sweeps.run import RunState, SweepRun
from wandb_program import expected, write_wandb_program

from sweepkit.jobs.sweeps import store
from sweepkit.jobs.sweeps.agent.local import LocalAgent


def grid(metric: str, goal: str, **parameters: Any) -> dict[str, Any]:
    return {
        "program": "wandb_prog.py",
        "method": "grid",
        "metric": {"name": metric, "goal": goal},
        "parameters": {
            k: {"values": v} if isinstance(v, list) else {"value": v} for k, v in parameters.items()
        },
    }


@pytest.mark.system  # starts processes
def test_scripts_that_chdir_and_pass_dir_keep_their_metrics(tmp_path: Path) -> None:
    write_wandb_program(tmp_path)
    # every run changes into sub/ first; dir="." then puts all their W&B runs in one folder
    spec = grid("Validation Accuracy", "maximize", lr=[0.5, 1.0], init_dir=[None, ".", "elsewhere"])
    # epoch_s: a run's W&B data stays open for more than one of the agent's polls (0.25 s), as any
    # real training run's does; one over sooner is found afterwards only where the agent saw it work
    spec["parameters"].update(chdir={"value": "sub"}, epochs={"value": 2}, epoch_s={"value": 0.3})
    ref = create_default_root(tmp_path, spec)
    run_agent(tmp_path, ref)
    snap, rows = status(tmp_path, ref)
    assert len(snap["runs"]) == 6
    page = report_page(tmp_path, ref)
    for run in snap["runs"]:
        want = expected(run["params"]["lr"], 2)[-1]
        assert run["state"] == "finished", run
        assert run["metric"] == pytest.approx(want) and run["metric_source"] == "wandb"
        assert run["metric_history"] == pytest.approx(expected(run["params"]["lr"], 2))
        assert rows[run["run_id"]]["Validation Accuracy"] == shown(want)
        assert rows[run["run_id"]]["epochs"] == "2"
        assert run["run_id"] in page and shown(want) in page
        # the W&B run is where the script put it, linked into the run folder under its own name
        (link,) = (tmp_path / run["run_dir"] / "wandb").glob(f"*-{run['run_id']}")
        written_to = {None: tmp_path / run["run_dir"] / "wandb", ".": tmp_path / "sub" / "wandb"}
        where = written_to.get(run["params"]["init_dir"], tmp_path / "sub/elsewhere/wandb")
        assert link.resolve().parent == where.resolve()
        assert (link / f"run-{run['run_id']}.wandb").is_file()
    assert len(list((tmp_path / "sub" / "wandb").glob("offline-run-*"))) == 2
    assert snap["best"] in {r["run_id"] for r in snap["runs"] if r["params"]["lr"] == 1.0}
    # sync uploads each run from where it was written, through its link
    plan = sweepkit("sync", ref, "--project", "p", "--dry-run", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert "6 run(s) to upload" in plan.stdout
    for run in snap["runs"]:
        (link,) = (tmp_path / run["run_dir"] / "wandb").glob(f"*-{run['run_id']}")
        assert f"# run {run['run_id']} (finished" in plan.stdout and link.name in plan.stdout


@pytest.mark.system  # starts processes
def test_batch_logging_no_step_and_own_wandb_dir(tmp_path: Path) -> None:
    write_wandb_program(tmp_path)
    # a swept parameter named epochs beside status's own epochs column
    spec = grid("Validation Accuracy", "maximize", batches=[0, 4], epochs=[2, 3])
    spec["parameters"].update(
        no_step={"value": 1},
        shape={"value": "peak"},
        lr={"value": 1.0},
        own_wandb_dir={"value": "mine"},
        epoch_s={"value": 0.3},
    )
    ref = create_default_root(tmp_path, spec)
    run_agent(tmp_path, ref)
    snap, rows = status(tmp_path, ref)
    for run in snap["runs"]:
        epochs, batches = run["params"]["epochs"], run["params"]["batches"]
        logged = expected(1.0, epochs, "peak")
        assert run["metric"] == pytest.approx(logged[-1]), run
        assert run["metric_history"] == pytest.approx(logged)
        assert len(run["epochs"]) == epochs * (batches + 1), "every row W&B holds"
        row = rows[run["run_id"]]
        assert row["epochs"] == str(epochs), "values of the metric, not steps"
        assert row["param:epochs"] == str(epochs) and row["batches"] == str(batches)
    assert len(list((tmp_path / "mine" / "wandb").glob("offline-run-*"))) == 4


@pytest.mark.system  # starts processes
def test_define_metric_min_and_slash_names_rank_as_w_and_b_does(tmp_path: Path) -> None:
    write_wandb_program(tmp_path)
    spec = grid("val/acc", "minimize", shape=["peak", "rise"], summary_min=[0, 1])
    spec["parameters"].update(metric={"value": "slash"}, lr={"value": 1.0}, epochs={"value": 3})
    ref = create_default_root(tmp_path, spec)
    run_agent(tmp_path, ref)
    snap, rows = status(tmp_path, ref)
    page = report_page(tmp_path, ref)
    for run in snap["runs"]:
        logged = expected(1.0, 3, run["params"]["shape"])
        # define_metric(summary="min") leaves {"min": v} in the summary: W&B ranks by it
        want = min(logged) if run["params"]["summary_min"] else logged[-1]
        assert run["metric"] == pytest.approx(want), run
        assert rows[run["run_id"]]["val/acc"] == shown(want)
        assert shown(want) in page
    best = next(r for r in snap["runs"] if r["run_id"] == snap["best"])
    assert best["params"]["shape"] == "peak"  # 10, the lowest


@pytest.mark.system  # starts processes
def test_hyperband_reads_runs_written_elsewhere_while_they_train(tmp_path: Path) -> None:
    """Hyperband needs each run's history live: the script writes it under a changed working
    folder with dir=".", where runs share one wandb/ folder. The weak run is stopped, as W&B's
    rule (sweeps.hyperband_stopping) says for the histories the agent read."""

    write_wandb_program(tmp_path)
    spec = grid("Validation Accuracy", "maximize", lr=[0.9, 0.8, 0.1, 0.7])
    spec["parameters"].update(
        epochs={"value": 6},
        epoch_s={"value": 0.8},
        chdir={"value": "sub"},
        init_dir={"value": "."},
    )
    spec["early_terminate"] = {"type": "hyperband", "min_iter": 1, "eta": 2}
    ref = create_default_root(tmp_path, spec)
    out = run_agent(tmp_path, ref)
    assert "hyperband stops run" in out
    snap, _ = status(tmp_path, ref)
    runs = {r["params"]["lr"]: r for r in snap["runs"]}
    assert runs[0.1]["state"] == "stopped"
    assert 1 <= len(runs[0.1]["metric_history"]) < 6
    for lr in (0.9, 0.8):
        assert runs[lr]["state"] == "finished" and len(runs[lr]["metric_history"]) == 6
    # W&B's rule on what the sweep holds: the weak run, had it gone on, is one it stops
    engine = [
        SweepRun(
            name=r["run_id"],
            state=RunState.finished if r["params"]["lr"] != 0.1 else RunState.running,
            history=[{"Validation Accuracy": v} for v in r["metric_history"]],
        )
        for r in snap["runs"]
        if r["params"]["lr"] != 0.7
    ]
    stopped = {r.name for r in hyperband_stop_runs(engine, spec)}
    assert stopped == {runs[0.1]["run_id"]}
    assert os.path.isdir(tmp_path / "sub" / "wandb")


@pytest.mark.system  # starts processes
def test_every_path_the_agent_hands_over_is_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As from wandb agent, whatever the (relative, default) sweep root: the parameter file, the
    args-json file, WANDB_DIR and the run and sweep folders."""

    write_wandb_program(tmp_path)
    spec = grid("Validation Accuracy", "maximize", lr=[0.5])
    spec["command"] = ["${env}", "${interpreter}", "${program}", "${args_json_file}"]
    ref = create_default_root(tmp_path, spec)
    monkeypatch.chdir(tmp_path)
    sweep = store.open_sweep(ref)
    claim = sweep.claim(store.AgentIdentity())
    assert isinstance(claim, store.Claim) and not claim.run_dir.is_absolute()
    claim.run_dir.mkdir(parents=True, exist_ok=True)
    argv, env = LocalAgent(sweep)._launch(claim)
    for key in ("WANDB_DIR", "WANDB_SWEEP_PARAM_PATH", "SWEEPKIT_RUN_DIR", "SWEEPKIT_SWEEP_DIR"):
        assert os.path.isabs(env[key]), (key, env[key])
    assert Path(env["WANDB_SWEEP_PARAM_PATH"]).is_file()
    assert os.path.isabs(argv[-1]) and Path(argv[-1]).is_file(), argv
