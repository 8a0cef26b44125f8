"""Overrides on the command line: ``--set key=value`` and ``--key=value`` as ``wandb agent``
passes them (``${args}``); values are YAML (``true``, ``1e-3``, ``[a, b]``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from sweepkit.train.config.yamlfile import DuplicateKeyError, load_yaml
from sweepkit.train.errors import UserError


def parse_assignment(text: str, source: str) -> tuple[str, Any]:
    """``key=value`` (value in YAML syntax) -> (key, value)."""
    key, sep, raw = text.partition("=")
    key = key.strip().removeprefix("--")
    if not sep or not key:
        raise UserError(f"{source} {text!r}: expected key=value, e.g. {source} learning_rate=0.01")
    try:
        value = load_yaml(raw) if raw.strip() else ""
    except DuplicateKeyError as err:
        raise UserError(f"{source} {text!r}: {err}") from None
    except yaml.YAMLError:
        value = raw
    return key, value


def parse_agent_args(args: Iterable[str]) -> dict[str, Any]:
    """Parse ``--key=value`` arguments exactly as ``wandb agent`` passes them (``${args}``)."""
    overrides: dict[str, Any] = {}
    args = list(args)
    for i, arg in enumerate(args):
        value = args[i + 1] if i + 1 < len(args) else "--"
        if arg.startswith("--") and "=" not in arg and not value.startswith("--"):
            raise UserError(
                f"unexpected argument {arg!r}: agent overrides take '=', write "
                f"{arg}={value} (or --set {arg[2:]}={value})"
            )
        if not arg.startswith("--") or "=" not in arg:
            raise UserError(
                f"unexpected argument {arg!r}: the trainer takes --config FILE, --set key=value, "
                "--run-dir DIR and agent overrides of the form --key=value"
            )
        key, value = parse_assignment(arg, "agent argument")
        overrides[key] = value
    return overrides
