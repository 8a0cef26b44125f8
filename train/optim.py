"""Optimisers and per-step learning-rate schedules (warm-up, step, cosine, one-cycle)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from sweepkit.train.config import Config


def make_optimizer(cfg: Config, model: nn.Module, device: torch.device) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    # Fused kernels on CUDA: one launch per step instead of one per parameter tensor.
    fused = device.type == "cuda"
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.learning_rate,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov and cfg.momentum > 0,
            weight_decay=cfg.weight_decay,
            fused=fused,
        )
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(
            params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, fused=fused
        )
    return torch.optim.Adam(
        params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, fused=fused
    )


def lr_factor(cfg: Config, steps_per_epoch: int) -> Callable[[int], float]:
    """Multiplier of the peak learning rate at optimiser step ``step`` (0-based)."""
    total = max(1, cfg.num_epochs * steps_per_epoch)
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    if cfg.scheduler == "onecycle" and warmup == 0:
        warmup = int(0.3 * total)  # OneCycleLR's default pct_start

    def factor(step: int) -> float:
        if step < warmup:
            start = 1 / 25 if cfg.scheduler == "onecycle" else 0.0
            return start + (1 - start) * (step + 1) / warmup
        if cfg.scheduler == "step":
            return cfg.gamma ** (step // (cfg.step_size * steps_per_epoch))
        if cfg.scheduler in ("cosine", "onecycle"):
            progress = (step - warmup) / max(1, total - warmup)
            floor = 1 / 25e4 if cfg.scheduler == "onecycle" else 0.0
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return 1.0

    return factor


def make_scheduler(
    cfg: Config, optimizer: torch.optim.Optimizer, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg, steps_per_epoch))
