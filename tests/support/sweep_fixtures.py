"""Helpers shared by the sweep tests: a fast program that follows the trainer's contract, and runners.

The fast program is not a mock: it is a real process launched by the real agent, reading the same
``--key=value`` arguments and environment as ``python -m sweepkit.train`` and writing a run.json of the
same shape, with per-epoch "Validation Accuracy", checkpoints, resume, SIGTERM -> exit 75.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from sweepkit.jobs.sweeps import store

REPO = Path(__file__).resolve().parents[2]
SWEEPKIT = [sys.executable, "-m", "sweepkit.jobs.cli"]

FAST_PROGRAM = r"""
import json, os, signal, sys, time
args = {}
for a in sys.argv[1:]:
    if a.startswith("--") and "=" in a:
        k, v = a[2:].split("=", 1)
        args[k] = v
run_dir = os.environ["SWEEPKIT_RUN_DIR"]
os.makedirs(run_dir, exist_ok=True)
rj = os.path.join(run_dir, "run.json")
ck = os.path.join(run_dir, "ckpt.json")
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append("TERM"))
signal.signal(signal.SIGUSR1, lambda *a: stop.append("USR1"))
lr = float(args.get("lr", args.get("learning_rate", 0.1)))
n_epochs = int(float(args.get("epochs", 3)))
epoch_s = float(args.get("epoch_s", 0.05))
start = json.load(open(ck))["epoch"] if os.path.exists(ck) else 0
epochs = json.load(open(rj)).get("epochs", [])[:start] if os.path.exists(rj) else []
attempt = int(os.environ.get("SWEEPKIT_ATTEMPT", "1"))
env = {k: os.environ.get(k) for k in ("WANDB_SWEEP_ID", "WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH", "WANDB_DIR", "WANDB_MODE", "SWEEPKIT_RUN_DIR")}
# what the agent's parameter files held (the agent removes them once the program ended)
handed = {p: open(p).read() for p in [env["WANDB_SWEEP_PARAM_PATH"], *sys.argv[1:]] if p and os.path.isfile(p)}
def write(state, code=None, error=None):
    d = {"schema": 1, "run_id": os.environ["WANDB_RUN_ID"], "sweep_id": os.environ.get("WANDB_SWEEP_ID"), "state": state,
         "config": args, "metric_names": ["Validation Accuracy"], "epochs": epochs,
         "summary": {"Validation Accuracy": epochs[-1]["Validation Accuracy"]} if epochs else {},
         "timings": {}, "host": os.uname().nodename, "pid": os.getpid(), "slurm": {}, "attempt": attempt,
         "exit_code": code, "error": error, "argv": sys.argv[1:], "env": env, "handed": handed,
         "resumed_from": {"epoch": start, "step": 0} if start else None}
    open(rj + ".tmp", "w").write(json.dumps(d)); os.replace(rj + ".tmp", rj)
print(f"fast program: run {os.environ['WANDB_RUN_ID']} lr={lr} from epoch {start}", flush=True)
write("running")
if args.get("fail") == "1":
    print("Traceback (most recent call last):\nRuntimeError: boom in the fast program", flush=True)
    sys.exit(1)
if args.get("fail") == "2":  # what the trainer does on a bad config or missing input
    print("sweepkit train: error: unknown config key 'lr'", flush=True)
    sys.exit(2)
for e in range(start, n_epochs):
    t0 = time.time()
    while time.time() - t0 < epoch_s and not stop:
        time.sleep(0.01)
    if stop:
        break
    epochs.append({"epoch": e + 1, "Validation Accuracy": 100 * lr * (e + 1) / n_epochs, "Train Loss": 1.0 / (e + 1)})
    json.dump({"epoch": e + 1}, open(ck, "w"))
    write("running")
    if args.get("preempt_once") == "1" and attempt == 1 and e == 0:
        stop.append("self")
if stop:
    write("preempted", 75)
    print(f"fast program: stopping ({stop[0]}) after epoch {len(epochs)}", flush=True)
    sys.exit(75)
write("finished", 0)
"""


def write_program(folder: Path) -> Path:
    path = folder / "fastprog.py"
    path.write_text(FAST_PROGRAM)
    return path


def write_definition(folder: Path, definition: dict[str, Any], name: str = "sweep.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    return path


def sweepkit(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [*SWEEPKIT, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def start_agent(
    sweep: str, cwd: Path, log: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    with open(log, "wb") as out:
        return subprocess.Popen(
            [*SWEEPKIT, "agent", *extra, sweep],
            cwd=cwd,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def create(cwd: Path, definition_path: Path, *extra: str) -> str:
    result = sweepkit(
        "sweep", "create", str(definition_path), "--root", str(cwd / "sweeps"), *extra, cwd=cwd
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def status_json(sweep: str, cwd: Path) -> dict[str, Any]:
    """``status --json --records``: every run's own records read (its per-epoch rows, config)."""
    result = sweepkit("status", sweep, "--json", "--records", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def views(sweep: str, cwd: Path) -> list[Any]:
    """The sweep's runs read in this process (cheaper than sweepkit status --json in a poll loop)."""

    return store.open_sweep(str(cwd / sweep)).runs()


def epochs_reached(sweep: str, cwd: Path, n: int) -> bool:
    return any(len(v.epochs) >= n for v in views(sweep, cwd))


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def grid(values: dict[str, list[Any]], program: Path, **extra: Any) -> dict[str, Any]:
    return {
        "method": "grid",
        "metric": {"name": "Validation Accuracy", "goal": "maximize"},
        "command": ["${env}", "${interpreter}", str(program), "${args}"],
        "parameters": {k: {"values": v} for k, v in values.items()},
        **extra,
    }


def run_agents(sweep: str, cwd: Path, n: int, timeout: float = 180) -> list[str]:
    """Runs n agents on the sweep at once, each logging to cwd/agent<i>.log; asserts they all
    exit 0 and returns their logs."""
    procs = [start_agent(sweep, cwd, cwd / f"agent{i}.log") for i in range(n)]
    codes = [p.wait(timeout=timeout) for p in procs]
    logs = [(cwd / f"agent{i}.log").read_text() for i in range(n)]
    assert codes == [0] * n, "\n".join(logs)
    return logs
