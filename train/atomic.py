"""Atomic file replacement: readers see the old file or the new one, never a torn write."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from sweepkit.train import json_values


def current_umask() -> int:
    """This process's umask, read without changing it: ``os.umask`` reads only by setting, and
    while it is set to something else another thread (the agent's heartbeat) could create a file."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # kernels before 4.7 have no Umask line
    os.umask(mask)
    return mask


def umask_mode(mode: int = 0o666) -> int:
    """The permissions ``open``/``mkdir`` would give (``mode`` less the umask); mkstemp and mkdtemp
    make owner-only entries instead, which would hide run records and staged data from a team."""
    return mode & ~current_umask()


def write_atomic(
    path: Path, data: bytes | Callable[[IO[bytes]], Any], mode: int | None = None
) -> None:
    """Write ``path`` via a temp file in the same folder, fsync, then rename over it. ``data`` is
    the content, or a function that writes it to the open file. ``mode``: the file's permissions,
    set whatever the umask (default: what ``open`` would give, 0666 less the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, bytes):
                handle.write(data)
            else:
                data(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, umask_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        _name_the_path(err, path)
        raise


def _name_the_path(err: BaseException, path: Path) -> None:
    """An OSError from writing through a file object names no file: name ``path``, the file
    being written, so that the user's error line says where (also behind a library's wrapper)."""
    seen: BaseException | None = err
    for _ in range(8):
        if seen is None:
            return
        if isinstance(seen, OSError) and seen.filename is None:
            seen.filename = str(path)
        seen = seen.__cause__ or seen.__context__


def write_json_atomic(path: Path, data: Any, mode: int | None = None) -> None:
    text = json_values.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
    write_atomic(path, text.encode(), mode)
