"""Pure helpers on configuration values: nested <-> flat dotted keys, and checking one value
against its ``Key`` (the one-line error names the key, the value, its source and what it wants)."""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any

from sweepkit.train.config.schema import SCHEMA, Key
from sweepkit.train.errors import UserError

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def flatten(
    data: Mapping[str, Any], prefix: str = "", leaves: Container[str] = ()
) -> dict[str, Any]:
    """``{"wandb": {"mode": "x"}}`` -> ``{"wandb.mode": "x"}``: every nested mapping becomes
    dotted keys, except the value of a key named in ``leaves`` (a key that takes a mapping)."""
    flat: dict[str, Any] = {}
    for name, value in data.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping) and key not in leaves:
            flat.update(flatten(value, f"{key}.", leaves))
        else:
            flat[key] = value
    return flat


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of ``flatten``: dotted keys become nested mappings, in first-seen order."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node = nested
        *groups, leaf = key.split(".")
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = value
    return nested


def describe(spec: Key) -> str:
    """What a key accepts, in words: ``one of a, b``, ``an integer >= 1``."""
    if spec.choices:
        return "one of " + ", ".join(map(str, spec.choices))
    words = {
        int: "an integer",
        float: "a number",
        bool: "true or false",
        str: "a string",
        list: "a list",
    }[spec.type]
    bounds = []
    if spec.min is not None:
        bounds.append(f"{'>' if spec.min_exclusive else '>='} {spec.min:g}")
    if spec.max is not None:
        bounds.append(f"<= {spec.max:g}")
    return words + (" " + " and ".join(bounds) if bounds else "")


def as_bool(value: Any) -> bool | None:
    """``value`` as a bool (true/false, yes/no, 1/0 ...), or None if it is not one."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        return int(value) if isinstance(value, int | str) else None
    except ValueError:
        return None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        # YAML 1.1 reads "1e-3" as a string; accept every float spelling.
        return float(value)
    except (TypeError, ValueError):
        return None


def _as_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        value = [v for v in (s.strip() for s in value.split(",")) if v]
    if not isinstance(value, list | tuple):
        return None
    return [str(v) for v in value]


def _as_str(value: Any) -> str | None:
    return None if isinstance(value, dict | list) else str(value)


_CONVERT = {bool: as_bool, int: _as_int, float: _as_float, list: _as_list, str: _as_str}


def _in_bounds(spec: Key, out: Any) -> bool:
    if spec.choices is not None and out not in spec.choices:
        return False
    if isinstance(out, int | float) and not isinstance(out, bool):
        if spec.min is not None and (out < spec.min or (spec.min_exclusive and out == spec.min)):
            return False
        if spec.max is not None and out > spec.max:
            return False
    return True


def coerce(key: str, value: Any, source: str) -> Any:
    """Return ``value`` as the type ``SCHEMA[key]`` wants, or raise a one-line UserError."""
    spec = SCHEMA[key]
    if value is None and spec.nullable:
        return None
    out = None if value is None else _CONVERT[spec.type](value)
    if out is None or not _in_bounds(spec, out):
        raise UserError(f"{key}={value!r} from {source}: expected {describe(spec)}")
    return out
