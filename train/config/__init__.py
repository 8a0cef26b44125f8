"""Typed, layered configuration for the trainer.

schema.py lists every key; load.py layers the sources (defaults, config/config.yaml, presets,
agent overrides, ``--set``) and validates each value as it lands; typed.py is the frozen
``Config`` dataclass the trainer reads (``cfg.learning_rate``, ``cfg.wandb.mode``).
"""

from sweepkit.train.config.load import ConfigBuilder, build_config, find_base_config
from sweepkit.train.config.overrides import parse_agent_args, parse_assignment
from sweepkit.train.config.schema import (
    LEGACY_ALIASES,
    LEGACY_USE_WANDB,
    OPERATIONAL_KEYS,
    SCHEMA,
    Key,
)
from sweepkit.train.config.typed import CheckpointConfig, Config, WandbConfig, config_changes
from sweepkit.train.config.values import as_bool, coerce, describe, flatten, nest
from sweepkit.train.config.yamlfile import (
    DuplicateKeyError,
    dump_yaml,
    folder_hint,
    load_kit_yaml,
    load_yaml,
    read_yaml_text,
    yaml_error_position,
)

__all__ = [
    "LEGACY_ALIASES",
    "LEGACY_USE_WANDB",
    "OPERATIONAL_KEYS",
    "SCHEMA",
    "CheckpointConfig",
    "DuplicateKeyError",
    "Config",
    "ConfigBuilder",
    "Key",
    "WandbConfig",
    "as_bool",
    "build_config",
    "coerce",
    "config_changes",
    "describe",
    "dump_yaml",
    "find_base_config",
    "flatten",
    "load_kit_yaml",
    "load_yaml",
    "folder_hint",
    "nest",
    "parse_agent_args",
    "parse_assignment",
    "read_yaml_text",
    "yaml_error_position",
]
