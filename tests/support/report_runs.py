"""Runs and sweeps for the report's tests (tests/jobs/report/): constructed RunView records, a
sweep whose parameters drive the metric, a real store sweep written as agents and the trainer
would, and the page's sections by id.
"""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path
from typing import Any

from sweepkit.jobs.report.source import SweepSource
from sweepkit.jobs.sweeps.definition import validate
from sweepkit.jobs.sweeps.state import RunView
from sweepkit.jobs.sweeps.store import AgentIdentity, Claim, create_sweep


def Run(  # noqa: N802 - reads as the record it builds
    run_id: str,
    state: str,
    params: dict[str, Any],
    metric: float | None,
    epochs: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> RunView:
    """A run as the store gives it to the report, with plausible defaults."""
    defaults: dict[str, Any] = {
        "run_dir": Path("."),
        "host": "node1",
        "started_at": "2026-11-27T10:00:00+00:00",
        "ended_at": "2026-11-27T10:05:00+00:00",
        "attempts": 1,
    }
    return RunView(
        run_id, state, params, metric=metric, epochs=epochs or [], **{**defaults, **fields}
    )


METRIC = "Validation Accuracy"


def definition(parameters: dict[str, Any], goal: str = "maximize") -> dict[str, Any]:
    return {
        "method": "grid",
        "metric": {"name": METRIC, "goal": goal},
        "parameters": parameters,
        "command": ["${env}", "${interpreter}", "-m", "sweepkit.train", "${args}"],
    }


def curve(final: float, epochs: int = 3) -> list[dict[str, Any]]:
    return [
        {"epoch": e, METRIC: final * e / epochs, "Train Loss": 1.0 / e}
        for e in range(1, epochs + 1)
    ]


def driven_sweep(n: int = 24) -> tuple[list[RunView], dict[str, Any]]:
    """learning_rate and optimizer drive the metric; seed and batch_size do not."""
    rng = random.Random(1)
    runs = []
    for i in range(n):
        lr = 10 ** rng.uniform(-4, -1)
        params = {
            "learning_rate": lr,
            "seed": rng.randint(0, 1000),
            "batch_size": rng.choice([32, 64, 128]),
            "optimizer": rng.choice(["adam", "sgd"]),
        }
        final = 60 + 5 * (math.log10(lr) + 4) + (8 if params["optimizer"] == "adam" else 0)
        runs.append(Run(f"r{i:02d}", "finished", params, final, curve(final)))
    spec = {
        "learning_rate": {"distribution": "log_uniform_values", "min": 1e-4, "max": 0.1},
        "seed": {"distribution": "int_uniform", "min": 0, "max": 1000},
        "batch_size": {"values": [32, 64, 128]},
        "optimizer": {"values": ["adam", "sgd"]},
    }
    return runs, definition(spec)


def source(runs: list[RunView], spec: dict[str, Any], **kw: Any) -> SweepSource:
    return SweepSource(ref="sweeps/test", sweep_id="test1234", definition=spec, runs=runs, **kw)


def section(page: str, name: str) -> str:
    match = re.search(rf'<section id="{name}">(.*?)</section>', page, re.S)
    return match.group(1) if match else ""


# --- through the real store and the CLI --------------------------------------------------------


def store_sweep(
    root: Path, finals: dict[float, float | None], stopped: float | None = None
) -> Path:
    """A real store sweep over learning_rate whose runs end as given (None = failed), written as
    agents and the trainer would (claim, run.json, end record): no training involved."""

    spec = validate(
        definition({"learning_rate": {"values": list(finals)}, "epochs": {"value": 2}}),
        "test",
    )
    sweep = create_sweep(spec, root, source="test")
    me = AgentIdentity()
    for _ in finals:
        claim = sweep.claim(me)
        assert isinstance(claim, Claim)
        lr = claim.params["learning_rate"]["value"]
        final = finals[lr]
        state = "failed" if final is None else ("stopped" if lr == stopped else "finished")
        epochs = curve(final, 2) if final is not None else []
        record = {
            "schema": 1,
            "run_id": claim.run_id,
            "state": "failed" if final is None else "finished",
            "config": {"learning_rate": lr, "num_epochs": 2},
            "epochs": epochs,
            "summary": {METRIC: final} if final is not None else {},
            "timings": {"train_s": 1.5},
            "git_revision": "0123abcd",
            "image_digest": None,
            "error": "ValueError: loss is NaN" if final is None else None,
        }
        (claim.run_dir / "run.json").write_text(json.dumps(record))
        sweep.finish(claim, me, state, metric=final, exit_code=0 if final is not None else 1)
    return sweep.path


# --- in a browser -----------------------------------------------------------------------------


def drawn_fraction(image: Any) -> float:
    """Share of pixels that are not (near) the background white."""
    grey = image.convert("L")
    histogram = grey.histogram()
    return sum(histogram[:235]) / (grey.width * grey.height)
