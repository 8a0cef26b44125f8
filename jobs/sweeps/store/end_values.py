"""What an ``end`` record says its run logged, as numbers: its metric, the metric's history and its
summary, with NaN and the infinities back as floats.

The journal holds them as W&B's strings (``sweepkit.train.json_values``). Decoding every ended
run's history on every read would cost a status of 20,000 runs a tenth of a second, so the record
that holds one says so (``NONFINITE``, set by ``marked`` when the store makes the record: ``claim_policy.end_record``), and only such records
are walked. A record without the mark holds floats only (or, from an older version, Python's
``NaN`` literals, which its parser already read as floats).
"""

from __future__ import annotations

import math
from typing import Any

from sweepkit.train.json_values import number, number_map, numbers

NONFINITE = "nonfinite"  # an end record's key: its metric, history or summary holds NaN or inf


def marked(result: dict[str, Any]) -> dict[str, Any]:
    """``{NONFINITE: True}`` if an end record's ``result`` holds NaN or inf in its metric, history
    or summary, else ``{}`` (a finite run's record stays as it was)."""
    summary = result.get("summary")
    values = [
        result.get("metric"),
        *(result.get("history") or []),
        *(summary.values() if isinstance(summary, dict) else []),
    ]
    finite = all(not isinstance(v, float) or math.isfinite(v) for v in values)
    return {} if finite else {NONFINITE: True}


def metric(end: dict[str, Any]) -> Any:
    return number(end.get("metric"))


def history(end: dict[str, Any]) -> list[Any]:
    values = end.get("history")
    if not isinstance(values, list):
        return []
    return numbers(values) if end.get(NONFINITE) else list(values)


def summary(end: dict[str, Any]) -> dict[str, Any]:
    values = end.get("summary")
    if not isinstance(values, dict):
        return {}
    return number_map(values) if end.get(NONFINITE) else dict(values)
