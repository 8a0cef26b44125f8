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

``loader: workers`` is the seed's pipeline (PIL transforms in DataLoader worker processes); it is
the baseline the throughput benchmark compares against. Validation and test batches are never
augmented in either pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from train.config import Config
from train.distributed import World

PAD = 4
# ImageNet statistics: the pretrained weights expect them and the seed used them.
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
            # Bilinear as the seed's Resize((224, 224)) on PIL images.
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


class _PILDataset(torch.utils.data.Dataset):
    """The seed's per-image PIL pipeline over uint8 tensors."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):  # type: ignore[no-untyped-def]
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):  # type: ignore[no-untyped-def]
        from PIL import Image

        img = Image.fromarray(self.images[i].permute(1, 2, 0).numpy())
        return self.transform(img), int(self.labels[i])


class _OffsetSampler(torch.utils.data.Sampler[int]):
    """A seeded permutation per epoch that can start part-way through (mid-epoch resume)."""

    def __init__(self, n: int, seed: int, shuffle: bool, batch_size: int, world: World):
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.batch_size, self.world = batch_size, world
        self.epoch, self.skip = 0, 0

    def _rank_order(self) -> torch.Tensor:
        order = (
            plan_epoch(self.n, self.seed, self.epoch).order
            if self.shuffle
            else torch.arange(self.n)
        )
        if not self.world.distributed:
            return order
        # this rank's share of every whole global batch (training drops the ragged last one)
        steps, share = self.n // self.batch_size, self.batch_size // self.world.size
        batches = order[: steps * self.batch_size].view(steps, self.world.size, share)
        return batches[:, self.world.rank].reshape(-1)

    def __iter__(self) -> Iterator[int]:
        return iter(self._rank_order()[self.skip :].tolist())

    def __len__(self) -> int:
        return len(self._rank_order()) - self.skip


class WorkersLoader:
    """DataLoader with worker processes and PIL transforms: the seed-style pipeline."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        device: torch.device,
        *,
        train: bool,
        image_size: int,
        num_workers: int,
        pin_memory: bool,
        channels_last: bool,
        seed: int = 0,
        augment: str = "crop_flip",
        world: World | None = None,
    ):
        from torchvision import transforms as T

        world = world or World()

        steps: list = []
        if train and augment != "none":
            steps.append(T.RandomCrop(images.shape[-1], padding=PAD))
        if train and augment == "crop_flip":
            steps.append(T.RandomHorizontalFlip())
        steps += [T.Resize((image_size, image_size)), T.ToTensor(), T.Normalize(MEAN, STD)]
        # evaluation splits arrive already cut to this rank's part
        sampler_world = world if train else World()
        self.sampler = _OffsetSampler(len(labels), seed, train, batch_size, sampler_world)
        self.batch_size, self.train, self.device = batch_size, train, device
        share = batch_size // world.size if train else batch_size
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.loader = torch.utils.data.DataLoader(
            _PILDataset(images, labels, T.Compose(steps)),
            batch_size=share,
            sampler=self.sampler,
            num_workers=num_workers,
            pin_memory=pin_memory and device.type == "cuda",
            drop_last=train,
            persistent_workers=False,
        )

    def __len__(self) -> int:
        n = self.sampler.n
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    def epoch(self, epoch: int = 0, start_step: int = 0) -> Iterator[Batch]:
        share = self.batch_size // self.sampler.world.size if self.train else self.batch_size
        self.sampler.epoch, self.sampler.skip = epoch, start_step * share
        for x, y in self.loader:
            yield (
                x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format),
                y.to(self.device, non_blocking=True),
            )


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
