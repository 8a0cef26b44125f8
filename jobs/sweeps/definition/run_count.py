"""How many runs a sweep makes, from its definition alone."""

from __future__ import annotations

import math
from typing import Any


def planned_runs(definition: dict[str, Any]) -> int | None:
    """Runs a sweep will make: the grid size (capped by run_cap), else run_cap, else None (unbounded).

    Counted from the (validated) definition as the grid search expands it, without importing the
    engine (scipy), so that status and report start fast."""
    cap = definition.get("run_cap")
    if definition.get("method") != "grid":
        return int(cap) if cap else None
    size = _grid_size(definition["parameters"])
    return min(size, int(cap)) if cap else size


def _grid_size(params: dict[str, Any]) -> int:
    size = 1
    for spec in params.values():
        if isinstance(spec.get("parameters"), dict):
            size *= _grid_size(spec["parameters"])
        elif "values" in spec:
            size *= len(spec["values"])
        elif spec.get("distribution") == "q_uniform":  # the engine expands np.arange(min, max, q)
            size *= max(0, math.ceil((spec["max"] - spec["min"]) / spec.get("q", 1.0)))
        elif "min" in spec and "max" in spec:  # int_uniform, the only other range a grid allows
            size *= int(spec["max"]) - int(spec["min"]) + 1
    return size
