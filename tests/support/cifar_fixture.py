"""A tiny CIFAR-10 in the real on-disk format, for tests that must not download 170 MB.

``make_cifar(root)`` writes ``root/cifar-10-batches-py/`` with ``data_batch_1..5``, ``test_batch``
and ``batches.meta`` as the real files are: protocol-2 pickles of dicts with bytes keys,
``b"data"`` an (N, 3072) uint8 array of channel-major rows (1024 red, 1024 green, 1024 blue) and
``b"labels"`` a list of ints. Its md5s are not torchvision's, so it also writes an md5sum-format
``checksums.md5`` beside the batches; the reader uses it only when told to (``md5_file=`` or
``SWEEPKIT_CIFAR_MD5_FILE``). ``make_cifar_archive(path)`` packs the same folder as the official
``cifar-10-python.tar.gz`` for the staging tests.

Images are learnable: each class has its own colour, plus noise.
Run ``python tests/support/cifar_fixture.py ROOT`` to write one by hand.
"""

from __future__ import annotations

import hashlib
import pickle
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FOLDER = "cifar-10-batches-py"
LABEL_NAMES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


@dataclass
class FakeCifar:
    root: Path  # holds cifar-10-batches-py/
    folder: Path
    md5_file: Path
    train_x: np.ndarray  # (N, 3, 32, 32) uint8, in file order (batch 1 first)
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def _images(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    colours = np.linspace(20, 230, 10)[:, None] * np.array([1.0, 0.6, 0.3])  # (10, 3)
    base = colours[labels][:, :, None, None]  # (N, 3, 1, 1)
    noise = rng.integers(-20, 21, size=(len(labels), 3, 32, 32))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _write_batch(path: Path, name: str, x: np.ndarray, y: np.ndarray) -> None:
    batch = {
        b"batch_label": name.encode(),
        b"labels": [int(v) for v in y],
        b"data": x.reshape(len(x), 3072),  # channel-major rows, as in the real files
        b"filenames": [f"img_{i:05d}.png".encode() for i in range(len(x))],
    }
    with open(path, "wb") as handle:
        pickle.dump(batch, handle, protocol=2)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def make_cifar(root: Path, *, per_batch: int = 20, test_size: int = 20, seed: int = 0) -> FakeCifar:
    rng = np.random.default_rng(seed)
    folder = root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    train_y = rng.integers(0, 10, size=5 * per_batch)
    train_x = _images(rng, train_y)
    test_y = rng.integers(0, 10, size=test_size)
    test_x = _images(rng, test_y)
    names = []
    for i in range(5):
        part = slice(i * per_batch, (i + 1) * per_batch)
        name = f"data_batch_{i + 1}"
        _write_batch(folder / name, f"training batch {i + 1} of 5", train_x[part], train_y[part])
        names.append(name)
    _write_batch(folder / "test_batch", "testing batch 1 of 1", test_x, test_y)
    meta = {b"num_cases_per_batch": per_batch, b"label_names": [n.encode() for n in LABEL_NAMES]}
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump(meta, handle, protocol=2)
    names += ["test_batch", "batches.meta"]
    (folder / "readme.html").write_text("<html>stand-in for the real archive's readme</html>\n")
    md5_file = folder / "checksums.md5"
    md5_file.write_text("".join(f"{md5(folder / n)}  {n}\n" for n in names))
    return FakeCifar(root, folder, md5_file, train_x, train_y, test_x, test_y)


def make_cifar_archive(path: Path, **kwargs: int) -> tuple[Path, Path]:
    """Write ``path`` (a .tar.gz like the official one) and an md5 list covering it and its files.

    Returns (archive, md5_file).
    """
    work = path.parent / f".{path.name}.src"
    fake = make_cifar(work, **kwargs)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(fake.folder, arcname=FOLDER, recursive=False)  # the directory entry, as upstream
        for member in sorted(fake.folder.iterdir()):
            if member.name != "checksums.md5":
                tar.add(member, arcname=f"{FOLDER}/{member.name}")
    md5_file = path.parent / f"{path.name}.md5"
    md5_file.write_text(fake.md5_file.read_text() + f"{md5(path)}  cifar-10-python.tar.gz\n")
    return path, md5_file


if __name__ == "__main__":
    made = make_cifar(Path(sys.argv[1]))
    print(f"data_path: {made.root}\n{made.md5_file} (export SWEEPKIT_CIFAR_MD5_FILE to use it)")
