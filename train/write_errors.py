"""A write that the filesystem refused, as one line for the user: which path, why, what to do.

Every command writes somewhere a user's cluster can refuse: a full scratch quota (ENOSPC,
EDQUOT), a read-only mount (EROFS, e.g. a project space mounted read-only on compute nodes), a
folder of someone else (EACCES, EPERM). These are facts about the user's filesystem, not bugs, so
they are user errors (exit 2) in one line, never a traceback.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from sweepkit.train.errors import UserError

# errno -> (what happened, how to fix it)
_CAUSES = {
    errno.ENOSPC: ("no space left on the device", "free space there (df -h) and rerun"),
    errno.EDQUOT: ("disk quota exceeded", "free space in your quota (quota -s) and rerun"),
    errno.EROFS: ("the filesystem is read-only", "use a folder on a writable filesystem"),
    errno.EACCES: ("permission denied", "use a folder you can write to"),
    errno.EPERM: ("operation not permitted", "use a folder you can write to"),
}


_SPACE = (errno.ENOSPC, errno.EDQUOT)  # the refusals that freeing space ends


def is_write_refusal(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in _CAUSES


def refusal_line(
    err: OSError,
    path: Path | str | None = None,
    space_fix: str | None = None,
    then: str | None = None,
) -> str:
    """``cannot write PATH: WHY; FIX[; THEN]``. ``path``: what was being written (default: the path
    the OSError names); ``space_fix``: what to do when the disk or quota is full, where the caller
    knows better (a read-only or not-yours folder gets its own cause's fix: freeing space would not
    help it); ``then``: what follows for the user, whatever the cause (nothing was submitted)."""
    why, fix = _CAUSES.get(err.errno or 0, (err.strerror or str(err), "check the path"))
    if space_fix is not None and err.errno in _SPACE:
        fix = space_fix
    where = path if path is not None else (err.filename or "a file")
    verb = "access" if err.errno in (errno.EACCES, errno.EPERM) else "write"
    return f"cannot {verb} {os.fspath(where)}: {why}; {fix}" + (f"; {then}" if then else "")


def as_user_error(
    err: OSError,
    path: Path | str | None = None,
    space_fix: str | None = None,
    then: str | None = None,
) -> UserError:
    return UserError(refusal_line(err, path, space_fix, then))


def unwritable(path: Path | str) -> str:
    """Why a folder that ``os.access`` says is not writable is so, in words: a read-only mount
    (which no ``chmod`` mends) or its permissions."""
    try:
        read_only = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return "is on a read-only filesystem" if read_only else "is not writable by you"


def refusal_in(err: BaseException) -> OSError | None:
    """The write refusal behind ``err``, if any: libraries wrap it (``torch.save`` into a full
    disk raises ``RuntimeError: ... unexpected pos``, with the OSError as its context)."""
    seen: BaseException | None = err
    for _ in range(8):
        if seen is None:
            return None
        if is_write_refusal(seen):
            return seen  # type: ignore[return-value]
        seen = seen.__cause__ or seen.__context__
    return None
