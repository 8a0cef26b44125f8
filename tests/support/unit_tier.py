"""The unit tier's guard (tests/conftest.py runs every unit-tier test under it): while a test not
marked ``system`` runs, every way to start a process raises ProcessInUnitTier, and the test fails
even where the code under test caught that error."""

from __future__ import annotations

import _posixsubprocess
import os
import subprocess
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest


class ProcessInUnitTier(RuntimeError):
    """A unit-tier test started a process."""


# Every way a Python program starts a process ends in one of these: subprocess.Popen in its own
# name for _posixsubprocess.fork_exec (bound at import) or os.posix_spawn, multiprocessing in
# os.fork (fork) or _posixsubprocess.fork_exec (spawn, forkserver), os.spawn*/pty.fork in
# os.fork/os.forkpty.
PROCESS_STARTERS = (
    (subprocess, "_fork_exec"),
    (_posixsubprocess, "fork_exec"),
    (os, "fork"),
    (os, "forkpty"),
    (os, "posix_spawn"),
    (os, "posix_spawnp"),
    (os, "system"),
)


def probe_once_before_the_tests() -> None:
    """Libraries that start a probe process once per process, the first time they are used, and
    cache what it said: done here, before any test, so that the unit-tier test that happens to
    use them first is not taken for one that starts a process."""
    # numpy.testing runs `lscpu` when first imported (check_support_sve); scipy and sklearn
    # import it.
    import numpy.testing  # noqa: F401
    from matplotlib import font_manager

    # matplotlib lists the system fonts with `fc-list` (cached); the report's CJK fonts ask it.
    font_manager.findSystemFonts()


def refusal(item: pytest.Item, starter: str) -> str:
    return (
        f"{item.nodeid}: this test starts a process ({starter}): mark it system "
        "(@pytest.mark.system, see tests/conftest.py)"
    )


@contextmanager
def processes_refused(item: pytest.Item) -> Iterator[list[str]]:
    """Every process starter raises ProcessInUnitTier; yields the names of those called."""
    tried: list[str] = []

    def refuse(name: str) -> Any:
        def starter(*args: Any, **kwargs: Any) -> Any:
            tried.append(name)
            raise ProcessInUnitTier(refusal(item, name))

        return starter

    saved = [
        (mod, name, getattr(mod, name)) for mod, name in PROCESS_STARTERS if hasattr(mod, name)
    ]
    for mod, name, _ in saved:
        setattr(mod, name, refuse(f"{mod.__name__}.{name}"))
    try:
        yield tried
    finally:
        for mod, name, original in saved:
            setattr(mod, name, original)


def unit_tier_guard(item: pytest.Item) -> Generator[None, Any, Any]:
    if item.get_closest_marker("system"):
        return (yield)
    with processes_refused(item) as tried:
        result = yield
    if tried:  # the code under test caught the refusal: the test must still fail
        raise ProcessInUnitTier(refusal(item, tried[0]))
    return result
