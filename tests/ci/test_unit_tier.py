"""The unit tier's guard (tests/support/unit_tier.py): every way to start a process is refused with
the line that says what to do, a refusal the code under test swallowed still fails the test, and a
system test is left alone. In-process: the guard is nested inside the one this unit-tier test runs
under, so nothing here starts a process."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pty
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from unit_tier import PROCESS_STARTERS, ProcessInUnitTier, processes_refused, unit_tier_guard

WHAT_TO_DO = (
    r"^tests/x\.py::test_x: this test starts a process \(\S+\): "
    r"mark it system \(@pytest\.mark\.system, see tests/conftest\.py\)$"
)


class StubItem:
    """What the guard reads of a pytest item: its id and its marks."""

    def __init__(self, *marks: str) -> None:
        self.nodeid = "tests/x.py::test_x"
        self.marks = marks

    def get_closest_marker(self, name: str) -> Any:
        return pytest.mark.system if name in self.marks else None


def starters() -> dict[str, Callable[[], Any]]:
    def mp_process(method: str) -> Callable[[], Any]:
        return lambda: multiprocessing.get_context(method).Process(target=print).start()

    return {
        "subprocess.run": lambda: subprocess.run(["true"], check=True),
        "subprocess.Popen": lambda: subprocess.Popen(["true"]),
        "multiprocessing fork": mp_process("fork"),
        "multiprocessing spawn": mp_process("spawn"),
        "os.system": lambda: os.system("true"),
        "os.posix_spawn": lambda: os.posix_spawn("/bin/true", ["true"], os.environ),
        "os.fork": os.fork,
        "pty.fork": pty.fork,
    }


def attributes() -> list[Any]:
    return [getattr(module, name) for module, name in PROCESS_STARTERS]


@pytest.mark.parametrize("how", starters())
def test_every_way_to_start_a_process_is_refused_with_what_to_do(how: str) -> None:
    before = attributes()
    refusal = pytest.raises(ProcessInUnitTier, match=WHAT_TO_DO)
    with processes_refused(StubItem()) as tried, refusal:  # type: ignore[arg-type]
        starters()[how]()
    assert tried and attributes() == before


def test_a_refusal_the_code_swallowed_still_fails_the_test() -> None:
    guard = unit_tier_guard(StubItem())  # type: ignore[arg-type]
    next(guard)  # setup or call begins
    with contextlib.suppress(Exception):  # code under test that hides the error
        subprocess.run(["true"])
    with pytest.raises(ProcessInUnitTier, match=WHAT_TO_DO):
        guard.send(None)  # setup or call ends


def test_a_system_test_is_not_guarded() -> None:
    before = attributes()
    guard = unit_tier_guard(StubItem("system"))  # type: ignore[arg-type]
    next(guard)
    assert attributes() == before
    with pytest.raises(StopIteration):
        guard.send(None)
