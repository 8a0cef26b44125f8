"""The Python API, as W&B's quickstart teaches it (``wandb.sweep(config)`` then
``wandb.agent(sweep_id, function=train, count=N)``), run from a folder that holds the user's own
``train.py`` and ``jobs/`` (the names of the kit's packages): ``sweepkit.sweep`` and
``sweepkit.agent`` run the function in-process once per run, its ``wandb.init()`` gets the run's
parameters offline, and nothing of the user's is imported in place of the kit's modules (nor the
kit's in place of the user's). Failures, preemption (exit 75) and hyperband stops are the CLI
agent's. Real wandb offline runs; sweepkit comes from the project's editable install, as a user
has it, not from PYTHONPATH."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from docs_blocks import blocks
from sweep_fixtures import write_definition
from wandb_program import expected, write_wandb_program

USER_TRAIN = r"""
import os, sys, time
import wandb

def train():
    run = wandb.init(config={"lr": 0.1, "epochs": 3, "epoch_s": 0.0})
    cfg = run.config
    for e in range(1, cfg.epochs + 1):
        time.sleep(cfg.epoch_s)
        run.log({"val": {"acc": 90 * cfg.lr * e / cfg.epochs}, "cwd": os.getcwd()})
    if cfg.lr == 0.3:
        raise ValueError("lr 0.3 diverges on this model")
    if cfg.lr == 0.4 and os.environ.get("SWEEPKIT_ATTEMPT") == "1":
        sys.exit(75)  # preempted: the agent queues it to resume
"""

USER_SCRIPT = r"""
import json, sys
from train import train  # the user's own train.py, imported before sweepkit
import jobs              # and the user's own jobs package
import sweepkit

config = json.loads(sys.argv[1])
sweep = sweepkit.sweep(config)
rc = sweepkit.agent(sweep, function=train)
import train as train_again, jobs as jobs_again
assert train_again.train is train and jobs_again.USER_JOBS, "the user's modules stayed theirs"
print("RESULT " + json.dumps({"sweep": sweep, "rc": rc}))
"""


def user_folder(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text(USER_TRAIN)
    (tmp_path / "jobs" / "sweeps").mkdir(parents=True)
    (tmp_path / "jobs" / "__init__.py").write_text("USER_JOBS = True\n")
    (tmp_path / "jobs" / "sweeps" / "__init__.py").write_text(
        "raise RuntimeError(\"the user's jobs.sweeps was imported in place of sweepkit's\")\n"
    )
    (tmp_path / "run.py").write_text(USER_SCRIPT)
    return tmp_path


def run_user_script(folder: Path, config: dict[str, Any]) -> tuple[dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "run.py", json.dumps(config)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    return json.loads(line.removeprefix("RESULT ")), proc.stdout + proc.stderr


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The console script, as a user runs it in that folder."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "sweepkit"), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.system  # starts processes
def test_function_api_from_a_folder_with_the_users_train_and_jobs(tmp_path: Path) -> None:
    folder = user_folder(tmp_path)
    config = {
        "method": "grid",
        "metric": {"name": "val.acc", "goal": "maximize"},
        "parameters": {"lr": {"values": [0.1, 0.2, 0.3, 0.4]}},
    }
    result, out = run_user_script(folder, config)
    assert result["rc"] == 0 and result["sweep"].startswith("sweeps/")
    snap = json.loads(cli(folder, "status", result["sweep"], "--json", "--records").stdout)
    runs = {r["params"]["lr"]: r for r in snap["runs"]}
    for lr in (0.1, 0.2, 0.4):
        assert runs[lr]["state"] == "finished", runs[lr]
        assert runs[lr]["metric"] == pytest.approx(90 * lr) and len(runs[lr]["metric_history"]) == 3
        assert runs[lr]["config"]["lr"] == lr, "wandb.init() got the run's parameters"
    assert runs[0.4]["attempts"] == 2, "exit 75: preempted, then resumed under the same id"
    assert runs[0.3]["state"] == "failed"
    assert runs[0.3]["metric"] == pytest.approx(90 * 0.3), "what it logged before it raised"
    table = cli(folder, "status", result["sweep"]).stdout
    assert f"failed {runs[0.3]['run_id']}: ValueError: lr 0.3 diverges on this model" in table
    assert snap["best"] == runs[0.4]["run_id"]
    report = cli(folder, "report", result["sweep"])
    assert report.returncode == 0, report.stderr
    assert "sweepkit agent: hyperband" not in out


@pytest.mark.system  # starts processes
def test_function_api_hyperband_stops_the_weak_run(tmp_path: Path) -> None:
    folder = user_folder(tmp_path)
    config = {
        "method": "grid",
        "metric": {"name": "val.acc", "goal": "maximize"},
        "parameters": {
            "lr": {"values": [0.9, 0.8, 0.1, 0.7]},
            "epochs": {"value": 6},
            "epoch_s": {"value": 0.8},
        },
        "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 2},
    }
    result, out = run_user_script(folder, config)
    assert "hyperband stops run" in out
    snap = json.loads(cli(folder, "status", result["sweep"], "--json").stdout)
    runs = {r["params"]["lr"]: r for r in snap["runs"]}
    assert runs[0.1]["state"] == "stopped" and 1 <= len(runs[0.1]["metric_history"]) < 6
    for lr in (0.9, 0.8):
        assert runs[lr]["state"] == "finished" and len(runs[lr]["metric_history"]) == 6


@pytest.mark.system  # starts processes
def test_the_readme_python_example_runs_as_shown(tmp_path: Path) -> None:
    """The Python block of docs/sweeps.md ("From Python: the Python API"), run as a user's script."""

    (python,) = blocks("docs/sweeps.md", "From Python: the Python API", "python")
    block = python.body
    user_folder(tmp_path)  # beside the user's own train.py and jobs/
    (tmp_path / "example.py").write_text(block)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "example.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (ref,) = [p.relative_to(tmp_path) for p in (tmp_path / "sweeps").iterdir()]
    snap = json.loads(cli(tmp_path, "status", str(ref), "--json").stdout)
    metrics = sorted(r["metric"] for r in snap["runs"] if r["state"] == "finished")
    assert metrics == pytest.approx([0.9, 9.0])


PROGRAM_SCRIPT = r"""
import json, os, signal, sys, threading
import sweepkit

sweep = sweepkit.sweep(sys.argv[1])  # a sweep YAML's path, with its own program
rc = sweepkit.agent(sweep, count=1)  # no function: the program runs as under sweepkit agent
print("RESULT " + json.dumps({"sweep": sweep, "rc": rc}))
"""

SIGNAL_SCRIPT = r"""
import json, os, signal, threading, time
import wandb
import sweepkit

def train():
    run = wandb.init(config={"lr": 0.1})
    run.log({"acc": 1.0})
    # the cluster preempts the job: SIGTERM to this process while the function runs
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
    for _ in range(600):
        time.sleep(0.05)

sweep = sweepkit.sweep({"method": "grid", "metric": {"name": "acc", "goal": "maximize"},
                        "parameters": {"lr": {"values": [0.1, 0.2]}}})
rc = sweepkit.agent(sweep, function=train)
print("RESULT " + json.dumps({"sweep": sweep, "rc": rc}))
"""


@pytest.mark.system  # starts processes
def test_agent_without_a_function_runs_the_sweeps_program(tmp_path: Path) -> None:
    folder = user_folder(tmp_path)
    write_wandb_program(folder)
    write_definition(
        folder,
        {
            "program": "wandb_prog.py",
            "method": "grid",
            "metric": {"name": "Validation Accuracy", "goal": "maximize"},
            "parameters": {"lr": {"values": [0.5]}, "epochs": {"value": 2}},
        },
    )
    (folder / "run.py").write_text(PROGRAM_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "run.py", "sweep.yaml"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "sweepkit agent: starting run" in proc.stdout
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    result = json.loads(line.removeprefix("RESULT "))
    assert result["rc"] == 0
    (run,) = json.loads(cli(folder, "status", result["sweep"], "--json").stdout)["runs"]
    assert run["state"] == "finished" and run["metric"] == pytest.approx(expected(0.5, 2)[-1])


@pytest.mark.system  # starts processes
def test_a_signal_preempts_the_functions_run_and_the_agent_exits_75(tmp_path: Path) -> None:
    folder = user_folder(tmp_path)
    (folder / "run.py").write_text(SIGNAL_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "run.py"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    result = json.loads(line.removeprefix("RESULT "))
    assert result["rc"] == 75, "stopped by a signal while a run was preempted"
    (run,) = json.loads(cli(folder, "status", result["sweep"], "--json").stdout)["runs"]
    assert run["state"] == "preempted" and run["queued"], "queued to resume under its id"
    assert run["metric"] == 1.0


LEASE_SCRIPT = r"""
import os, sys, time
import wandb
import sweepkit

def train():
    run = wandb.init(config={"lr": 0.1})
    steps = 600 if os.environ["SWEEPKIT_ATTEMPT"] == "1" else 3  # a long first attempt
    for step in range(steps):
        run.log({"acc": float(step)})
        time.sleep(0.05)

if sys.argv[1] == "create":
    print("SWEEP " + sweepkit.sweep({"method": "grid", "metric": {"name": "acc", "goal": "maximize"},
                                     "parameters": {"lr": {"values": [0.1]}}}, lease_s=4))
else:
    print("RC " + str(sweepkit.agent(sys.argv[1], function=train, count=1)), flush=True)
"""


@pytest.mark.system  # starts processes
def test_a_frozen_function_agent_loses_its_lease_and_another_finishes_the_run(
    tmp_path: Path,
) -> None:
    """SIGSTOP the process running the function (a hung node): its heartbeats stop, the run is
    handed to another agent after the lease; when the first wakes up, it sees its lease ran out,
    stops its function's run and records nothing, as the CLI agent does."""

    folder = user_folder(tmp_path)
    (folder / "lease.py").write_text(LEASE_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def python(*args: str, **kw: Any) -> Any:
        return subprocess.run(
            [sys.executable, "lease.py", *args],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            **kw,
        )

    made = python("create")
    assert made.returncode == 0, made.stderr
    ref = made.stdout.split("SWEEP ")[1].strip()
    with open(tmp_path / "a1.log", "w") as log:
        first = subprocess.Popen(
            [sys.executable, "lease.py", ref],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "starting run" not in (tmp_path / "a1.log").read_text():
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.2)
        time.sleep(1.0)
        first.send_signal(signal.SIGSTOP)
        time.sleep(5.0)  # past the 4 s lease
        second = python(ref)
        assert second.returncode == 0 and "RC 0" in second.stdout, second.stdout + second.stderr
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=120) == 0
    out = (tmp_path / "a1.log").read_text()
    assert "its lease ran out" in out and "another agent ended the attempt" in out, out[-2000:]
    assert "declared it crashed" not in out and "another agent has it now" in out, out[-2000:]
    (run,) = json.loads(cli(folder, "status", ref, "--json").stdout)["runs"]
    assert run["state"] == "finished" and run["attempts"] == 2, run
