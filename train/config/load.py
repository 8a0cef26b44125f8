"""Layering the configuration, lowest to highest precedence:

    schema defaults < config/config.yaml < --config presets (in order)
    < agent overrides (WANDB_MODE, ``--key=value`` as ``wandb agent`` passes them, ``wandb.config``)
    < ``--set key=value``.

Every value is checked against ``SCHEMA`` as its layer is applied, and every error names the key,
the source it came from and, for an unknown key, the closest valid one.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from sweepkit.train.config.overrides import parse_assignment
from sweepkit.train.config.schema import LEGACY_ALIASES, LEGACY_USE_WANDB, SCHEMA
from sweepkit.train.config.shipped import KIT_CONFIG, preset_path
from sweepkit.train.config.typed import Config
from sweepkit.train.config.values import as_bool, coerce, flatten
from sweepkit.train.config.yamlfile import (
    DuplicateKeyError,
    load_yaml,
    read_yaml_text,
    yaml_error_position,
)
from sweepkit.train.errors import UserError


def _unknown_key(key: str, source: str) -> UserError:
    close = difflib.get_close_matches(key, list(SCHEMA) + list(LEGACY_ALIASES), n=1, cutoff=0.5)
    hint = (
        f"; did you mean {close[0]!r}?" if close else "; see config/config.yaml for the valid keys"
    )
    return UserError(f"unknown config key {key!r} in {source}{hint}")


class ConfigBuilder:
    """Applies layers in precedence order; each layer is validated as it is applied."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {k: spec.default for k, spec in SCHEMA.items()}
        self.sources: dict[str, str] = dict.fromkeys(SCHEMA, "default")

    def apply(self, data: Mapping[str, Any], source: str) -> ConfigBuilder:
        for key, value in flatten(data, leaves=SCHEMA).items():
            if key == LEGACY_USE_WANDB:
                flag = as_bool(value)
                if flag is None:
                    raise UserError(
                        f"{LEGACY_USE_WANDB}={value!r} from {source}: expected true or false"
                    )
                if not flag:
                    self._set("wandb.mode", "disabled", source)
                continue
            key = LEGACY_ALIASES.get(key, key)
            if key not in SCHEMA:
                raise _unknown_key(key, source)
            self._set(key, value, source)
        return self

    def _set(self, key: str, value: Any, source: str) -> None:
        self.values[key] = coerce(key, value, source)
        self.sources[key] = source

    def apply_file(self, path: Path, label: str | None = None) -> ConfigBuilder:
        source = label or str(path)
        text = read_yaml_text(path, f"config file {path}", f" ({label})" if label else "")
        try:
            data = load_yaml(text)
        except DuplicateKeyError as err:
            raise UserError(f"config file {path}: {err}") from None
        except yaml.YAMLError as err:
            where, problem = yaml_error_position(err, text)
            raise UserError(f"config file {path}{where} is not valid YAML: {problem}") from None
        if data is None:
            return self
        if not isinstance(data, Mapping):
            raise UserError(f"config file {path} must hold a mapping of keys to values")
        return self.apply(data, source)

    def build(self) -> Config:
        if self.values["dataset"] in ("cifar10", "digits") and self.values["num_classes"] != 10:
            raise UserError(
                f"num_classes={self.values['num_classes']} from {self.sources['num_classes']}: "
                f"dataset {self.values['dataset']} has 10 classes"
            )
        return Config.from_values(self.values, self.sources)


def find_base_config() -> Path | None:
    """Locate config/config.yaml: $SWEEPKIT_BASE_CONFIG, ./config/, then the kit's own."""
    env = os.environ.get("SWEEPKIT_BASE_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise UserError(
                f"SWEEPKIT_BASE_CONFIG={env} does not exist; unset it or point it at config/config.yaml"
            )
        return path
    for candidate in (Path.cwd() / "config" / "config.yaml", KIT_CONFIG / "config.yaml"):
        if candidate.is_file():
            return candidate
    return None


def build_config(
    presets: Iterable[str] = (),
    agent_overrides: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
    base: Path | None = None,
    wandb_config: Mapping[str, Any] | None = None,
) -> Config:
    """Layer every source in precedence order and return the validated effective config."""
    builder = ConfigBuilder()
    base = base if base is not None else find_base_config()
    if base is not None:
        builder.apply_file(base)
    for preset in presets:
        builder.apply_file(preset_path(preset), f"--config {preset}")
    if os.environ.get("WANDB_MODE"):
        builder.apply({"wandb.mode": os.environ["WANDB_MODE"]}, "environment WANDB_MODE")
    if agent_overrides:
        builder.apply(agent_overrides, "agent arguments")
    if wandb_config:
        builder.apply(wandb_config, "wandb.config")
    for text in sets:
        key, value = parse_assignment(text, "--set")
        builder.apply({key: value}, f"--set {text}")
    return builder.build()
