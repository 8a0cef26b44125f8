"""Sweeps whose journal loses records, for the tests of their recovery from the sweep folder
(tests/jobs/sweeps/store/test_lost_records.py): agents simulated in-process with the store's own
API, writing a run's folder as the agent and the trainer write it (the parameter file by the
agent's own ``program_argv_env``; run.json with the state and exit code the trainer leaves),
and the journal cut or torn afterwards."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps import store
from sweepkit.jobs.sweeps.agent.launch import keep_param_file, program_argv_env
from sweepkit.jobs.sweeps.store.journal import LOCK_LIFETIME_S

# what the trainer's run.json says when its program ended so (crashed: killed while running)
RUN_JSON = {
    "finished": ("finished", 0),
    "failed": ("failed", 1),
    "stopped": ("stopped", 0),
    "preempted": ("preempted", 75),
    "crashed": ("running", None),
}
# long enough ago that a claim's lock and lease, and a token's, have long expired
LONG_AGO = 10 * (LOCK_LIFETIME_S + 10)


def grid(values: dict[str, list[Any]]) -> dict[str, Any]:
    return {
        "method": "grid",
        "metric": {"name": "acc", "goal": "maximize"},
        "command": ["${env}", "${interpreter}", "train.py", "${args}"],
        "parameters": {name: {"values": v} for name, v in values.items()},
    }


def launch(sweep: store.LocalSweep, claim: store.Claim, at: float | None = None) -> None:
    """What the agent writes before it starts the program: the run's parameter file (and the
    output log's header); ``at``: the time the files say they were written."""
    argv, env = program_argv_env(
        sweep.definition,
        sweep.sweep_id,
        sweep.path,
        claim.run_id,
        claim.run_dir,
        claim.attempt,
        claim.params,
    )
    log = claim.run_dir / "output.log"
    with open(log, "a") as f:
        f.write(f"=== sweepkit agent x on node: attempt {claim.attempt}\n{' '.join(argv)}\n")
    if at is not None:
        os.utime(env["WANDB_SWEEP_PARAM_PATH"], (at, at))


def end(
    sweep: store.LocalSweep,
    claim: store.Claim,
    me: store.AgentIdentity,
    state: str,
    at: float | None = None,
    record: bool = True,
) -> None:
    """The program ends in ``state``: its run.json written, then (``record``) its end record."""
    run_state, code = RUN_JSON[state]
    metric = float(len(claim.run_id) % 7)
    info = {"state": run_state, "exit_code": code, "epochs": [{"epoch": 1, "acc": metric}]}
    path = claim.run_dir / "run.json"
    path.write_text(json.dumps(info))
    if at is not None:
        os.utime(path, (at, at))
    if record:
        sweep.finish(claim, me, state, exit_code=code, metric=metric)
        if state != "preempted":  # as the agent does once a run is done
            keep_param_file(
                {
                    "WANDB_SWEEP_PARAM_PATH": str(param_path(sweep, claim)),
                    "SWEEPKIT_RUN_DIR": str(claim.run_dir.absolute()),
                }
            )


def param_path(sweep: store.LocalSweep, claim: store.Claim) -> Path:
    """Where program_argv_env writes the run's parameter file."""
    folder = claim.run_dir.absolute() / "wandb" / f"sweep-{sweep.sweep_id}"
    return folder / f"config-{claim.run_id}.yaml"


def cut(journal: Path, at: int, length: int | None = None) -> bytes:
    """The journal cut at byte ``at`` (``length``: only that many bytes taken out, a tear in
    the middle); returns what it held before."""
    data = journal.read_bytes()
    kept = data[:at] if length is None else data[:at] + data[at + length :]
    journal.write_bytes(kept)
    return data


def record_boundaries(journal: Path) -> list[int]:
    """The byte offsets at which each record's line starts, and the end."""
    data = journal.read_bytes()
    offsets = [0]
    for i, byte in enumerate(data):
        if byte == ord("\n"):
            offsets.append(i + 1)
    return offsets


def grid_point(params: dict[str, Any]) -> tuple[Any, ...]:
    """A run's swept values, comparable across runs."""
    return tuple(sorted((name, repr(v["value"])) for name, v in params.items()))
