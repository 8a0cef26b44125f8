"""A good sweep definition to change one key of, for the definition tests (tests/jobs/sweeps/)."""

from __future__ import annotations

from typing import Any

GOOD_PARAMS = {"learning_rate": {"values": [0.1, 0.01]}}
CMD = ["${env}", "${interpreter}", "-m", "sweepkit.train", "${args}"]


def base(**changes: Any) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "method": "grid",
        "metric": {"name": "Validation Accuracy", "goal": "maximize"},
        "command": CMD,
        "parameters": GOOD_PARAMS,
    }
    definition.update(changes)
    return {k: v for k, v in definition.items() if v is not None}
