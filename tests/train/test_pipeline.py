"""Device-side augmentation and the two loaders (train/pipeline.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sweepkit.train.config import build_config
from sweepkit.train.pipeline import (
    PAD,
    DeviceLoader,
    Normalizer,
    make_loader,
    plan_epoch,
    random_crop_flip,
)

CPU = torch.device("cpu")


def coordinate_images(n: int, size: int = 32) -> torch.Tensor:
    """Images whose pixels encode their own (row, col) so a crop's origin can be read back."""
    rows = torch.arange(size).view(size, 1).expand(size, size)
    cols = torch.arange(size).view(1, size).expand(size, size)
    img = torch.stack([rows + 10, cols + 10, torch.full((size, size), 200)])  # 0 only in padding
    return img.unsqueeze(0).repeat(n, 1, 1, 1).to(torch.uint8)


def test_crop_offsets_stay_in_range_and_match_torchvision_semantics():
    n = 512
    images = coordinate_images(n)
    plan = plan_epoch(n, seed=3, epoch=0)
    out = random_crop_flip(images, plan.dy, plan.dx, torch.zeros(n, dtype=torch.bool))
    assert out.shape == images.shape and out.dtype == torch.uint8
    assert int(plan.dy.min()) >= 0 and int(plan.dy.max()) <= 2 * PAD
    for i in range(0, n, 37):
        dy, dx = int(plan.dy[i]), int(plan.dx[i])
        padded = F.pad(images[i], (PAD, PAD, PAD, PAD))
        assert torch.equal(out[i], padded[:, dy : dy + 32, dx : dx + 32])
    # every offset in [0, 8] occurs: the crop explores the whole padded range
    assert set(plan.dy.tolist()) == set(range(2 * PAD + 1))


def test_flip_happens_about_half_the_time_and_mirrors():
    n = 4000
    plan = plan_epoch(n, seed=1, epoch=2)
    assert 0.45 < plan.flip.float().mean().item() < 0.55
    images = coordinate_images(8)
    centre = torch.full((8,), PAD)
    flips = torch.tensor([True, False] * 4)
    out = random_crop_flip(images, centre, centre, flips)
    assert torch.equal(out[0], images[0].flip(2)) and torch.equal(out[1], images[1])


def test_plans_depend_only_on_seed_and_epoch():
    a, b, c = plan_epoch(100, 0, 1), plan_epoch(100, 0, 1), plan_epoch(100, 0, 2)
    assert torch.equal(a.order, b.order) and torch.equal(a.dx, b.dx)
    assert not torch.equal(a.order, c.order)


def test_eval_batches_are_never_augmented():
    images = torch.randint(0, 256, (70, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(70) % 10
    normalize = Normalizer(CPU, 32, channels_last=False)
    loader = DeviceLoader(images, labels, 32, CPU, normalize, train=False)
    batches = list(loader.epoch())
    assert [len(y) for _, y in batches] == [32, 32, 6]  # keeps the ragged last batch
    x = torch.cat([b[0] for b in batches])
    assert torch.allclose(x, normalize(images)) and torch.equal(
        torch.cat([b[1] for b in batches]), labels
    )
    assert torch.equal(torch.cat([b[0] for b in loader.epoch()]), x)  # identical every time


def test_train_batches_resume_mid_epoch_exactly():
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(64) % 10
    loader = DeviceLoader(images, labels, 8, CPU, Normalizer(CPU, 32, True), train=True, seed=4)
    full = list(loader.epoch(epoch=1))
    tail = list(loader.epoch(epoch=1, start_step=5))
    assert len(full) == 8 and len(tail) == 3
    for (xa, ya), (xb, yb) in zip(full[5:], tail, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_resize_normalise_and_channels_last():
    normalize = Normalizer(CPU, 64, channels_last=True)
    x = normalize(torch.full((2, 3, 32, 32), 128, dtype=torch.uint8))
    assert x.shape == (2, 3, 64, 64) and x.is_contiguous(memory_format=torch.channels_last)
    assert abs(float(x[0, 0].mean()) - (128 / 255 - 0.485) / 0.229) < 1e-4


def test_workers_loader_is_the_usual_scripts_pipeline_with_clean_eval():
    cfg = build_config(
        sets=[
            "loader=workers",
            "num_workers=0",
            "image_size=40",
            "batch_size=8",
            "eval_batch_size=16",
        ]
    )
    images = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(20) % 10
    train = make_loader(cfg, images, labels, CPU, train=True)
    batches = list(train.epoch(epoch=0))
    assert len(batches) == len(train) == 2 and batches[0][0].shape == (8, 3, 40, 40)
    evaluation = make_loader(cfg, images, labels, CPU, train=False)
    first = torch.cat([x for x, _ in evaluation.epoch()])
    again = torch.cat([x for x, _ in evaluation.epoch()])
    assert first.shape == (20, 3, 40, 40) and torch.equal(first, again)  # no random transform
