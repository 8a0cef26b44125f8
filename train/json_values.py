"""JSON the kit writes, strict: a float that is not finite is written as W&B writes one, and read
back as a float where a number is expected.

Python's ``json`` writes NaN and the infinities as ``NaN``/``Infinity`` literals, which are not
JSON: strict parsers (browsers' ``JSON.parse``, ``jq``, Go, Rust) refuse the whole document. W&B
defines the encoding for them (``wandb.util.make_safe_for_json``: "W&B backend and UI handle these
strings"): the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``. Every JSON the kit writes
(the sweep's journal and snapshot, end records, ``status --json``, run.json) uses it. A number
field holding one of those strings is that float (``number``); other fields are left as written
(a swept value may be the string "NaN"). Old files that hold the literals still read: Python's
parser reads them as floats, which ``number`` passes through.
"""

from __future__ import annotations

import json
import math
from typing import Any

# W&B's strings for the floats JSON cannot hold, and back
NONFINITE_TEXT = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def text_of(value: float) -> str:
    """A non-finite float as W&B writes it."""
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by W&B's string for it (tuples become lists,
    as in JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else text_of(value)
    if isinstance(value, dict):
        return {k: safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [safe(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of ``value`` as strict JSON. Nearly every document has only finite numbers:
    those are written in one pass; only a refused one is walked and written again."""
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:
        return json.dumps(safe(value), allow_nan=False, **kwargs)


def number(value: Any) -> Any:
    """A value read from a number field: W&B's string for a non-finite float as that float,
    anything else as it is."""
    if isinstance(value, str):
        return NONFINITE_TEXT.get(value, value)
    return value


def numbers(values: Any) -> list[Any]:
    """A list read from a number field (a metric's history), each value through ``number``."""
    return [number(v) for v in values] if isinstance(values, list) else []


def number_map(values: Any) -> dict[str, Any]:
    """A dict of numbers read back (a run's summary of numbers)."""
    return {k: number(v) for k, v in values.items()} if isinstance(values, dict) else {}
