"""Every configuration key: its type, default, allowed values and help (``SCHEMA``).

Keys are flat, dotted for groups (``wandb.mode``); YAML files may nest groups. The typed ``Config``
(train/config/typed.py) has one field per key, a nested dataclass per group; tests check that the
two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
    # --- the keys of the usual single-file W&B training script (names kept so its sweep
    # definitions keep working) ---
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
        int,
        224,
        "training resolution (224 as the usual single-file W&B training script; 32 is native)",
        min=16,
        max=512,
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

# The W&B keys of the usual single-file W&B training script, accepted so that its config.yaml
# keeps working.
LEGACY_ALIASES = {"wandb_mode": "wandb.mode", "wandb_project": "wandb.project"}
LEGACY_USE_WANDB = "use_wandb"


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
