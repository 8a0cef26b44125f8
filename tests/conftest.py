"""Suite-wide settings.

Tests start many trainer and agent processes on a 2-core machine at once; OpenMP threads of
several processes spinning against each other slow each step by an order of magnitude, so every
process the tests start runs single-threaded unless a test says otherwise.

The folders mirror the code they test (tests/train/ for train/, tests/jobs/sweeps/ for
jobs/sweeps/, ...); the helpers they share (fixtures, fake programs) are in tests/support/ and are
imported by module name from any folder.

Two tiers: a test that starts processes, trains a model or needs SLURM, Chromium or Podman is
marked ``system`` on the test itself (``@pytest.mark.system``), so that the in-process tests of the
same module stay in the unit tier, ``make test-unit`` (``pytest -m "not system"``). A test marked
slow, slurm, browser or container is a system test without saying so twice. The tiers are
enforced, not hoped for: while a unit-tier test (and its fixtures) runs, every way to start a
process (subprocess, multiprocessing, os.fork/posix_spawn/system) raises ProcessInUnitTier, and
the test fails even where the code under test caught that error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Property-based tests take their size from one profile, never from the test: `quick` (the
# default) keeps the suite within its budget; `HYPOTHESIS_PROFILE=long` (10,000 examples each) is
# the run an issue's property claims are judged by before it is resolved. No deadline: a 2-core
# machine running agents beside the tests makes any per-example time limit flaky.
_PROFILE_DEFAULTS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("quick", max_examples=100, **_PROFILE_DEFAULTS)  # type: ignore[arg-type]
settings.register_profile("long", max_examples=10_000, **_PROFILE_DEFAULTS)  # type: ignore[arg-type]
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# A sweep's ${interpreter} is `python` from PATH, as under `wandb agent`: the programs the tests'
# agents start run in this environment (the kit installed) whatever the shell's PATH says.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
# The repository (for bench/), then the shared helpers. The kit itself is imported as sweepkit.*
# from the project's editable install.
sys.path[:0] = [str(REPO), str(TESTS / "support"), str(TESTS)]

# The README's `make demo`, run once; the tests that check its sweep share it (only reading it).
from demo_sweep import demo_sweep  # noqa: E402, F401

# The session's one-node SLURM, for every test module that asks for the `slurm` fixture.
from slurm_fixture import slurm  # noqa: E402, F401

# The session's SLURM of two separate nodes (network and UTS namespaces), for the multi-node tests.
from slurm_nodes_fixture import slurm_nodes, slurm_nodes_session  # noqa: E402, F401
from unit_tier import probe_once_before_the_tests, unit_tier_guard  # noqa: E402

probe_once_before_the_tests()

SYSTEM_MARKERS = ("slow", "slurm", "browser", "container")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        # A test that asks for a SLURM fixture starts a SLURM on fixed ports, whatever its own
        # marks say: `-m "not slurm"` must leave it out.
        uses = set(getattr(item, "fixturenames", ()))
        if uses & {"slurm", "slurm_nodes"} and not item.get_closest_marker("slurm"):
            item.add_marker(pytest.mark.slurm)
        if any(item.get_closest_marker(name) for name in SYSTEM_MARKERS):
            item.add_marker(pytest.mark.system)


# Setup too, so a fixture of any scope that starts a process for a unit-tier test is refused.
# (Teardown is not guarded: the last test of a session tears down its session fixtures.)
@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from unit_tier_guard(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from unit_tier_guard(item))
