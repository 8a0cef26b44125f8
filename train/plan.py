"""What the input pipelines share: the padding of the random crop, ImageNet's normalisation, and
the epoch plan, everything random about one training epoch drawn up front from one CPU generator
seeded by (seed, epoch), so a batch depends only on (seed, epoch, step)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

PAD = 4
# ImageNet statistics: the pretrained weights expect them (the usual single-file W&B training
# script normalises with them too).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

Batch = tuple[torch.Tensor, torch.Tensor]


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    # Distinct, reproducible streams per epoch; large odd multiplier avoids (seed, epoch) collisions.
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


@dataclass
class EpochPlan:
    """Everything random about one training epoch, drawn up front on the CPU."""

    order: torch.Tensor  # permutation of the training set
    dy: torch.Tensor  # crop offsets in [0, 2*PAD]
    dx: torch.Tensor
    flip: torch.Tensor  # bool


def plan_epoch(n: int, seed: int, epoch: int, augment: str = "crop_flip") -> EpochPlan:
    gen = epoch_generator(seed, epoch)
    order = torch.randperm(n, generator=gen)
    offsets = torch.randint(0, 2 * PAD + 1, (2, n), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    if augment == "none":
        offsets.fill_(PAD)  # the centre crop of the padded image is the image itself
    if augment != "crop_flip":
        flip.zero_()
    return EpochPlan(order, offsets[0], offsets[1], flip)
