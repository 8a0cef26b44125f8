"""A random sweep's proposals drawn as the engine draws them, without importing it (or scipy).

``sweeps.random_search.random_search_next_runs`` sets each parameter, in the engine's order
(``definition/grid.py``: sorted at every level, constants included), to
``HyperParameter.ppf(random.uniform(0, 1))``, the inverse CDF of its distribution from scipy.stats.
Importing the engine takes about 1.3 s (scipy), more than a program takes to start. For the
distributions whose inverse CDF is arithmetic (constants, categorical with or without
probabilities, int_uniform, uniform, q_uniform and the log-uniform family) ``draw`` computes the
same numbers with the same operations (numpy's ``exp``, ``log``, ``round``; scipy's ``randint``
formula) from the same ``random`` draws; for any other (normal, beta, ...) it returns None and the
engine draws. ``tests/jobs/sweeps/test_random_draw.py`` compares both from the same seeds.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Mapping
from typing import Any

from sweepkit.jobs.sweeps.definition.grid import flat_specs, renested

Sampler = Callable[[float], Any]
LOG_FAMILY = {
    "log_uniform": (False, False),  # (bounds are values, not exponents; inverse)
    "log_uniform_values": (True, False),
    "inv_log_uniform": (False, True),
    "inv_log_uniform_values": (True, True),
}
QUANTISED = {"q_uniform": "uniform", "q_log_uniform": "log_uniform"}
QUANTISED_VALUES = {"q_log_uniform_values": "log_uniform_values"}


def _randint(q: float, low: int, high: int) -> int:
    """``scipy.stats.randint.ppf(q, low, high)`` as an int (rv_discrete.ppf, randint._ppf)."""
    if q == 0:
        return low - 1
    span = float(high - low)
    vals = float(math.ceil(q * span + low)) - 1.0
    vals1 = min(max(vals - 1.0, low), high)
    below = (math.floor(vals1) - low + 1.0) / span
    return int(vals1 if below >= q else vals)


def _uniform(q: float, low: Any, width: Any) -> Any:
    """``scipy.stats.uniform.ppf(q, low, width)``: ``q * width + low`` in float64."""
    import numpy as np

    return np.float64(q) * np.float64(width) + np.float64(low)


def _log_sampler(kind: str, low: Any, high: Any) -> Sampler:
    import numpy as np

    values, inverse = LOG_FAMILY[kind]
    if values:  # bounds given as values: their logs, negated and swapped for the inverse
        low, high = (-np.log(high), -np.log(low)) if inverse else (np.log(low), np.log(high))
    if inverse:
        return lambda q: np.exp(-_uniform(1 - q, low, high - low))
    return lambda q: np.exp(_uniform(q, low, high - low))


def _quantised(sampler: Sampler, q: Any) -> Sampler:
    import numpy as np

    def draw(x: float) -> Any:
        rounded = np.round(sampler(x) / q) * q
        return rounded.astype(int) if isinstance(q, int) else rounded

    return draw


def _is_int(value: Any) -> bool:
    return type(value) is int


def _sampler(spec: Mapping[str, Any]) -> Sampler | None:
    """The inverse CDF of one parameter, or None where the engine must draw it."""
    keys = set(spec) - {"distribution"}
    kind = spec.get("distribution")
    if keys == {"value"} and kind in (None, "constant"):
        return lambda q: spec["value"]
    if keys == {"values"} and kind in (None, "categorical"):
        values = list(spec["values"])
        return lambda q: values[_randint(q, 0, len(values))]
    if keys == {"values", "probabilities"} and kind in (None, "categorical_w_probabilities"):
        return _with_probabilities(list(spec["values"]), list(spec["probabilities"]))
    low: Any = spec.get("min")
    high: Any = spec.get("max")
    if kind is None and keys == {"min", "max"}:
        if _is_int(low) and _is_int(high):
            kind = "int_uniform"
        elif any(type(v) is float and not v.is_integer() for v in (low, high)):
            kind = "uniform"  # an integral float could be read as an int: the engine decides
    if kind == "int_uniform" and keys == {"min", "max"} and _is_int(low) and _is_int(high):
        return lambda q: _randint(q, low, high + 1)
    if kind == "uniform" and keys == {"min", "max"}:
        return lambda q: _uniform(q, low, high - low)
    if kind in LOG_FAMILY and keys == {"min", "max"}:
        return _log_sampler(kind, low, high)
    if kind in (*QUANTISED, *QUANTISED_VALUES) and keys <= {"min", "max", "q"}:
        base = QUANTISED.get(kind) or QUANTISED_VALUES[kind]
        inner = (lambda q: _uniform(q, low, high - low)) if base == "uniform" else None
        return _quantised(inner or _log_sampler(base, low, high), spec.get("q", 1.0))
    return None


def _with_probabilities(values: list[Any], probabilities: list[Any]) -> Sampler:
    import numpy as np

    cdf = np.cumsum(probabilities)
    return lambda q: values[int(np.argmin(q >= cdf, axis=-1))]


def samplers(definition: Mapping[str, Any]) -> list[tuple[str, Sampler]] | None:
    """Each parameter's sampler in the engine's order; None if any needs the engine."""
    out = []
    for name, spec in flat_specs(definition.get("parameters") or {}):
        sampler = _sampler(spec)
        if sampler is None:
            return None
        out.append((name, sampler))
    return out


def draw(parameters: list[tuple[str, Sampler]], n: int) -> list[dict[str, Any]]:
    """``n`` proposals ``{name: {value: v}}``, from ``random``'s draws as the engine makes them."""
    from sweepkit.jobs.sweeps.state import plain

    out = []
    for _ in range(n):
        flat = {name: sampler(random.uniform(0.0, 1.0)) for name, sampler in parameters}
        nested = renested(copy.deepcopy(flat))
        out.append(plain({k: {"value": v} for k, v in nested.items()}))
    return out
