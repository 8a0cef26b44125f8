"""Datasets as uint8 tensors: CIFAR-10 from staged files, scikit-learn's digits, or random images.

Every dataset comes back as an ``ImageSplits`` of CPU uint8 tensors (N, 3, 32, 32) and int64
labels; the input pipeline moves, augments and normalises them. Nothing here downloads.

Splits are drawn with a ``torch.Generator`` seeded by ``split_seed``, which a sweep keeps the same
for every run (and which is independent of the training seed), so all runs of a sweep validate on
the same images (the usual single-file W&B training script draws a new split per run, so its runs
are compared on different validation sets). In order, from one generator:

1. the validation part: ``val_fraction`` of the training set (CIFAR-10's 50,000 images; the 80%
   of digits left after its fixed test split);
2. the training part, subsampled by ``sample_ratio``. The validation set does not depend on
   ``sample_ratio``, and a smaller ratio keeps a subset of the images of a larger one, so runs
   that sweep ``sample_ratio`` stay comparable. (The usual single-file W&B training script subsamples
   before splitting, which changes the validation set with the ratio.)

The test split is fixed: CIFAR-10's ``test_batch``; for digits a 20% split drawn with a constant
seed; for synthetic data a few random images.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sweepkit.train.errors import UserError
from sweepkit.train.staged import verify_cifar

DATASETS = ("cifar10", "digits", "synthetic")
IMAGE_SIZE = 32
DIGITS_TEST_FRACTION = 0.2
DIGITS_TEST_SEED = 0  # constant: the digits test set is the same for every sweep
SYNTHETIC_EVAL_MAX = 1024


@dataclass
class ImageSplits:
    train_x: torch.Tensor  # uint8, (N, 3, H, W), CPU, contiguous
    train_y: torch.Tensor  # int64, (N,)
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    dataset: str  # "cifar10" | "digits" | "synthetic"
    class_names: list[str] = field(default_factory=list)


def load_splits(
    dataset: str,
    data_path: str,
    *,
    split_seed: int,
    val_fraction: float,
    sample_ratio: float,
    synthetic_size: int,
    num_classes: int,
    md5_file: str | os.PathLike[str] | None = None,
) -> ImageSplits:
    """Load ``dataset`` and split it (see the module docstring).

    ``md5_file`` (else ``$SWEEPKIT_CIFAR_MD5_FILE``) replaces torchvision's CIFAR-10 md5 list with
    an md5sum-format file, for CIFAR-format archives built locally (tests); leave it unset for the
    real dataset.
    """
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if not 0.0 < sample_ratio <= 1.0:
        raise UserError(f"sample_ratio must be in (0, 1], got {sample_ratio}")
    generator = torch.Generator().manual_seed(split_seed)
    if dataset == "cifar10":
        _expect_classes(dataset, num_classes, 10)
        train_x, train_y, test_x, test_y, names = _read_cifar(data_path, md5_file)
    elif dataset == "digits":
        _expect_classes(dataset, num_classes, 10)
        x, y = _digits()
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(DIGITS_TEST_SEED))
        n_test = round(len(y) * DIGITS_TEST_FRACTION)
        test_idx, rest = order[:n_test].sort().values, order[n_test:].sort().values
        train_x, train_y, test_x, test_y = x[rest], y[rest], x[test_idx], y[test_idx]
        names = [str(d) for d in range(10)]
    elif dataset == "synthetic":
        if num_classes < 2:
            raise UserError(f"num_classes must be at least 2 for synthetic data, got {num_classes}")
        if synthetic_size < 1:
            raise UserError(f"synthetic_size must be at least 1, got {synthetic_size}")
        return _synthetic(synthetic_size, num_classes, sample_ratio, generator)
    else:
        raise UserError(f"dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")

    val_idx, train_idx = _split(len(train_y), val_fraction, sample_ratio, generator)
    return ImageSplits(
        train_x=train_x[train_idx].contiguous(),
        train_y=train_y[train_idx].contiguous(),
        val_x=train_x[val_idx].contiguous(),
        val_y=train_y[val_idx].contiguous(),
        test_x=test_x.contiguous(),
        test_y=test_y.contiguous(),
        num_classes=num_classes,
        dataset=dataset,
        class_names=names,
    )


def _expect_classes(dataset: str, num_classes: int, actual: int) -> None:
    if num_classes != actual:
        raise UserError(
            f"num_classes is {num_classes} but {dataset} has {actual}; set num_classes: {actual}"
        )


def _split(
    n: int, val_fraction: float, sample_ratio: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(validation indices, training indices), both sorted, drawn in that order from ``generator``."""
    n_val = round(n * val_fraction)
    if not 0 < n_val < n:
        raise UserError(f"val_fraction {val_fraction} of {n} images leaves an empty split")
    order = torch.randperm(n, generator=generator)
    val_idx, train_part = order[:n_val], order[n_val:]
    keep = max(1, round(len(train_part) * sample_ratio))
    train_idx = train_part[torch.randperm(len(train_part), generator=generator)[:keep]]
    return val_idx.sort().values, train_idx.sort().values


# ---------------------------------------------------------------------------------------------
# CIFAR-10
# ---------------------------------------------------------------------------------------------


class _ArraysOnly(pickle.Unpickler):
    """CIFAR batches hold dicts, lists, bytes and numpy arrays; refuse anything else a file on a
    shared disk might smuggle in (pickle can call any importable function)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol 2 stores bytes when written by Python 3
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR-10 file")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict[Any, Any]:
    try:
        with open(path, "rb") as handle:
            content = _ArraysOnly(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise UserError(f"cannot decode CIFAR-10 file {path}: {err}") from err
    if not isinstance(content, dict):
        raise UserError(f"cannot decode CIFAR-10 file {path}: expected a dict, got {type(content)}")
    return content


def _entry(batch: dict[Any, Any], key: str, path: Path) -> Any:
    for candidate in (key.encode(), key):
        if candidate in batch:
            return batch[candidate]
    raise UserError(f"CIFAR-10 file {path} has no {key!r} entry")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    data = np.asarray(_entry(batch, "data", path))
    labels = np.asarray(_entry(batch, "labels", path), dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * IMAGE_SIZE * IMAGE_SIZE:
        raise UserError(
            f"CIFAR-10 file {path}: data is {data.dtype} {data.shape}, not N x 3072 uint8"
        )
    if labels.shape != (len(data),) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise UserError(f"CIFAR-10 file {path}: labels must be {len(data)} integers in 0..9")
    return data, labels


def _read_cifar(
    data_path: str, md5_file: str | os.PathLike[str] | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    folder = verify_cifar(data_path, md5_file)
    parts = [_read_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    test_data, test_labels = _read_batch(folder / "test_batch")
    meta = _unpickle(folder / "batches.meta")
    names = [
        n.decode() if isinstance(n, bytes) else str(n)
        for n in _entry(meta, "label_names", folder / "batches.meta")
    ]

    def images(data: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(data).reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE)

    train_x = images(np.concatenate([d for d, _ in parts]))
    train_y = torch.from_numpy(np.concatenate([lab for _, lab in parts]))
    return train_x, train_y, images(test_data), torch.from_numpy(test_labels), names


# ---------------------------------------------------------------------------------------------
# digits and synthetic
# ---------------------------------------------------------------------------------------------


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 8x8 digits (values 0..16) as 32x32x3 uint8: bilinear upscaling to
    24x24 and a 4-pixel black border, the way MNIST centres its digits with a margin."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    small = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) * (255.0 / 16.0)
    inner = IMAGE_SIZE - 8
    large = F.interpolate(small, size=(inner, inner), mode="bilinear", align_corners=False)
    large = F.pad(large, (4, 4, 4, 4)).round().clamp(0, 255).to(torch.uint8)
    return large.expand(-1, 3, -1, -1).contiguous(), torch.as_tensor(
        bunch.target, dtype=torch.int64
    )


def _synthetic(
    size: int, num_classes: int, sample_ratio: float, generator: torch.Generator
) -> ImageSplits:
    """Random images and labels for throughput runs: ``size`` training images (times
    ``sample_ratio``) and a small validation and test set (a tenth of it, at most 1,024 each)."""
    n_train = max(1, round(size * sample_ratio))
    n_eval = max(1, min(SYNTHETIC_EVAL_MAX, size // 10))
    shape = (IMAGE_SIZE, IMAGE_SIZE)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randint(0, 256, (n, 3, *shape), dtype=torch.uint8, generator=generator)
        return x, torch.randint(0, num_classes, (n,), generator=generator)

    (train_x, train_y), (val_x, val_y), (test_x, test_y) = draw(n_train), draw(n_eval), draw(n_eval)
    return ImageSplits(
        train_x,
        train_y,
        val_x,
        val_y,
        test_x,
        test_y,
        num_classes,
        "synthetic",
        [str(c) for c in range(num_classes)],
    )
