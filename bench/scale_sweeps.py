"""The sweeps bench/scale.py measures: real agent runs of a plain W&B script, copied N times.

``make_templates`` runs the agent once per learning rate on tests/support/wandb_program.py;
``build`` writes a sweep of N finished and some running runs from them through the store's own
record shapes, a bayes sweep with the same journal, and a grid sweep with the same runs at
distinct grid points (journal and leases only: a claim reads no run folder); ``setup_optuna`` fills Optuna's journal
store with N finished trials of the same space, the peer the fresh claims are compared with.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SWEEPKIT = [sys.executable, "-m", "sweepkit.jobs.cli"]
METRIC = "Validation Accuracy"
TEMPLATE_LRS = (0.3, 0.6, 0.9)
LEASE_S = 3600.0  # long, so that the running runs' heartbeats stay fresh for the whole benchmark


def definition(method: str, program: Path, epochs: int, grid_points: int = 0) -> dict[str, Any]:
    """The benchmark's sweep; a grid has ``hidden_units`` in steps of one, enough for
    ``grid_points`` points (runs take them as ``grid_params`` says)."""
    out: dict[str, Any] = {
        "method": method,
        "metric": {"name": METRIC, "goal": "maximize"},
        "command": ["${env}", "${interpreter}", str(program), "${args}"],
        "parameters": {
            "lr": {"values": list(TEMPLATE_LRS)},
            "hidden_units": {"distribution": "int_uniform", "min": 16, "max": 256},
            "epochs": {"value": epochs},
        },
    }
    if method == "random":
        out["early_terminate"] = {"type": "hyperband", "min_iter": 3}
    if method == "grid":
        per_lr = grid_points // len(TEMPLATE_LRS) + 2
        out["parameters"]["hidden_units"] = {"values": list(range(16, 16 + per_lr))}
    return out


def grid_params(i: int, epochs: int) -> dict[str, Any]:
    """Run i's point of the grid sweep: distinct for every i."""
    return {
        "lr": {"value": TEMPLATE_LRS[i % len(TEMPLATE_LRS)]},
        "hidden_units": {"value": 16 + i // len(TEMPLATE_LRS)},
        "epochs": {"value": epochs},
    }


def sweepkit(*args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(
        [*SWEEPKIT, *args],
        cwd=cwd,
        # ${interpreter} is python from PATH: this environment's
        env={
            **os.environ,
            "PYTHONPATH": str(REPO),
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            **(env or {}),
        },
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"sweepkit {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")


def make_templates(work: Path, epochs: int) -> list[dict[str, Any]]:
    """Real agent runs of tests/support/wandb_program.py, one per learning rate: their run folders and
    the claim and end records the agent wrote for them."""
    from sweepkit.jobs.sweeps import store

    sys.path.insert(0, str(REPO / "tests" / "support"))
    from wandb_program import write_wandb_program

    program = write_wandb_program(work)
    templates = []
    for lr in TEMPLATE_LRS:
        d = definition("grid", program, epochs)
        d["parameters"] = {"lr": {"value": lr}, "epochs": {"value": epochs}}
        sweep = store.create_sweep(d, work / "templates", source="bench")
        sweepkit("agent", "--count", "1", str(sweep.path), cwd=work)
        ((run_id, folded),) = sweep.refresh().items()
        templates.append(
            {"run_id": run_id, "dir": sweep.run_dir(run_id), "end": folded.last_end, "lr": lr}
        )
    return templates


def copy_run(template: dict[str, Any], dest: Path) -> None:
    shutil.copytree(template["dir"], dest, copy_function=os.link)


def build(
    root: Path, n: int, running: int, templates: list[dict[str, Any]], program: Path, epochs: int
) -> dict[str, Path]:
    """The random (hyperband) sweep with its run folders, and a bayes sweep with the same journal."""
    from sweepkit.jobs.sweeps import store

    sweep = store.create_sweep(
        definition("random", program, epochs), root, source="bench", lease_s=LEASE_S
    )
    rng = random.Random(n)
    me = store.AgentIdentity()
    now = time.time()
    records: list[dict[str, Any]] = []
    for i in range(n + running):
        template = templates[i % len(templates)]
        run_id = f"r{i:07d}"
        params = {
            "lr": {"value": template["lr"]},
            "hidden_units": {"value": rng.randint(16, 256)},
            "epochs": {"value": epochs},
        }
        claim = store.claim_record(run_id, 0, params, me, now)
        copy_run(template, sweep.run_dir(run_id))
        if i < n:
            claim["at"] = now - 600 + i * 0.01
            end = {**template["end"], "run": run_id, "k": 0, "at": claim["at"] + 10}
            records += [claim, end]
        else:  # running on another host for long, heartbeat fresh
            other = store.AgentIdentity(host=f"node{i % 50:03d}", pid=1000 + i, pid_ns=None)
            claim = store.claim_record(run_id, 0, params, other, now)
            claim["at"] = now - 2 * LEASE_S
            records.append(claim)
            sweep.heartbeat(store.Claim(run_id, 0, params, sweep.run_dir(run_id), False), other)
    sweep.append(records)
    out = {"random": sweep.path}
    for method in ("bayes", "grid"):
        other = store.create_sweep(
            definition(method, program, epochs, n + running), root, source="bench", lease_s=LEASE_S
        )
        if method == "bayes":
            shutil.copyfile(sweep.path / "journal.jsonl", other.path / "journal.jsonl")
        else:  # the same runs, each at a grid point of its own
            other.append(
                [
                    {**r, "params": grid_params(int(r["run"][1:]), epochs)} if "params" in r else r
                    for r in records
                ]
            )
        for lease in (sweep.path / "leases").iterdir():
            shutil.copyfile(lease, other.path / "leases" / lease.name)
        out[method] = other.path
    return out


def setup_optuna(root: Path, n: int, epochs: int) -> Path:
    import optuna
    from optuna.distributions import CategoricalDistribution, IntDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = root / "optuna.log"
    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(study_name="bench", storage=storage, direction="maximize")
    dists = {
        "lr": CategoricalDistribution(list(TEMPLATE_LRS)),
        "hidden_units": IntDistribution(16, 256),
    }
    rng = random.Random(n)
    trials = []
    for i in range(n):
        lr = TEMPLATE_LRS[i % len(TEMPLATE_LRS)]
        values = [90.0 * lr * e / epochs for e in range(1, epochs + 1)]
        trials.append(
            optuna.trial.create_trial(
                params={"lr": lr, "hidden_units": rng.randint(16, 256)},
                distributions=dists,
                value=values[-1],
                intermediate_values=dict(enumerate(values, 1)),
            )
        )
    study.add_trials(trials)
    return path
