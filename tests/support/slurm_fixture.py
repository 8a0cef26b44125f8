"""The session's one-node SLURM (tests/slurm/slurm-up.sh), and helpers to drive it.

``slurm`` starts munged, slurmctld and slurmd once per test session (installing the Debian
packages when missing, as on a fresh CI machine), points ``SLURM_CONF`` at them, and stops them
at the end if this session started them. A machine where SLURM cannot start (not root, no
apt-get, daemons that fail) skips the SLURM tests with the reason; nothing else skips them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
UP = REPO / "tests" / "slurm" / "slurm-up.sh"
DOWN = REPO / "tests" / "slurm" / "slurm-down.sh"


@dataclass(frozen=True)
class Slurm:
    conf: str

    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": self.conf}

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv), env=self.env(), capture_output=True, text=True, timeout=60, check=check
        )

    def active(self, job_id: str) -> list[str]:
        """Lines "ID STATE" of the job's tasks that are pending, running or completing."""
        out = self.run("squeue", "-h", "-r", "-j", job_id, "-o", "%i %T", check=False).stdout
        return [line for line in out.splitlines() if line.strip()]

    def wait_done(self, job_id: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.active(job_id):
            if time.monotonic() > deadline:
                self.run("scancel", job_id, check=False)
                raise AssertionError(f"job {job_id} still active after {timeout} s")
            time.sleep(0.5)

    def job_field(self, job_id: str, name: str) -> str:
        """One field (e.g. Restarts, JobState) of `scontrol show job`."""
        out = self.run("scontrol", "-o", "show", "job", job_id).stdout
        for item in out.split():
            key, _, value = item.partition("=")
            if key == name:
                return value
        raise KeyError(name)


def _up_already(conf: str) -> bool:
    if not Path(conf).is_file():
        return False
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%t"],
            env={**os.environ, "SLURM_CONF": conf},
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() in ("idle", "mix", "alloc")


def bring_up(script: Path, what: str) -> str:
    """Run a tests/slurm up script; its SLURM_CONF, or skip the test with the script's last lines
    (a machine where the daemons cannot start)."""
    try:
        result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.skip(f"{what} cannot start: {script.name} took over 600 s")
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-4:])
        pytest.skip(f"{what} cannot start on this machine: {tail}")
    return result.stdout.strip().split("=", 1)[1]


@pytest.fixture(scope="session")
def slurm() -> Iterator[Slurm]:
    if os.geteuid() != 0:
        pytest.skip("SLURM cannot start: tests/slurm/slurm-up.sh needs root (SlurmUser=root)")
    state = os.environ.get("SWEEPKIT_SLURM_DIR", "/tmp/sweepkit-slurm")
    conf = f"{state}/slurm.conf"
    was_up = _up_already(conf)
    yield Slurm(conf=bring_up(UP, "SLURM"))
    if not was_up:
        subprocess.run(["bash", str(DOWN)], capture_output=True, timeout=120)


# ----- a fast program that keeps the trainer's contract, for tests of sweep mechanics ---------
# It reads --key=value arguments, works in steps of step_s seconds, writes RUN_DIR/run.json like
# the trainer (running, then finished or preempted), checkpoints its step on SIGUSR1/SIGTERM and
# exits 75 (with --save_every_step=1 also after every step), and resumes from that checkpoint when
# run again in the same folder. It appends one line per event (with its host) to
# RUN_DIR/events.jsonl so tests can see what each attempt did, and where.
# A minimal valid profile for the tests' one-node SLURM: runtime none, two tasks at a time.
BASE: dict[str, Any] = {
    "partition": "debug",
    "time": "00:10:00",
    "cpus_per_task": 1,
    "concurrency": 2,
    "runtime": "none",
    "signal_lead_s": 60,
    "env": {"WANDB_MODE": "offline"},
}


def cluster(tmp_path: Path, **profiles: dict[str, Any]) -> str:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({"profiles": profiles}))
    return str(path)


FAST_PROGRAM = r"""
import json, os, signal, socket, sys, time
from datetime import datetime, timezone
from pathlib import Path

args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
steps, step_s = int(args.get("steps", 10)), float(args.get("step_s", 0.2))
run_dir = Path(os.environ["SWEEPKIT_RUN_DIR"])
run_dir.mkdir(parents=True, exist_ok=True)
ckpt = run_dir / "fast-checkpoint.json"
start = json.loads(ckpt.read_text())["step"] if ckpt.exists() else 0
stop = []
for sig in (signal.SIGUSR1, signal.SIGTERM):
    signal.signal(sig, lambda s, f: stop.append(signal.Signals(s).name))
now = lambda: datetime.now(timezone.utc).isoformat(timespec="milliseconds")
slurm = {k: os.environ.get(v) for k, v in (("job_id", "SLURM_JOB_ID"),
         ("array_job_id", "SLURM_ARRAY_JOB_ID"), ("array_task_id", "SLURM_ARRAY_TASK_ID"),
         ("restart_count", "SLURM_RESTART_COUNT"))}
started = now()

def event(kind, **extra):
    with open(run_dir / "events.jsonl", "a") as f:
        f.write(json.dumps({"event": kind, "at": time.time(), "pid": os.getpid(),
                            "host": socket.gethostname(), **slurm, **extra}) + "\n")

def record(state, step, code=None):
    info = {"schema": 1, "run_id": os.environ.get("WANDB_RUN_ID"),
            "sweep_id": os.environ.get("WANDB_SWEEP_ID"), "state": state, "config": args,
            "metric_names": ["Validation Accuracy"], "epochs": [],
            "summary": {"Validation Accuracy": float(args.get("score", 1))} if state == "finished" else {},
            "timings": {"started_at": started, "updated_at": now(),
                        "ended_at": now() if state != "running" else None},
            "host": socket.gethostname(), "pid": os.getpid(), "slurm": slurm,
            "git_revision": None, "image_digest": None,
            "resumed_from": {"epoch": 0, "step": start} if start else None,
            "attempt": int(os.environ.get("SWEEPKIT_ATTEMPT", 1)), "exit_code": code,
            "error": None, "step": step,
            "env": {k: v for k, v in os.environ.items()
                    if k.startswith(("SLURM_", "OMP_", "CUDA_VISIBLE_DEVICES", "SWEEPKIT_AGENT_SLOT",
                                     "PROFILE_"))}}
    tmp = run_dir / "run.json.tmp"
    tmp.write_text(json.dumps(info))
    os.replace(tmp, run_dir / "run.json")

event("start", step=start)
record("running", start)
for step in range(start, steps):
    if stop:
        ckpt.write_text(json.dumps({"step": step}))
        event("preempted", step=step, signal=stop[0])
        record("preempted", step, 75)
        sys.exit(75)
    time.sleep(step_s)
    record("running", step + 1)
    if args.get("save_every_step"):  # a checkpoint after each step: a killed run loses none
        (run_dir / "ckpt.tmp").write_text(json.dumps({"step": step + 1}))
        os.replace(run_dir / "ckpt.tmp", ckpt)
event("finished", step=steps)
record("finished", steps, 0)
"""


def sweepkit(
    *argv: str, env: dict[str, str] | None = None, timeout: float = 300, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """Run the sweepkit console script, by default from the checkout (the job's working
    directory, so that sweep commands find config/presets/)."""
    exe = Path(sys.executable).parent / "sweepkit"
    return subprocess.run(
        [str(exe), *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def make_sweep(root: Path, definition: dict[str, object], *options: str) -> str:
    """A local sweep folder under ``root`` made by `sweepkit sweep create [options]`; returns its
    path."""
    root.mkdir(parents=True, exist_ok=True)
    spec = root / "sweep.yaml"
    spec.write_text(yaml.safe_dump(definition))
    result = sweepkit("sweep", "create", "--root", str(root / "sweeps"), *options, str(spec))
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[0].strip()


def fast_sweep(
    root: Path,
    points: int,
    steps: int,
    step_s: float,
    options: tuple[str, ...] = (),
    **fixed: object,
) -> str:
    """A grid sweep of ``points`` runs of the fast program, each ``steps`` x ``step_s`` long;
    ``fixed``: more of its arguments; ``options``: of `sweep create` (--lease ...)."""
    program = root / "fast_program.py"
    program.write_text(FAST_PROGRAM)
    return make_sweep(
        root,
        {
            "program": str(program),
            "command": ["${env}", "${interpreter}", "${program}", "${args}"],
            "method": "grid",
            "metric": {"name": "Validation Accuracy", "goal": "maximize"},
            "parameters": {
                "score": {"values": list(range(points))},
                "steps": {"value": steps},
                "step_s": {"value": step_s},
                **{name: {"value": value} for name, value in fixed.items()},
            },
        },
        *options,
    )


def run_infos(ref: str) -> list[dict[str, object]]:
    """Every run.json of a sweep folder."""
    return [json.loads(p.read_text()) for p in sorted(Path(ref).glob("runs/*/run.json"))]


def events(ref: str) -> list[dict[str, object]]:
    out = []
    for path in sorted(Path(ref).glob("runs/*/events.jsonl")):
        out += [json.loads(line) for line in path.read_text().splitlines()]
    return sorted(out, key=lambda e: float(e["at"]))  # type: ignore[arg-type]


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """Most intervals open at one instant (end before start at equal times)."""
    points = sorted(
        [(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals], key=lambda p: (p[0], p[1])
    )
    most = current = 0
    for _, delta in points:
        current += delta
        most = max(most, current)
    return most


def iso_ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.3
) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def submitted_job(ref: str) -> dict[str, object]:
    """The last line of SWEEP/slurm/submissions.jsonl."""
    lines = (Path(ref) / "slurm" / "submissions.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


# Stands in for apptainer where there is none: records its arguments, the key's length (never
# the key) and PYTHONNOUSERSITE, one JSON line per call, to $FAKE_APPTAINER_LOG; then sleeps
# $FAKE_APPTAINER_SLEEP seconds (default 0) and exits 0.
FAKE_APPTAINER = """#!/bin/bash
# Stands in for apptainer on this machine: records how it was called, never the key itself.
python3 - "$@" <<'EOF'
import json, os, sys
key = os.environ.get("WANDB_API_KEY", "")
with open(os.environ["FAKE_APPTAINER_LOG"], "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "key_len": len(key), "nousersite": os.environ.get("PYTHONNOUSERSITE")}) + "\\n")
EOF
sleep "${FAKE_APPTAINER_SLEEP:-0}"
"""
