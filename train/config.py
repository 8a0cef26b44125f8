"""Typed, layered configuration for the trainer.

Precedence, lowest to highest (ARCHITECTURE.md):
    schema defaults < config/config.yaml < --config presets (in order)
    < agent overrides (WANDB_MODE, ``--key=value`` as ``wandb agent`` passes them, ``wandb.config``)
    < ``--set key=value``.

Keys are flat, dotted for groups (``wandb.mode``); YAML files may nest groups. Every value is
checked against ``SCHEMA`` and every error names the key, the source it came from and, for an
unknown key, the closest valid one. The validated ``Config`` is what trains and what is recorded.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from train.errors import UserError


@dataclass(frozen=True)
class Key:
    """One configuration key: its type, default and allowed values."""

    type: type
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    nullable: bool = False


SCHEMA: dict[str, Key] = {
    # --- the seed's keys (names kept so existing sweep definitions keep working) ---
    "batch_size": Key(int, 128, "training batch size", min=1),
    "num_epochs": Key(int, 10, "training epochs", min=1),
    "learning_rate": Key(float, 5e-4, "peak learning rate", min=0, min_exclusive=True),
    "scheduler": Key(str, "step", "learning-rate schedule", ("step", "cosine", "onecycle", "none")),
    "model_name": Key(
        str, "resnet50", "torchvision ResNet", ("resnet18", "resnet34", "resnet50", "resnet101")
    ),
    "num_classes": Key(int, 10, "classes of the dataset", min=2),
    "finetune": Key(bool, False, "freeze the backbone and train only the new classifier"),
    "sample_ratio": Key(
        float, 1.0, "fraction of the training split used", min=0, max=1, min_exclusive=True
    ),
    "num_workers": Key(int, 4, "DataLoader worker processes (loader: workers)", min=0),
    "pin_memory": Key(bool, True, "pinned host memory (loader: workers)"),
    "data_path": Key(
        str, "data", "folder holding cifar-10-batches-py (stage it: sweepkit data cifar10)"
    ),
    "log_file": Key(str, "train.log", "text log inside the run folder"),
    # --- data and input pipeline ---
    "dataset": Key(str, "cifar10", "training data", ("cifar10", "digits", "synthetic")),
    "synthetic_size": Key(int, 50_000, "images in the synthetic dataset", min=16),
    "split_seed": Key(
        int, 0, "seed of the train/validation split (same for every run of a sweep)", min=0
    ),
    "val_fraction": Key(
        float,
        0.2,
        "fraction of the training set held out for validation",
        min=0,
        max=0.9,
        min_exclusive=True,
    ),
    "loader": Key(str, "device", "input pipeline", ("device", "workers")),
    "augment": Key(
        str,
        "crop_flip",
        "training augmentation: random crop (pad 4) and horizontal flip",
        ("crop_flip", "crop", "none"),
    ),
    "image_size": Key(
        int, 224, "training resolution (224 reproduces the seed; 32 is native)", min=16, max=512
    ),
    "eval_batch_size": Key(int, 512, "validation and test batch size", min=1),
    "channels_last": Key(bool, True, "NHWC memory format (fast convolutions on tensor cores)"),
    # --- model ---
    "stem": Key(
        str,
        "imagenet",
        "ResNet stem: imagenet (7x7/2 + max-pool) or cifar (3x3/1)",
        ("imagenet", "cifar"),
    ),
    "pretrained": Key(bool, True, "load ImageNet weights from the local torch cache"),
    # --- optimisation ---
    "optimizer": Key(str, "adam", "optimiser", ("adam", "adamw", "sgd")),
    "momentum": Key(float, 0.9, "SGD momentum", min=0, max=1),
    "nesterov": Key(bool, False, "Nesterov momentum (sgd)"),
    "weight_decay": Key(float, 0.0, "weight decay", min=0),
    "step_size": Key(int, 10, "epochs between decays (scheduler: step)", min=1),
    "gamma": Key(float, 0.1, "decay factor (scheduler: step)", min=0, max=1, min_exclusive=True),
    "warmup_epochs": Key(float, 0.0, "linear warm-up length in epochs", min=0),
    "label_smoothing": Key(float, 0.0, "label smoothing", min=0, max=1),
    "grad_clip": Key(float, 0.0, "clip the gradient norm to this value (0: off)", min=0),
    "precision": Key(
        str, "bf16", "autocast precision on CUDA (CPU runs fp32)", ("bf16", "fp16", "fp32")
    ),
    "compile": Key(bool, True, "torch.compile the model (falls back to eager on failure)"),
    "compile_mode": Key(
        str,
        "default",
        "torch.compile mode (reduce-overhead uses CUDA graphs)",
        ("default", "reduce-overhead", "max-autotune"),
    ),
    "seed": Key(int, 0, "seed of initialisation, data order and augmentation", min=0),
    "deterministic": Key(bool, False, "deterministic algorithms (bit-identical resume on CPU)"),
    "device": Key(str, "auto", "auto (cuda if present), cuda or cpu", ("auto", "cuda", "cpu")),
    "limit_train_batches": Key(int, 0, "stop each epoch after this many batches (0: all)", min=0),
    "sync_batchnorm": Key(
        bool, True, "under torchrun, BatchNorm over the global batch, as in one process"
    ),
    # --- checkpoints ---
    "checkpoint.every_epochs": Key(
        int, 1, "checkpoint every N epochs (and always on a stop signal)", min=1
    ),
    "checkpoint.keep": Key(int, 2, "checkpoints kept (older ones are deleted)", min=1),
    "checkpoint.keep_after_finish": Key(
        str,
        "final",
        "what a finished run keeps: final weights only (final), nothing (none), every checkpoint"
        " with optimizer state (all)",
        ("none", "final", "all"),
    ),
    # --- W&B ---
    "wandb.mode": Key(
        str,
        "offline",
        "W&B mode (offline runs land in the run folder for wandb sync)",
        ("online", "offline", "disabled"),
    ),
    "wandb.project": Key(str, "sweepkit", "W&B project"),
    "wandb.entity": Key(str, None, "W&B entity", nullable=True),
    "wandb.tags": Key(list, [], "W&B tags"),
}

# The seed's W&B keys, accepted so that its config.yaml keeps working.
LEGACY_ALIASES = {"wandb_mode": "wandb.mode", "wandb_project": "wandb.project"}
LEGACY_USE_WANDB = "use_wandb"

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in data.items():
        key = f"{prefix}{name}"
        # A mapping is a group (``wandb: {mode: ...}``) unless the key itself takes a mapping.
        if isinstance(value, Mapping) and key not in SCHEMA:
            flat.update(_flatten(value, prefix=f"{key}."))
        else:
            flat[key] = value
    return flat


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node = nested
        *groups, leaf = key.split(".")
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = value
    return nested


def _describe(spec: Key) -> str:
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


def coerce(key: str, value: Any, source: str) -> Any:
    """Return ``value`` as the type ``SCHEMA[key]`` wants, or raise a one-line UserError."""
    spec = SCHEMA[key]

    def bad() -> UserError:
        return UserError(f"{key}={value!r} from {source}: expected {_describe(spec)}")

    if value is None:
        if spec.nullable:
            return None
        raise bad()
    if spec.type is bool:
        out: Any = as_bool(value)
        if out is None:
            raise bad()
    elif spec.type is int:
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        try:
            out = int(value) if isinstance(value, int | str) else None
        except ValueError:
            out = None
        if out is None:
            raise bad()
    elif spec.type is float:
        if isinstance(value, bool):
            raise bad()
        try:
            # YAML 1.1 reads "1e-3" as a string; accept every float spelling.
            out = float(value)
        except (TypeError, ValueError):
            raise bad() from None
    elif spec.type is list:
        if isinstance(value, str):
            value = [v for v in (s.strip() for s in value.split(",")) if v]
        if not isinstance(value, list | tuple):
            raise bad()
        out = [str(v) for v in value]
    else:
        if isinstance(value, dict | list):
            raise bad()
        out = str(value)
    if spec.choices is not None and out not in spec.choices:
        raise bad()
    if isinstance(out, int | float) and not isinstance(out, bool):
        if spec.min is not None and (out < spec.min or (spec.min_exclusive and out == spec.min)):
            raise bad()
        if spec.max is not None and out > spec.max:
            raise bad()
    return out


def _unknown_key(key: str, source: str) -> UserError:
    close = difflib.get_close_matches(key, list(SCHEMA) + list(LEGACY_ALIASES), n=1, cutoff=0.5)
    hint = (
        f"; did you mean {close[0]!r}?" if close else "; see config/config.yaml for the valid keys"
    )
    return UserError(f"unknown config key {key!r} in {source}{hint}")


class Config(Mapping[str, Any]):
    """The effective, validated configuration: a read-only flat mapping with attribute access."""

    def __init__(self, values: Mapping[str, Any], sources: Mapping[str, str]):
        self._values = dict(values)
        self.sources = dict(sources)  # key -> where its value came from

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def nested(self) -> dict[str, Any]:
        """The config as YAML/W&B nest it (``{"wandb": {"mode": ...}}``)."""
        return _nest(self._values)


# Keys that say how a run is executed or logged, not what it computes: a resumed or rerun run may
# change them (a resumed run lands on another node, with other data paths or worker counts).
OPERATIONAL_KEYS = (
    "num_workers",
    "pin_memory",
    "data_path",
    "log_file",
    "eval_batch_size",
    "channels_last",
    "compile",
    "compile_mode",
    "device",
    "checkpoint.every_epochs",
    "checkpoint.keep",
    "checkpoint.keep_after_finish",
)


def config_changes(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``key: old -> new`` for each key that changes what a run computes, between the nested
    config a run folder recorded and the current one (``wandb.*`` and OPERATIONAL_KEYS may differ;
    keys the record lacks, from an older sweepkit, are not compared)."""
    old, new = _flatten(recorded), _flatten(current)

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


def folder_hint(folder: Path) -> str:
    """How to fix passing a folder where a YAML file was wanted, naming a file inside it."""
    try:
        names = sorted(p.name for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    except OSError:
        names = []
    if names:
        return f"pass one of its YAML files, e.g. {folder / names[0]}"
    return "pass the path of a YAML file, not a folder"


def read_yaml_text(path: Path, what: str, suffix: str = "") -> str:
    """The text of the YAML file ``path``, or a one-line UserError, ``what`` first and ``suffix``
    last, that says why it cannot be read: missing, a folder, unreadable, or not UTF-8 text."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{what} not found; check the path{suffix}") from None
    except IsADirectoryError:
        raise UserError(f"{what} is a folder; {folder_hint(path)}{suffix}") from None
    except OSError as err:
        raise UserError(
            f"{what} cannot be read: {err.strerror or err}; check its permissions{suffix}"
        ) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UserError(
            f"{what} is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
            f"save it as UTF-8 YAML{suffix}"
        ) from None


def yaml_error_position(err: yaml.YAMLError, text: str) -> tuple[str, str]:
    """(" line N" or "", one-line problem) for a PyYAML error: scanner and parser errors carry a
    mark; a reader error (a control character) carries only an offset into ``text``."""
    mark = getattr(err, "problem_mark", None)
    if mark is not None:
        return f" line {mark.line + 1}", str(getattr(err, "problem", None) or "not valid YAML")
    if isinstance(err, yaml.reader.ReaderError):
        line = text.count("\n", 0, max(err.position, 0)) + 1
        char = err.character if isinstance(err.character, int) else ord(err.character)
        return f" line {line}", f"control character #x{char:04x} is not allowed"
    return "", str(err).splitlines()[0] if str(err) else "not valid YAML"


class ConfigBuilder:
    """Applies layers in precedence order; each layer is validated as it is applied."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {k: spec.default for k, spec in SCHEMA.items()}
        self.sources: dict[str, str] = dict.fromkeys(SCHEMA, "default")

    def apply(self, data: Mapping[str, Any], source: str) -> ConfigBuilder:
        for key, value in _flatten(data).items():
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
            data = yaml.safe_load(text)
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
        return Config(self.values, self.sources)


def parse_assignment(text: str, source: str) -> tuple[str, Any]:
    """``key=value`` (value in YAML syntax) -> (key, value)."""
    key, sep, raw = text.partition("=")
    key = key.strip().removeprefix("--")
    if not sep or not key:
        raise UserError(f"{source} {text!r}: expected key=value, e.g. {source} learning_rate=0.01")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
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


def find_base_config() -> Path | None:
    """Locate config/config.yaml: $SWEEPKIT_BASE_CONFIG, ./config/, then the project checkout."""
    env = os.environ.get("SWEEPKIT_BASE_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise UserError(
                f"SWEEPKIT_BASE_CONFIG={env} does not exist; unset it or point it at config/config.yaml"
            )
        return path
    for candidate in (
        Path.cwd() / "config" / "config.yaml",
        Path(__file__).resolve().parent.parent / "config" / "config.yaml",
    ):
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
        builder.apply_file(Path(preset), f"--config {preset}")
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
