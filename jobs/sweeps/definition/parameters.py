"""The parameters of a sweep, by dotted name: the definition's specs, a run's values, and which
are swept; shared by the agent, status and the report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from sweepkit.train.config import flatten  # noqa: F401  (re-exported: nested parameters as dotted keys)


class HasParams(Protocol):
    params: dict[str, Any]


def flat_params(config: dict[str, Any]) -> dict[str, Any]:
    """``{name: {value: v}}`` (as the engine and wandb agent hold a run) to ``{dotted.name: v}``."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)
        else:
            flat[prefix] = value

    for name, holder in config.items():
        walk(name, holder.get("value") if isinstance(holder, dict) else holder)
    return flat


def param_specs(definition: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each parameter's spec from a W&B sweep definition, nested groups as dotted names."""
    specs: dict[str, dict[str, Any]] = {}

    def walk(parameters: Mapping[str, Any], prefix: str) -> None:
        for key, spec in parameters.items():
            if not isinstance(spec, Mapping):
                continue
            if isinstance(spec.get("parameters"), Mapping):
                walk(spec["parameters"], f"{prefix}{key}.")
            else:
                specs[f"{prefix}{key}"] = dict(spec)

    walk(definition.get("parameters") or {}, "")
    return specs


def fixed_params(definition: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters the definition pins with ``value:``: passed to every run, not swept."""
    return {
        name: spec["value"]
        for name, spec in param_specs(definition).items()
        if "value" in spec and not {"values", "distribution", "min", "max"} & set(spec)
    }


def param_names(definition: Mapping[str, Any], runs: Iterable[HasParams]) -> list[str]:
    """Swept parameters: the definition's, in its order, then any others the runs carry;
    without the fixed (``value:``) ones."""
    fixed = fixed_params(definition)
    names = [name for name in param_specs(definition) if name not in fixed]
    for run in runs:
        names += [name for name in flatten(run.params) if name not in names and name not in fixed]
    return names
