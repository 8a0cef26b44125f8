"""Write a golden sweep: files made by this version of sweepkit and of wandb, which every later
version must still read (tests/jobs/sweeps/test_golden.py reads them through the public readers).

    python tests/golden/make_golden.py tests/golden/sweep-<sweepkit version>-wandb-<wandb version>

Run it into a new folder when the store's files or wandb's transaction log change; never rewrite
an existing folder (its point is that it was written by an older version). It needs no network.

What it makes: a grid of 8 runs of the plain W&B script tests/support/wandb_program.py, offline,
through ``sweepkit sweep create`` and ``sweepkit agent``: lr 0.2 or 0.5, 3 epochs, preempted (exit
75) after epoch 2 on its first attempt or not, SIGKILLed after epoch 3 or not. So the journal holds
finished runs, failed (killed) ones, and runs resumed under the same id, whose W&B records are two
segments. The first agent takes 3 runs, then the snapshot is written, then a second agent runs
the rest: a reader loads the snapshot and replays the journal's tail after it.

What it keeps: sweep.yaml, sweep.json, journal.jsonl, journal.snapshot and each segment's
``run-<id>.wandb`` (a few KB each), in the folder layout the agent made; not the programs' output
logs, W&B's debug logs, leases or claim tokens, which no reader needs to tell the runs apart.
``made.json`` says which versions wrote it, and when.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "support")]

from wandb_program import write_wandb_program  # noqa: E402

from sweepkit.jobs.sweeps.store import open_sweep  # noqa: E402

DEFINITION = {
    "program": "wandb_prog.py",
    "method": "grid",
    "metric": {"name": "Validation Accuracy", "goal": "maximize"},
    "parameters": {
        "lr": {"values": [0.2, 0.5]},
        "preempt_after": {"values": [0, 2]},
        "kill_after": {"values": [0, 3]},
        "epochs": {"value": 3},
    },
}
KEPT = ("sweep.yaml", "sweep.json", "journal.jsonl", "journal.snapshot")


def sweepkit(*args: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline"}
    proc = subprocess.run(
        [sys.executable, "-m", "sweepkit.jobs.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode not in (0, 1):  # 1: an agent whose runs failed (the killed ones)
        raise SystemExit(f"sweepkit {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout.strip()


def main(out: Path) -> None:
    if out.exists():
        raise SystemExit(f"{out} exists: a golden sweep is never rewritten; name a new folder")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_wandb_program(work)
        (work / "sweep.yaml").write_text(yaml.safe_dump(DEFINITION, sort_keys=False))
        ref = sweepkit("sweep", "create", "sweep.yaml", "--root", "sweeps", cwd=work)
        sweepkit("agent", "--count", "3", ref, cwd=work)
        sweep = open_sweep(work / ref)
        sweep.refresh()
        assert sweep.write_snapshot(force=True)
        sweepkit("agent", ref, cwd=work)
        copy_kept(work / ref, out)
    made = {
        "sweepkit": metadata.version("sweepkit"),
        "wandb": metadata.version("wandb"),
        "python": platform.python_version(),
        "made_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "by": "python tests/golden/make_golden.py " + str(out.relative_to(REPO)),
    }
    (out / "made.json").write_text(json.dumps(made, indent=1) + "\n")


def copy_kept(sweep: Path, out: Path) -> None:
    out.mkdir(parents=True)
    for name in KEPT:
        shutil.copy2(sweep / name, out / name)
    for log in sorted((sweep / "runs").glob("*/wandb/*/run-*.wandb")):
        if log.parent.is_symlink():  # wandb's latest-run, a link to the last segment
            continue
        target = out / log.relative_to(sweep)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(log, target)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]).resolve())
