"""``loader: workers``: the input pipeline of the usual single-file W&B training script, PIL
transforms (crop, flip, resize, normalise) in DataLoader worker processes. It is the baseline the
throughput benchmark (bench/throughput.py) measures the device pipeline (pipeline.py) against, and
it follows the same epoch plan, so a run resumes mid-epoch on it too."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from sweepkit.train.distributed import World
from sweepkit.train.plan import MEAN, PAD, STD, Batch, plan_epoch


class _PILDataset(torch.utils.data.Dataset):
    """The per-image PIL pipeline of the usual single-file W&B training script, over uint8
    tensors."""

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
    """DataLoader with worker processes and PIL transforms, as the usual single-file W&B training
    script loads CIFAR-10."""

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
