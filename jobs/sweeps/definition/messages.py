"""One-line messages for what W&B's sweep schema refuses: the key, what is wrong, what is allowed.

The schema's own messages (``jsonschema``'s, the ``sweeps`` package's violations) name neither the
closest valid key nor the allowed forms; these do, from the schema itself.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from sweepkit.train.errors import UserError

LOCAL_METHODS = ("grid", "random", "bayes")


def deprecation_notes(params: dict[str, Any]) -> list[str]:
    """The sweeps check's messages for distributions W&B has deprecated but still runs."""
    from sweeps.params import PARAM_DEPRECATION_MAP, HyperParameter

    notes = []
    for name, spec in params.items():
        try:
            kind = HyperParameter(name, spec).type
        except Exception:  # malformed: the schema check reports it
            continue
        if kind in PARAM_DEPRECATION_MAP:
            notes.append(f"{name} {PARAM_DEPRECATION_MAP[kind]}")
    return notes


# The order keys are listed in when one is unknown (any other key of the schema follows).
_PARAMETER_KEY_ORDER = ("value", "values", "probabilities", "distribution", "min", "max")


def allowed_keys() -> dict[str, list[str]]:
    """The keys each part of a definition may hold, read from W&B's own sweep schema."""
    from sweeps.config.schema import sweep_config_jsonschema as schema

    defs = schema["definitions"]
    parameter: list[str] = []
    for name, definition in defs.items():
        if name.startswith("param_"):
            for variant in definition.get("anyOf", [definition]):
                parameter += [k for k in variant.get("properties", {}) if k not in parameter]
    order = {k: i for i, k in enumerate(_PARAMETER_KEY_ORDER)}
    parameter.sort(key=lambda k: (order.get(k, len(order)), k == "parameters"))
    return {
        "sweep": list(schema["properties"]),
        "metric": list(defs["metric"]["properties"]),
        "early_terminate": list(defs["hyperband_stopping"]["properties"]),
        "parameter": parameter,
    }


def unknown_key(source: str, where: str, key: Any, kind: str, allowed: list[str]) -> UserError:
    """``where``: not a ``kind`` key; did you mean ...? allowed ...: one line, like the trainer's
    unknown config keys."""
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    article = "an" if kind[0] in "aeiou" else "a"
    return UserError(
        f"{source}: {where}: not {article} {kind} key; {hint}allowed keys: {', '.join(allowed)}"
    )


def _key(path: Any) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _allowed_parameter_forms() -> str:
    return (
        "value: v | values: [...] (+ probabilities) | min/max (int_uniform for integers, uniform for floats) | "
        "distribution: one of "
        + ", ".join(distributions())
        + " with its min/max, mu/sigma, q, a/b | parameters: {nested}"
    )


def distributions() -> list[str]:
    from sweeps.config.schema import sweep_config_jsonschema

    found: list[str] = []
    for definition in sweep_config_jsonschema["definitions"].values():
        variants = definition.get("anyOf", [definition])
        for variant in variants:
            enum = variant.get("properties", {}).get("distribution", {}).get("enum", [])
            found += [d for d in enum if d not in found]
    return found


# W&B's schema checks a parameter's name with the pattern ``PARAMETER_NAME_PATTERN``; said in words
PARAMETER_NAME_PATTERN = "^^[A-Za-z_][A-Za-z0-9_.-]*$"
PARAMETER_NAME_RULE = (
    "a name starts with a letter or _ and holds only letters, digits and the characters _ . -"
)


def describe_schema_error(error: Any, backend: str) -> str:
    path = list(error.absolute_path)
    key = _key(path)
    kind = error.validator
    if kind == "enum" and path == ["method"] and backend == "local":
        return (
            f"method: {error.instance!r} is not allowed; choose one of: {', '.join(LOCAL_METHODS)}"
        )
    if kind in ("minimum", "exclusiveMinimum"):
        bound = "above" if kind == "exclusiveMinimum" else "at least"
        return f"{key}: {error.instance!r} is too small; it must be {bound} {error.validator_value}"
    if kind == "enum":
        return f"{key}: {error.instance!r} is not allowed; choose one of: {', '.join(map(str, error.validator_value))}"
    if kind == "required":
        missing = re.findall(r"'([^']+)'", error.message)
        return (
            f"{key}: missing required key {missing[0] if missing else ''}".rstrip()
            + "; see W&B's sweep configuration keys"
        )
    if kind == "pattern" and path and path[-1] == "parameters":
        return f"{key}: {error.instance!r} is not a valid parameter name; {PARAMETER_NAME_RULE}"
    if len(path) >= 2 and path[0] == "parameters":
        specific = _parameter_mistake(error.instance)
        if specific:
            return f"{key}: {specific}"
        return f"{key}: {error.instance!r} is not a valid parameter; allowed: {_allowed_parameter_forms()}"
    if path and path[0] == "early_terminate":
        return (
            f"{key}: {error.instance!r} is not valid; allowed: type: hyperband with min_iter or max_iter "
            "(integers), optional eta (default 3), s, strict"
        )
    if kind == "type":
        return f"{key}: {error.instance!r} is not of type {error.validator_value}"
    return f"{key}: {error.message}"


_LOG_VALUES = ("log_uniform_values", "inv_log_uniform_values", "q_log_uniform_values")


def _parameter_mistake(spec: Any) -> str | None:
    """What is wrong with a parameter the schema refuses as a whole, for the mistakes that its
    generic message leaves unclear."""
    if not isinstance(spec, dict):
        return None
    if spec.get("values") == []:
        return "values is empty; list at least one value, or pin one with value: v"
    low, high = spec.get("min"), spec.get("max")
    if (
        spec.get("distribution") in _LOG_VALUES
        and isinstance(low, int | float)
        and isinstance(high, int | float)
        and not 0 < low < high
    ):
        return (
            f"{spec['distribution']} needs 0 < min < max (got min {low}, max {high}): it "
            "samples the values themselves on a log scale; use uniform to include 0"
        )
    return None


def describe_violation(message: str) -> str:
    first = message.splitlines()[0]
    name = re.match(r"(\S+): min", first)
    if name:
        return f"parameters.{name.group(1)}: {first.split(': ', 1)[1]}; min must be below max"
    param = re.match(r"Parameter (\S+): (.*)", first)
    if param:
        return f"parameters.{param.group(1)}: {param.group(2)}"
    if first.startswith("`parameters` is required"):
        return "parameters: missing; a sweep needs parameters such as {learning_rate: {values: [0.1, 0.01]}}"
    return first
