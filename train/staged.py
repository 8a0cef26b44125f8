"""What ``sweepkit data`` stages, checked at run time: the CIFAR-10 batches folder (md5 of each
file) and torchvision's ImageNet weights (the sha256 prefix in the file name, as ``torch.hub``
checks it). Nothing here downloads. ``sweepkit.train.data`` calls ``verify_cifar`` before decoding and the
model code calls ``require_weights`` before loading, so a missing or corrupt file is one line that
names the path and the command that fixes it. The staging CLI itself is train/staging.py.

Checksums come from torchvision's own constants. For a CIFAR-format archive you built yourself
(the tests do), an md5sum-format list can replace torchvision's, but only when asked for explicitly:
``SWEEPKIT_CIFAR_MD5_FILE`` (or ``sweepkit data cifar10 --md5-file FILE``).

torch and torchvision are imported inside functions: ``sweepkit data --help`` stays fast.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from sweepkit.train.errors import UserError

CIFAR_FOLDER = "cifar-10-batches-py"
MD5_FILE_ENV = "SWEEPKIT_CIFAR_MD5_FILE"
WEIGHTS_MODELS = ("resnet18", "resnet34", "resnet50", "resnet101")
# torch.hub.HASH_REGEX: the sha256 prefix embedded in a weights file name ("resnet50-0676ba61.pth").
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
CHUNK = 1 << 20


@dataclass(frozen=True)
class CifarChecksums:
    """Expected md5 per file name (the seven batch files and the archive) and where they came from."""

    md5: dict[str, str]
    source: str  # "torchvision" or the path of an md5sum-format file


def cifar_file_names() -> list[str]:
    """The files of a complete ``cifar-10-batches-py`` folder, from torchvision's constants."""
    from torchvision.datasets import CIFAR10

    return [n for n, _ in CIFAR10.train_list + CIFAR10.test_list] + [CIFAR10.meta["filename"]]


def cifar_archive() -> tuple[str, str]:
    """(official URL, archive file name) of the CIFAR-10 python archive."""
    from torchvision.datasets import CIFAR10

    return CIFAR10.url, CIFAR10.filename


def cifar_checksums(md5_file: str | os.PathLike[str] | None = None) -> CifarChecksums:
    """Torchvision's md5 list, unless an md5sum-format file is named (argument, then environment)."""
    chosen = md5_file if md5_file is not None else os.environ.get(MD5_FILE_ENV) or None
    if chosen is None:
        from torchvision.datasets import CIFAR10

        known = {n: m for n, m in CIFAR10.train_list + CIFAR10.test_list}
        known[CIFAR10.meta["filename"]] = CIFAR10.meta["md5"]
        known[CIFAR10.filename] = CIFAR10.tgz_md5
        return CifarChecksums(known, "torchvision")
    path = Path(chosen).expanduser()
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise UserError(
            f"cannot read md5 list {path} ({MD5_FILE_ENV} or --md5-file): {err}"
        ) from err
    md5: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        match = re.fullmatch(r"([0-9a-fA-F]{32}) [ *](.+)", line.strip())
        if not match:
            raise UserError(
                f"{path}:{number}: expected 'MD5  FILENAME' (md5sum format), got {line!r}"
            )
        md5[Path(match.group(2)).name] = match.group(1).lower()
    missing = [n for n in cifar_file_names() if n not in md5]
    if missing:
        raise UserError(f"md5 list {path} has no entry for {', '.join(missing)}")
    return CifarChecksums(md5, str(path))


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def locate_cifar(data_path: str | os.PathLike[str]) -> Path | None:
    """The ``cifar-10-batches-py`` folder for ``data_path`` (its parent or the folder itself)."""
    root = Path(data_path).expanduser().absolute()
    if (root / CIFAR_FOLDER).is_dir():
        return root / CIFAR_FOLDER
    if root.is_dir() and (root.name == CIFAR_FOLDER or (root / "batches.meta").exists()):
        return root
    return None


def cifar_problems(folder: Path, checksums: CifarChecksums) -> list[str]:
    """What is wrong with a batches folder, one phrase per file; empty when it verifies."""
    problems = []
    for name in cifar_file_names():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} missing")
        elif file_digest(path, "md5") != checksums.md5[name]:
            problems.append(f"{name} md5 mismatch")
    return problems


def stage_command(root: Path) -> str:
    return f"sweepkit data cifar10 --root {root}"


def verify_cifar(
    data_path: str | os.PathLike[str], md5_file: str | os.PathLike[str] | None = None
) -> Path:
    """The verified batches folder for ``data_path``, or a ``UserError`` naming how to stage it."""
    folder = locate_cifar(data_path)
    if folder is None:
        root = Path(data_path).expanduser().absolute()
        raise UserError(
            f"no CIFAR-10 at data_path {root} (expected {root / CIFAR_FOLDER}/ with data_batch_1..5, "
            f"test_batch, batches.meta); stage it with: {stage_command(root)}"
        )
    checksums = cifar_checksums(md5_file)
    problems = cifar_problems(folder, checksums)
    if problems:
        raise UserError(
            f"CIFAR-10 at {folder} is incomplete or corrupt ({'; '.join(problems)}; md5 from "
            f"{checksums.source}); restage it with: {stage_command(folder.parent)}"
        )
    return folder


# ---------------------------------------------------------------------------------------------
# ImageNet weights in the torch cache
# ---------------------------------------------------------------------------------------------


def weights_url(model_name: str) -> str:
    """torchvision's ImageNet weights (IMAGENET1K_V1, what ``pretrained=True`` loads in the usual
    single-file W&B training script)."""
    if model_name not in WEIGHTS_MODELS:
        raise UserError(
            f"no ImageNet weights known for model_name {model_name!r}; choose one of: "
            + ", ".join(WEIGHTS_MODELS)
        )
    from torchvision.models import get_weight

    number = model_name.removeprefix("resnet")
    return str(get_weight(f"ResNet{number}_Weights.IMAGENET1K_V1").url)


def weights_file(model_name: str, torch_home: str | os.PathLike[str] | None = None) -> Path:
    """Where the cached weights must be: ``<torch hub dir>/checkpoints/<file name of the URL>``."""
    name = os.path.basename(urllib.parse.urlparse(weights_url(model_name)).path)
    if torch_home is not None:
        return Path(torch_home).expanduser().absolute() / "hub" / "checkpoints" / name
    import torch.hub

    return Path(torch.hub.get_dir()).expanduser().absolute() / "checkpoints" / name


def sha256_problem(path: Path, name: str | None = None) -> str | None:
    """None when the file's sha256 starts with the prefix in ``name`` (default: its own name),
    as ``torch.hub`` checks downloads."""
    name = name or path.name
    match = HASH_REGEX.search(name)
    if match is None:
        raise UserError(f"{name} carries no sha256 prefix in its name (NAME-HASH.EXT)")
    prefix, digest = match.group(1), file_digest(path, "sha256")
    if not digest.startswith(prefix):
        return f"sha256 mismatch (expected prefix {prefix}, got {digest[: len(prefix)]})"
    return None


def require_weights(model_name: str) -> Path:
    """The verified cached weights file; never downloads. Missing or corrupt: ``UserError``."""
    path = weights_file(model_name)
    fix = f"stage it on a machine with internet: sweepkit data weights {model_name}"
    if not path.is_file():
        raise UserError(
            f"pretrained: true needs ImageNet weights at {path} (torch cache, TORCH_HOME); {fix}"
        )
    problem = sha256_problem(path)
    if problem:
        raise UserError(f"ImageNet weights {path}: {problem}; {fix}")
    return path
