"""The effective configuration as a frozen, typed dataclass: ``cfg.learning_rate``,
``cfg.checkpoint.keep`` and ``cfg.wandb.mode`` are checked by mypy. One field per ``SCHEMA`` key,
one nested dataclass per group (``checkpoint.*``, ``wandb.*``); only the builder (load.py) makes
one, from validated values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from sweepkit.train.config.schema import OPERATIONAL_KEYS, SCHEMA
from sweepkit.train.config.values import flatten, nest


@dataclass(frozen=True)
class CheckpointConfig:
    every_epochs: int
    keep: int
    keep_after_finish: Literal["none", "final", "all"]


@dataclass(frozen=True)
class WandbConfig:
    mode: Literal["online", "offline", "disabled"]
    project: str
    entity: str | None
    tags: tuple[str, ...]


# group name -> its dataclass (the part of a dotted key before the dot)
SECTIONS: dict[str, type[CheckpointConfig] | type[WandbConfig]] = {
    "checkpoint": CheckpointConfig,
    "wandb": WandbConfig,
}


@dataclass(frozen=True)
class Config:
    """The validated configuration a run trains with and records."""

    batch_size: int
    num_epochs: int
    learning_rate: float
    scheduler: Literal["step", "cosine", "onecycle", "none"]
    model_name: Literal["resnet18", "resnet34", "resnet50", "resnet101"]
    num_classes: int
    finetune: bool
    sample_ratio: float
    num_workers: int
    pin_memory: bool
    data_path: str
    log_file: str
    dataset: Literal["cifar10", "digits", "synthetic"]
    synthetic_size: int
    split_seed: int
    val_fraction: float
    loader: Literal["device", "workers"]
    augment: Literal["crop_flip", "crop", "none"]
    image_size: int
    eval_batch_size: int
    channels_last: bool
    stem: Literal["imagenet", "cifar"]
    pretrained: bool
    optimizer: Literal["adam", "adamw", "sgd"]
    momentum: float
    nesterov: bool
    weight_decay: float
    step_size: int
    gamma: float
    warmup_epochs: float
    label_smoothing: float
    grad_clip: float
    precision: Literal["bf16", "fp16", "fp32"]
    compile: bool
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"]
    seed: int
    deterministic: bool
    device: Literal["auto", "cuda", "cpu"]
    limit_train_batches: int
    sync_batchnorm: bool
    checkpoint: CheckpointConfig
    wandb: WandbConfig
    # key -> where its value came from ("default", a file, "--set k=v" ...)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_values(cls, values: Mapping[str, Any], sources: Mapping[str, str]) -> Config:
        """The typed config of flat, validated ``values`` (one per SCHEMA key)."""
        grouped = nest({key: values[key] for key in SCHEMA})
        for name, section in SECTIONS.items():
            group: dict[str, Any] = {
                k: tuple(v) if isinstance(v, list) else v for k, v in grouped[name].items()
            }
            grouped[name] = section(**group)
        return cls(**grouped, sources=dict(sources))

    def flat(self) -> dict[str, Any]:
        """``{"wandb.mode": ...}``, in SCHEMA order; tuples (tags) as lists, as YAML writes them."""
        flat: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "sources":
                continue
            value = getattr(self, f.name)
            if f.name in SECTIONS:
                for g in fields(value):
                    flat[f"{f.name}.{g.name}"] = _plain(getattr(value, g.name))
            else:
                flat[f.name] = _plain(value)
        return {key: flat[key] for key in SCHEMA}

    def nested(self) -> dict[str, Any]:
        """The config as YAML/W&B nest it (``{"wandb": {"mode": ...}}``)."""
        return nest(self.flat())

    def __getitem__(self, key: str) -> Any:
        """The value of a dotted key, for callers holding the key as a string (untyped)."""
        return self.flat()[key]


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def config_changes(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``key: old -> new`` for each key that changes what a run computes, between the nested
    config a run folder recorded and the current one (``wandb.*`` and OPERATIONAL_KEYS may differ;
    keys the record lacks, from an older sweepkit, are not compared)."""
    old, new = flatten(recorded, leaves=SCHEMA), flatten(current, leaves=SCHEMA)

    def same(a: Any, b: Any) -> bool:
        return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)

    return [
        f"{key}: {old[key]!r} -> {new[key]!r}"
        for key in new
        if key in old
        and not same(old[key], new[key])
        and key not in OPERATIONAL_KEYS
        and not key.startswith("wandb.")
    ]
