"""sweepkit agent with real processes and the fast program: how it launches a run (as wandb agent
does), and every way a run ends: finished, failed, preempted (exit 75), SIGTERM to the agent,
kill -9 of the agent, a frozen node (lease expiry), hyperband stop."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import yaml
from sweep_fixtures import (
    create,
    epochs_reached,
    grid,
    start_agent,
    status_json,
    sweepkit,
    views,
    wait_for,
    write_definition,
    write_program,
)
from wandb_program import write_wandb_program

from sweepkit.jobs.sweeps.agent import cli as agent_mod


def one_run(tmp_path: Path, *extra_create: str, **values: list[object]) -> tuple[str, Path]:
    program = write_program(tmp_path)
    definition = grid({"lr": [0.5], **values}, program)
    sweep = create(tmp_path, write_definition(tmp_path, definition), *extra_create)
    return sweep, program


def the_run(sweep: str, cwd: Path) -> dict[str, object]:
    runs = status_json(sweep, cwd)["runs"]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.system  # starts processes
def test_launch_matches_wandb_agent(tmp_path: Path) -> None:
    program = write_program(tmp_path)
    definition = grid(
        {"lr": [0.25]},
        program,
        command=[
            "${env}",
            "${interpreter}",
            str(program),
            "${args}",
            "--json_file=${args_json_file}",
        ],
    )
    definition["parameters"]["wandb.mode"] = {"value": "offline"}
    definition["command"][-1] = "${args_json_file}"
    sweep = create(tmp_path, write_definition(tmp_path, definition))
    result = sweepkit("agent", sweep, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    run = the_run(sweep, tmp_path)
    run_dir = Path(str(run["run_dir"]))
    info = json.loads((tmp_path / run_dir / "run.json").read_text())
    env = info["env"]
    assert env["WANDB_RUN_ID"] == run["run_id"] == run_dir.name
    assert env["WANDB_SWEEP_ID"] == Path(sweep).name
    assert env["WANDB_MODE"] == "offline" and env["SWEEPKIT_RUN_DIR"] == env["WANDB_DIR"] == str(
        run_dir
    )
    assert env["WANDB_SWEEP_PARAM_PATH"] == str(
        run_dir / "wandb" / f"sweep-{Path(sweep).name}" / f"config-{run['run_id']}.yaml"
    )
    params = yaml.safe_load(info["handed"][env["WANDB_SWEEP_PARAM_PATH"]])
    assert params == {"wandb_version": 1, "lr": {"value": 0.25}, "wandb.mode": {"value": "offline"}}
    assert info["argv"][:2] == ["--lr=0.25", "--wandb.mode=offline"]
    assert json.loads(info["handed"][info["argv"][2]]) == {"lr": 0.25, "wandb.mode": "offline"}
    # once the program ended the agent removed them, and their folder: nothing else was in it
    assert not (tmp_path / run_dir / "wandb").exists()
    assert "fast program: run" in (tmp_path / run_dir / "output.log").read_text(), (
        "program output kept in the run folder"
    )
    assert "fast program: run" in result.stdout, "and echoed by the agent"
    assert "sweep complete: 1 of 1 runs done" in result.stdout


@pytest.mark.system  # starts processes
def test_wandb_mode_from_the_environment_wins(tmp_path: Path) -> None:
    sweep, _ = one_run(tmp_path)
    assert sweepkit("agent", sweep, cwd=tmp_path, env={"WANDB_MODE": "disabled"}).returncode == 0
    info = json.loads(
        (tmp_path / str(the_run(sweep, tmp_path)["run_dir"]) / "run.json").read_text()
    )
    assert info["env"]["WANDB_MODE"] == "disabled"


@pytest.mark.system  # starts processes
def test_failed_program_records_log_tail(tmp_path: Path) -> None:
    sweep, _ = one_run(tmp_path, fail=[1])
    result = sweepkit("agent", sweep, cwd=tmp_path)
    assert result.returncode == 0 and "failed (exit 1" in result.stdout
    run = the_run(sweep, tmp_path)
    assert (
        run["state"] == "failed"
        and run["exit_code"] == 1
        and "RuntimeError: boom" in str(run["error"])
    )
    # the failure is the agent's record, not the program's: its run.json stays as it left it
    info = json.loads((tmp_path / str(run["run_dir"]) / "run.json").read_text())
    assert info["state"] == "running" and info["exit_code"] is None and info["error"] is None
    table = sweepkit("status", sweep, cwd=tmp_path).stdout
    assert "RuntimeError: boom in the fast program" in table
    again = sweepkit("agent", sweep, cwd=tmp_path)
    assert "sweep complete: 1 of 1 runs done (1 failed)" in again.stdout, (
        "failed runs are not retried"
    )


@pytest.mark.system  # starts processes
def test_a_run_that_could_not_reach_wandb_says_so_in_status(tmp_path: Path) -> None:
    """WANDB_MODE=online on a node without network. The W&B server is out of reach here for
    real: a port nothing listens on (what W&B's cloud is from this machine, whose network is
    closed), with a key of the right shape and a short init_timeout."""

    program = write_wandb_program(tmp_path)
    sweep = create(tmp_path, write_definition(tmp_path, grid({"lr": [0.5]}, program)))
    env = {
        "WANDB_MODE": "online",
        "WANDB_BASE_URL": "http://127.0.0.1:9",
        "WANDB_API_KEY": "k" * 40,
        "WANDB_INIT_TIMEOUT": "5",
    }
    result = sweepkit("agent", sweep, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0 and "failed (exit 1" in result.stdout, result.stdout
    table = sweepkit("status", sweep, cwd=tmp_path).stdout
    assert "W&B could not reach its server (http://127.0.0.1:9)" in table, table
    assert "\x1b" not in table, "no terminal escape codes"
    run = the_run(sweep, tmp_path)
    assert "\x1b" not in str(run["error"]) and "CommError" in str(run["error"])


@pytest.mark.system  # starts processes
def test_a_sweep_whose_first_runs_all_fail_stops_its_agents(tmp_path: Path) -> None:
    program = write_program(tmp_path)
    definition = grid({"lr": [0.1, 0.2, 0.3, 0.4, 0.5], "fail": [1]}, program)
    sweep = create(tmp_path, write_definition(tmp_path, definition))
    first = sweepkit("agent", sweep, cwd=tmp_path)
    assert first.returncode == 1 and first.stdout.count("failed (exit 1") == 3, first.stdout
    assert "not taking runs: at least 3 runs of this sweep failed and none finished" in first.stdout
    assert "RuntimeError: boom in the fast program" in first.stdout.splitlines()[-1]
    counts = status_json(sweep, tmp_path)["counts"]
    assert counts["failed"] == 3 and counts["pending"] == 0  # two grid points never taken
    table = sweepkit("status", sweep, cwd=tmp_path).stdout
    assert table.count("RuntimeError: boom") == 1 and "failed 3 runs (" in table, table
    # a second agent (another array task) refuses at once; with the guard off it goes on
    assert sweepkit("agent", sweep, cwd=tmp_path).returncode == 1
    off = sweepkit("agent", sweep, cwd=tmp_path, env={"SWEEPKIT_MAX_INITIAL_FAILURES": "0"})
    assert off.returncode == 0 and "sweep complete: 5 of 5 runs done (5 failed)" in off.stdout
    bad = sweepkit("agent", sweep, cwd=tmp_path, env={"SWEEPKIT_MAX_INITIAL_FAILURES": "some"})
    assert bad.returncode == 2 and "SWEEPKIT_MAX_INITIAL_FAILURES='some'" in bad.stderr


@pytest.mark.system  # starts processes
def test_failures_after_a_finished_run_are_ordinary_results(tmp_path: Path) -> None:
    program = write_program(tmp_path)
    definition = grid({"lr": [0.1, 0.2, 0.3, 0.4], "fail": [0, 1], "epochs": [1]}, program)
    sweep = create(tmp_path, write_definition(tmp_path, definition))
    result = sweepkit("agent", sweep, cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert "sweep complete: 8 of 8 runs done (4 finished, 4 failed)" in result.stdout


@pytest.mark.system  # starts processes
def test_a_run_that_exits_2_stops_the_agent_at_once(tmp_path: Path) -> None:
    sweep, _ = one_run(tmp_path, fail=[2], epochs=[1, 2])
    result = sweepkit("agent", sweep, cwd=tmp_path)
    assert result.returncode == 1 and result.stdout.count("failed (exit 2") == 1, result.stdout
    assert "exited 2: a bad config or missing input" in result.stdout
    assert status_json(sweep, tmp_path)["counts"]["pending"] == 0
    assert len(status_json(sweep, tmp_path)["runs"]) == 1  # the second grid point is untouched


@pytest.mark.system  # starts processes
def test_an_exit_2_after_runs_worked_is_one_more_failed_run(tmp_path: Path) -> None:
    program = write_program(tmp_path)
    definition = grid({"lr": [0.1, 0.2], "fail": [0, 2], "epochs": [1]}, program)
    sweep = create(tmp_path, write_definition(tmp_path, definition))
    result = sweepkit("agent", sweep, cwd=tmp_path)
    assert result.returncode == 0, result.stdout  # a value-dependent refusal, not a broken sweep
    assert "sweep complete: 4 of 4 runs done (2 finished, 2 failed)" in result.stdout


@pytest.mark.system  # starts processes
def test_a_finished_run_without_the_sweeps_metric_is_warned_about(tmp_path: Path) -> None:
    program = write_program(tmp_path)
    definition = grid({"lr": [0.5], "epochs": [1]}, program)
    definition["metric"]["name"] = "Val Accuracy"  # the fast program logs "Validation Accuracy"
    sweep = create(tmp_path, write_definition(tmp_path, definition))
    result = sweepkit("agent", sweep, cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert "finished without a value for the sweep's metric 'Val Accuracy'" in result.stdout
    assert "Validation Accuracy" in result.stdout.split("finished without a value")[1]


@pytest.mark.system  # starts processes
def test_an_agent_started_where_the_commands_files_are_not_takes_no_run(tmp_path: Path) -> None:
    write_program(tmp_path)
    definition = grid({"lr": [0.5]}, Path("fastprog.py"))  # relative to where agents start
    definition["program"] = "fastprog.py"
    definition["command"] = ["${env}", "${interpreter}", "${program}", "${args}"]
    sweep = create(tmp_path, write_definition(tmp_path, definition))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = sweepkit("agent", str(tmp_path / sweep), cwd=elsewhere)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"program fastprog.py not found from {elsewhere}" in result.stderr
    assert status_json(sweep, tmp_path)["runs"] == []
    assert sweepkit("agent", sweep, cwd=tmp_path).returncode == 0


@pytest.mark.system  # starts processes
def test_exit_75_requeues_and_next_agent_resumes_same_run(tmp_path: Path) -> None:
    sweep, _ = one_run(tmp_path, preempt_once=[1])
    first = sweepkit("agent", "--count", "1", sweep, cwd=tmp_path)
    assert (
        first.returncode == 0
        and "preempted (exit 75" in first.stdout
        and "queued to resume" in first.stdout
    )
    run = the_run(sweep, tmp_path)
    assert run["state"] == "preempted" and run["queued"] and len(run["epochs"]) == 1
    second = sweepkit("agent", sweep, cwd=tmp_path)
    assert f"resuming run {run['run_id']} (attempt 2)" in second.stdout
    after = the_run(sweep, tmp_path)
    assert (
        after["run_id"] == run["run_id"] and after["state"] == "finished" and after["attempts"] == 2
    )
    info = json.loads((tmp_path / str(after["run_dir"]) / "run.json").read_text())
    assert info["resumed_from"] == {"epoch": 1, "step": 0} and [
        e["epoch"] for e in info["epochs"]
    ] == [1, 2, 3]


@pytest.mark.system  # starts processes
def test_sigterm_to_agent_preempts_and_another_agent_resumes(tmp_path: Path) -> None:
    sweep, _ = one_run(tmp_path, epochs=[20], epoch_s=[0.1])
    proc = start_agent(sweep, tmp_path, tmp_path / "a1.log")
    wait_for(lambda: epochs_reached(sweep, tmp_path, 2), 30, "two epochs")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 75, (tmp_path / "a1.log").read_text()
    run = the_run(sweep, tmp_path)
    assert run["state"] == "preempted" and run["queued"]
    log = (tmp_path / "a1.log").read_text()
    assert "stopping (TERM)" in log and "stopped by signal SIGTERM" in log
    second = sweepkit("agent", sweep, cwd=tmp_path)
    assert second.returncode == 0 and f"resuming run {run['run_id']}" in second.stdout
    after = the_run(sweep, tmp_path)
    assert after["state"] == "finished" and after["attempts"] == 2 and len(after["epochs"]) == 20


@pytest.mark.system  # starts processes
def test_kill_9_of_agent_mid_run_is_recovered_by_another_agent(tmp_path: Path) -> None:
    sweep, _ = one_run(tmp_path, "--lease", "30", epochs=[12], epoch_s=[0.1])
    proc = start_agent(sweep, tmp_path, tmp_path / "a1.log")
    wait_for(lambda: epochs_reached(sweep, tmp_path, 2), 30, "two epochs")
    proc.kill()  # kill -9: no chance to record anything; the program gets SIGTERM as its parent died
    proc.wait()
    run = the_run(sweep, tmp_path)
    lease = json.loads(next((tmp_path / sweep / "leases").glob("*.json")).read_text())
    wait_for(
        lambda: not _alive(lease["child_pid"]), 30, "the orphaned program to checkpoint and exit"
    )
    second = sweepkit(
        "agent", sweep, cwd=tmp_path
    )  # holder and program are gone: no need to wait out the lease
    assert (
        second.returncode == 0 and f"resuming run {run['run_id']} (attempt 2)" in second.stdout
    ), second.stdout
    after = the_run(sweep, tmp_path)
    assert after["state"] == "finished" and after["attempts"] == 2 and len(after["epochs"]) == 12
    journal = (tmp_path / sweep / "journal.jsonl").read_text()
    # the orphaned program checkpointed and recorded itself preempted: its own record says how
    # attempt 1 ended (not "crashed"), and it was resumed all the same
    assert '"reconciled_from":"run.json"' in journal and '"state":"preempted"' in journal
    assert "has no end record in the journal" in second.stderr


@pytest.mark.system  # starts processes
def test_frozen_node_lease_expires_and_run_is_handed_out_again(tmp_path: Path) -> None:
    """SIGSTOP agent and program (a hung node): pids alive, heartbeats stop; after the lease the run
    is crashed, handed out again, and finished by another agent."""
    sweep, _ = one_run(tmp_path, "--lease", "4", epochs=[30], epoch_s=[0.1])
    proc = start_agent(sweep, tmp_path, tmp_path / "a1.log")
    wait_for(lambda: epochs_reached(sweep, tmp_path, 1), 30, "an epoch")
    lease = json.loads(next((tmp_path / sweep / "leases").glob("*.json")).read_text())
    child = lease["child_pid"]
    for pid in (proc.pid, child):
        os.kill(pid, signal.SIGSTOP)
    try:
        early = sweepkit("agent", sweep, cwd=tmp_path)
        assert "nothing to claim" in early.stdout and "1 running on other agents" in early.stdout
        wait_for(
            lambda: views(sweep, tmp_path)[0].state == "crashed",
            10,
            "status to show the expired lease as crashed",
        )
        second = start_agent(sweep, tmp_path, tmp_path / "a2.log")
        wait_for(
            lambda: "resuming run" in (tmp_path / "a2.log").read_text(),
            30,
            "the run to be handed out again",
        )
    finally:
        for pid in (child, proc.pid):
            os.kill(pid, signal.SIGKILL)  # the node never comes back
            os.kill(pid, signal.SIGCONT)
    proc.wait()
    assert second.wait(timeout=60) == 0, (tmp_path / "a2.log").read_text()
    after = the_run(sweep, tmp_path)
    assert after["state"] == "finished" and after["attempts"] == 2
    assert "lease expired: no heartbeat" in (tmp_path / sweep / "journal.jsonl").read_text()


@pytest.mark.system  # starts processes
def test_hyperband_stops_weak_runs(tmp_path: Path) -> None:
    program = write_program(tmp_path)
    definition = grid(
        {"lr": [0.9, 0.8, 0.1, 0.7]},
        program,
        early_terminate={"type": "hyperband", "min_iter": 1, "eta": 2},
    )
    definition["parameters"]["epochs"] = {"value": 4}
    definition["parameters"]["epoch_s"] = {
        "value": 0.4
    }  # slower than the agent's poll, so a stop lands mid-run
    sweep = create(tmp_path, write_definition(tmp_path, definition))
    result = sweepkit("agent", sweep, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    runs = {r["params"]["lr"]: r for r in status_json(sweep, tmp_path)["runs"]}
    assert runs[0.1]["state"] == "stopped" and len(runs[0.1]["epochs"]) < 4, runs[0.1]
    assert all(
        runs[lr]["state"] == "finished" and len(runs[lr]["epochs"]) == 4 for lr in (0.9, 0.8)
    )
    assert (
        "hyperband stops run" in result.stdout
        and "sweep complete: 4 of 4 runs done" in result.stdout
    )


@pytest.mark.system  # starts processes
def test_count_and_a_finished_sweep_exits_at_once(tmp_path: Path) -> None:
    program = write_program(tmp_path)
    sweep = create(tmp_path, write_definition(tmp_path, grid({"lr": [0.1, 0.2, 0.3]}, program)))
    first = sweepkit("agent", "--count", "2", sweep, cwd=tmp_path)
    assert first.stdout.count("finished (exit 0") == 2 and "sweep complete" not in first.stdout
    assert sweepkit("agent", sweep, cwd=tmp_path).stdout.count("finished (exit 0") == 1
    started = time.time()
    surplus = sweepkit("agent", "--count", "1", sweep, cwd=tmp_path)
    assert surplus.returncode == 0 and surplus.stdout.strip().endswith(
        "sweep complete: 3 of 3 runs done (3 finished)"
    )
    assert time.time() - started < 20, "an agent on a finished sweep exits in seconds"


def test_wandb_reference_is_handed_to_wandb_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    """W&B's cloud is out of reach here: intercept the exec of `wandb agent` (the only mock)."""
    calls: list[list[str]] = []
    monkeypatch.setattr(agent_mod.os, "execv", lambda path, argv: calls.append(argv))
    args = agent_mod.argparse.Namespace(sweep="my-team/my-project/ab12cd34", count=1)
    agent_mod.run(args)
    assert calls and calls[0][1:] == ["agent", "--count", "1", "my-team/my-project/ab12cd34"]
    with pytest.raises(
        agent_mod.UserError, match="no sweep folder at sweeps/missing, nor a W&B reference"
    ):
        agent_mod.run(agent_mod.argparse.Namespace(sweep="sweeps/missing", count=None))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.system  # starts processes
def test_edited_sweep_yaml_is_checked_before_anything_runs(tmp_path: Path) -> None:
    sweep, _ = one_run(tmp_path)
    path = tmp_path / sweep / "sweep.yaml"
    os.chmod(path, 0o644)
    path.write_text(path.read_text().replace("method: grid", "method: gird"))
    result = sweepkit("agent", sweep, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert (
        "sweep.yaml: method: 'gird' is not allowed; choose one of: grid, random, bayes"
        in result.stderr
    )
    assert not list((tmp_path / sweep / "runs").iterdir()), "nothing ran"
