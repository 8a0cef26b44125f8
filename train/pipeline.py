"""Input pipelines: batches of normalised float images for training and evaluation.

``loader: device`` (the fast path) keeps the whole uint8 dataset on the training device. Each
epoch draws its order and augmentation parameters (crop offsets, flips) from one CPU generator
seeded by (seed, epoch), so a batch depends only on (seed, epoch, step): a run resumed mid-epoch
sees exactly the batches an uninterrupted run would, on any device. Crop (pad 4), flip, the
uint8->float conversion, normalisation, resize and channels_last all run batched on the device.

In a data-parallel run (``world`` of several ranks) ``batch_size`` is the global batch: every rank
draws the same epoch plan, and rank r takes the r-th equal share of each global batch, so the
steps of an epoch and the images each step sees are those of one process with that batch. Each
evaluation split is cut into one contiguous part per rank.

``loader: workers`` is the pipeline of the usual single-file W&B training script (PIL transforms in
DataLoader worker processes, train/pil_loader.py); it is the baseline the throughput benchmark
compares against. Validation and test batches are never augmented in either pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from sweepkit.train.config import Config
from sweepkit.train.distributed import World
from sweepkit.train.pil_loader import WorkersLoader
from sweepkit.train.plan import MEAN, PAD, STD, Batch, plan_epoch


def random_crop_flip(
    images: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor
) -> torch.Tensor:
    """Batched RandomCrop(size, padding=PAD) + RandomHorizontalFlip on a (B, C, H, W) tensor.

    Zero padding as torchvision's RandomCrop(padding=4) does; ``dy``/``dx`` in [0, 2*PAD].
    """
    b, c, h, w = images.shape
    padded = F.pad(images, (PAD, PAD, PAD, PAD))
    rows = (dy.view(b, 1) + torch.arange(h, device=images.device)).view(b, 1, h, 1)
    cols = (dx.view(b, 1) + torch.arange(w, device=images.device)).view(b, 1, 1, w)
    batch_idx = torch.arange(b, device=images.device).view(b, 1, 1, 1)
    chan_idx = torch.arange(c, device=images.device).view(1, c, 1, 1)
    cropped = padded[batch_idx, chan_idx, rows, cols]
    return torch.where(flip.view(b, 1, 1, 1), cropped.flip(3), cropped)


class Normalizer:
    """uint8 (B, 3, H, W) -> normalised float, resized to ``image_size``, in the chosen layout."""

    def __init__(self, device: torch.device, image_size: int, channels_last: bool):
        self.mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1) * 255
        self.inv_std = 1 / (torch.tensor(STD, device=device).view(1, 3, 1, 1) * 255)
        self.image_size = image_size
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.float() - self.mean) * self.inv_std
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            # Bilinear, as the usual single-file W&B training script's Resize((224, 224)) on PIL
            # images.
            x = F.interpolate(
                x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
            )
        return x.contiguous(memory_format=self.memory_format)


class DeviceLoader:
    """Serves batches from uint8 tensors resident on the training device."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        device: torch.device,
        normalize: Normalizer,
        *,
        train: bool,
        seed: int = 0,
        augment: str = "crop_flip",
        world: World | None = None,
    ):
        self.augment = augment
        self.world = world or World()
        self.images = images.to(device, non_blocking=True)
        self.labels = labels.to(device, non_blocking=True)
        self.batch_size = batch_size
        self.device = device
        self.normalize = normalize
        self.train = train
        self.seed = seed

    def __len__(self) -> int:
        n = len(self.labels)
        # Training drops the ragged last batch (constant shapes for torch.compile); eval keeps it.
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    def epoch(self, epoch: int = 0, start_step: int = 0) -> Iterator[Batch]:
        n, bs = len(self.labels), self.batch_size
        if not self.train:
            for start in range(start_step * bs, n, bs):
                yield (
                    self.normalize(self.images[start : start + bs]),
                    self.labels[start : start + bs],
                )
            return
        plan = plan_epoch(n, self.seed, epoch, self.augment)
        order, dy, dx, flip = (
            t.to(self.device, non_blocking=True) for t in (plan.order, plan.dy, plan.dx, plan.flip)
        )
        share = bs // self.world.size  # this rank's part of each global batch
        for step in range(start_step, len(self)):
            first = step * bs + self.world.rank * share
            sl = slice(first, first + share)
            idx = order[sl]
            images = random_crop_flip(self.images[idx], dy[sl], dx[sl], flip[sl])
            yield self.normalize(images), self.labels[idx]


Loader = DeviceLoader | WorkersLoader


def make_loader(
    cfg: Config,
    images: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
    *,
    train: bool,
    world: World | None = None,
) -> Loader:
    """The loader ``cfg.loader`` names, for the training or an evaluation split (``world``: this
    rank's share of it in a data-parallel run)."""
    world = world or World()
    batch_size = cfg.batch_size if train else cfg.eval_batch_size
    if not train and world.distributed:
        part = world.local_slice(len(labels))
        images, labels = images[part], labels[part]
    if cfg.loader == "workers":
        return WorkersLoader(
            images,
            labels,
            batch_size,
            device,
            train=train,
            image_size=cfg.image_size,
            num_workers=cfg.num_workers,
            pin_memory=cfg.pin_memory,
            channels_last=cfg.channels_last,
            seed=cfg.seed,
            augment=cfg.augment,
            world=world,
        )
    normalize = Normalizer(device, cfg.image_size, cfg.channels_last)
    return DeviceLoader(
        images,
        labels,
        batch_size,
        device,
        normalize,
        train=train,
        seed=cfg.seed,
        augment=cfg.augment,
        world=world,
    )
