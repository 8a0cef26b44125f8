"""torchvision ResNets for CIFAR-sized inputs, with optional ImageNet weights from the local cache."""

from __future__ import annotations

import torch
from torch import nn

from sweepkit.train.config import Config
from sweepkit.train.errors import UserError


def build_model(cfg: Config) -> nn.Module:
    import torchvision

    model: torchvision.models.ResNet = getattr(torchvision.models, cfg.model_name)(weights=None)
    if cfg.pretrained:
        # Weights come only from the staged torch cache: nothing downloads on a compute node.
        from sweepkit.train.staged import require_weights

        path = require_weights(cfg.model_name)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a truncated or foreign file
            raise UserError(
                f"cannot read ImageNet weights {path} ({err.__class__.__name__}); "
                f"stage them again: sweepkit data weights {cfg.model_name}"
            ) from None
        model.load_state_dict(state)
    if cfg.stem == "cifar":
        # 3x3 stride-1 stem and no max-pool: keeps 32 px images at 32x32 into layer1.
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()  # type: ignore[assignment]
    if cfg.finetune:
        for param in model.parameters():
            param.requires_grad_(False)
    model.fc = nn.Linear(model.fc.in_features, cfg.num_classes)
    if cfg.finetune and cfg.stem == "cifar":
        # A fresh stem cannot stay frozen at its random initialisation.
        model.conv1.weight.requires_grad_(True)
    return model
