"""``sweepkit data``: stage CIFAR-10 and ImageNet weights once, on a machine with internet.

Nothing downloads at run time on a compute node. This command downloads (or copies from an offline
mirror), verifies with the checks of train/staged.py (which the trainer runs again before using
the files), installs atomically (temp file or folder + ``os.replace``) and prints the bind mount
and config line that point jobs and the image at what it staged.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from sweepkit.train.atomic import umask_mode
from sweepkit.train.errors import UserError
from sweepkit.train.staged import (
    CHUNK,
    CIFAR_FOLDER,
    MD5_FILE_ENV,
    WEIGHTS_MODELS,
    CifarChecksums,
    cifar_archive,
    cifar_checksums,
    cifar_problems,
    file_digest,
    sha256_problem,
    weights_file,
    weights_url,
)

# Where the printed bind lines mount staged data inside the image (a convention, not a requirement).
CONTAINER_CIFAR_DIR = "/data/cifar10"
CONTAINER_TORCH_HOME = "/cache/torch"  # the image sets TORCH_HOME here (containers/)


# ---------------------------------------------------------------------------------------------
# Fetching: download or copy to a temp file beside the destination
# ---------------------------------------------------------------------------------------------


def _is_url(source: str) -> bool:
    return urllib.parse.urlparse(source).scheme in ("http", "https", "ftp", "file")


def _fetch_to_temp(source: str, dest: Path, out: TextIO, offline_flag: str) -> Path:
    """Download ``source`` (URL, ``file://`` URL or local path) to a temp file in dest's folder."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    tmp = Path(tmp_name)
    os.chmod(tmp, umask_mode(0o666))  # staged data on a shared disk follows the umask
    is_url = _is_url(source)
    try:
        with os.fdopen(fd, "wb") as sink:
            if is_url:
                print(f"downloading {source}", file=out, flush=True)
                request = urllib.request.Request(source, headers={"User-Agent": "sweepkit"})
                with urllib.request.urlopen(request, timeout=60) as response:
                    shutil.copyfileobj(response, sink, CHUNK)
            else:
                print(f"copying {source}", file=out, flush=True)
                with open(Path(source).expanduser(), "rb") as handle:
                    shutil.copyfileobj(handle, sink, CHUNK)
    except (urllib.error.URLError, OSError) as err:
        tmp.unlink(missing_ok=True)
        reason = getattr(err, "reason", None) or err.strerror or err
        hint = f"; without internet here, copy {dest.name} from elsewhere and pass {offline_flag}"
        hint = hint if is_url else ""
        raise UserError(f"cannot fetch {source}: {reason}{hint}") from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


# ---------------------------------------------------------------------------------------------
# sweepkit data cifar10
# ---------------------------------------------------------------------------------------------


def _extract_batches(archive: Path, into: Path) -> None:
    """Extract only the regular files under ``cifar-10-batches-py/`` (no links, no paths outside)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                parts = member.name.split("/")
                if len(parts) != 2 or parts[0] != CIFAR_FOLDER or not member.isfile():
                    continue
                source = tar.extractfile(member)
                if source is None or parts[1] in ("", ".", ".."):
                    continue
                with source, open(into / parts[1], "wb") as sink:
                    shutil.copyfileobj(source, sink, CHUNK)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise UserError(f"cannot extract {archive}: {err}") from err


def _extract_verified(
    archive: Path, archive_name: str, root: Path, checksums: CifarChecksums
) -> None:
    """Extract into a temp folder beside ``root/cifar-10-batches-py``, verify it, then swap it in
    by renames: a folder that is there stays whole until the new one has verified."""
    folder = root / CIFAR_FOLDER
    staging = Path(tempfile.mkdtemp(prefix=f".{CIFAR_FOLDER}.", dir=root))
    os.chmod(staging, umask_mode(0o777))
    try:
        _extract_batches(archive, staging)
        problems = cifar_problems(staging, checksums)
        if problems:
            raise UserError(f"archive {archive_name} does not verify: {'; '.join(problems)}")
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{CIFAR_FOLDER}.old.", dir=root))
            os.replace(folder, old / CIFAR_FOLDER)
            os.replace(staging, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def stage_cifar(
    root: Path,
    *,
    source: str | None = None,
    md5_file: str | None = None,
    out: TextIO | None = None,
) -> Path:
    """Make ``root/cifar-10-batches-py`` complete and verified; returns the folder.

    Idempotent: a folder that verifies is left alone. A folder that does not is replaced as a
    whole, only after the new one has verified (the swap is a rename).
    """
    out = out or sys.stdout
    root = root.expanduser().absolute()
    folder = root / CIFAR_FOLDER
    checksums = cifar_checksums(md5_file)
    if folder.is_dir():
        problems = cifar_problems(folder, checksums)
        if not problems:
            print(f"already staged and verified (md5 from {checksums.source}): {folder}", file=out)
            return folder
        print(f"{folder} does not verify ({'; '.join(problems)}); staging a fresh copy", file=out)
    url, archive_name = cifar_archive()
    if archive_name not in checksums.md5:
        raise UserError(f"md5 list {checksums.source} has no entry for {archive_name}")
    root.mkdir(parents=True, exist_ok=True)
    # An archive already in ROOT (fetched by hand, e.g. with wget) or given as a local file is used
    # in place; a download goes to a temp file that is removed once extracted.
    kept = root / archive_name
    local = source if source and not _is_url(source) else None
    if local is not None:
        archive, temporary = Path(local).expanduser(), False
        if not archive.is_file():
            raise UserError(f"--from-archive {archive}: no such file")
    elif source is None and kept.is_file():
        archive, temporary = kept, False
    else:
        archive, temporary = _fetch_to_temp(source or url, kept, out, "--from-archive FILE"), True
    try:
        if file_digest(archive, "md5") != checksums.md5[archive_name]:
            raise UserError(
                f"{archive if not temporary else source or url}: md5 mismatch for {archive_name} "
                f"(md5 from {checksums.source}); corrupt, truncated or not the CIFAR-10 archive"
            )
        _extract_verified(archive, archive_name, root, checksums)
    finally:
        if temporary:
            archive.unlink(missing_ok=True)
    print(f"staged and verified (md5 from {checksums.source}): {folder}", file=out)
    return folder


def cifar_usage_lines(root: Path) -> list[str]:
    """How jobs and the image find a staged CIFAR-10 (``root`` holds ``cifar-10-batches-py``)."""
    return [
        "in the image: add the bind to your profile's binds in config/cluster.yaml (or to apptainer exec)",
        f"  --bind {root}:{CONTAINER_CIFAR_DIR}",
        "and set in your config (or --set data_path=... ):",
        f"  data_path: {CONTAINER_CIFAR_DIR}",
        f"on the host, without the image: data_path: {root}",
    ]


# ---------------------------------------------------------------------------------------------
# sweepkit data weights
# ---------------------------------------------------------------------------------------------


def stage_checkpoint(source: str, dest: Path, out: TextIO | None = None) -> Path:
    """Put a hash-named file at ``dest`` (verified against its name's sha256 prefix); idempotent."""
    out = out or sys.stdout
    if dest.is_file() and sha256_problem(dest) is None:
        print(f"already staged and verified (sha256 prefix): {dest}", file=out)
        return dest
    tmp = _fetch_to_temp(source, dest, out, "--from-file FILE")
    try:
        problem = sha256_problem(tmp, dest.name)
        if problem:
            raise UserError(f"{source}: {problem}; not installed as {dest}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"staged and verified (sha256 prefix): {dest}", file=out)
    return dest


def weights_usage_lines(torch_home: Path) -> list[str]:
    """How jobs and the image find weights staged under ``torch_home``."""
    return [
        "in the image: add the bind to your profile's binds in config/cluster.yaml (or to apptainer exec)",
        f"  --bind {torch_home}:{CONTAINER_TORCH_HOME}",
        "and set the environment of the job (apptainer passes it in):",
        f"  TORCH_HOME={CONTAINER_TORCH_HOME}",
        f"on the host, without the image: TORCH_HOME={torch_home}",
    ]


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", required=True, metavar="{cifar10,weights}")
    cifar = sub.add_parser(
        "cifar10",
        help="download, verify and extract CIFAR-10 to ROOT/cifar-10-batches-py",
        description="Download (or copy from a mirror) the CIFAR-10 python archive, verify its md5 "
        "and each file's, and extract it to ROOT/cifar-10-batches-py. Safe to rerun.",
    )
    cifar.add_argument("--root", required=True, help="folder to hold cifar-10-batches-py")
    source = cifar.add_mutually_exclusive_group()
    source.add_argument("--url", help="a mirror of cifar-10-python.tar.gz (http(s):// or file://)")
    source.add_argument("--from-archive", metavar="FILE", help="a local cifar-10-python.tar.gz")
    cifar.add_argument(
        "--md5-file",
        help=f"md5sum-format list replacing torchvision's, for CIFAR-format archives you built "
        f"yourself (the trainer reads ${MD5_FILE_ENV})",
    )
    weights = sub.add_parser(
        "weights",
        help="put torchvision's ImageNet weights into the torch cache",
        description="Download torchvision's ImageNet weights (IMAGENET1K_V1) into "
        "TORCH_HOME/hub/checkpoints, verified by the sha256 prefix in the file name.",
    )
    weights.add_argument(
        "models",
        nargs="+",
        choices=WEIGHTS_MODELS,
        metavar="MODEL",
        help=f"one or more of: {', '.join(WEIGHTS_MODELS)}",
    )
    weights.add_argument("--torch-home", help="cache root (default: $TORCH_HOME or ~/.cache/torch)")
    wsource = weights.add_mutually_exclusive_group()
    wsource.add_argument("--url", help="a mirror URL of the .pth file (one model only)")
    wsource.add_argument(
        "--from-file", metavar="FILE", help="a local copy of the .pth (one model only)"
    )


def _print(lines: Iterable[str]) -> None:
    for line in lines:
        print(line)


def run(args: argparse.Namespace) -> int:
    if args.what == "cifar10":
        root = Path(args.root).expanduser().absolute()
        stage_cifar(root, source=args.url or args.from_archive, md5_file=args.md5_file)
        _print(cifar_usage_lines(root))
        return 0
    source = args.url or args.from_file
    if source and len(args.models) > 1:
        raise UserError("--url/--from-file name one file: stage one model at a time with them")
    for model in args.models:
        stage_checkpoint(source or weights_url(model), weights_file(model, args.torch_home))
    home = weights_file(args.models[0], args.torch_home).parents[2]
    _print(weights_usage_lines(home))
    return 0
