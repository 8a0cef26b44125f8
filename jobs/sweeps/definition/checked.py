"""A sweep file's check, remembered: what lets an agent start without importing the engine.

An agent checks ``sweep.yaml`` again before it takes a run, in case the file was edited since
``sweep create``; the check is the engine's (its schema, its parameter types), and importing the
engine takes about 1.3 s (scipy), longer than a run's program takes to start. So ``sweep create``
records in ``sweep.json`` the file's SHA-256, the engine's version and whether the check asked
for a program (``"checked": {"sha256": ..., "sweeps": "0.3.0", "program": true}``), and only when
the file as written passes the check with no warning. An agent that finds the same bytes, the
same engine and no need beyond what was checked skips the check (the warnings it would print are
none); any other agent checks as before. A sweep folder made before this key checks every time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

KEY = "checked"


def engine_version() -> str | None:
    """The installed ``sweeps`` package's version, read without importing it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sweeps")
    except PackageNotFoundError:
        return None


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stamp(text: str, source: str) -> dict[str, Any] | None:
    """What ``sweep.json`` records of the sweep file ``text``: None unless it passes the check
    with no warning (``program``: with a program, as ``sweepkit agent`` checks it)."""
    from sweepkit.jobs.sweeps.definition.check import definition_warnings, validate
    from sweepkit.train.config import load_yaml
    from sweepkit.train.errors import UserError

    definition = load_yaml(text)
    if not isinstance(definition, dict) or definition_warnings(definition, source):
        return None
    for program in (True, False):
        try:
            validate(definition, source, program=program, warn=False)
        except UserError:
            continue
        return {"sha256": digest(text), "sweeps": engine_version(), "program": program}
    return None


def holds(meta: Mapping[str, Any], text: str, program: bool) -> bool:
    """Whether ``meta`` (sweep.json) says this very ``text`` passed the check that ``program``
    asks for, with the engine installed now."""
    checked = meta.get(KEY)
    if not isinstance(checked, Mapping):
        return False
    return (
        checked.get("sha256") == digest(text)
        and checked.get("sweeps") == engine_version()
        and (bool(checked.get("program")) or not program)
    )
