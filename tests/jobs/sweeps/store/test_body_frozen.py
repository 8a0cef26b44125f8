"""A large snapshot body, once read, is out of the cyclic garbage collector's sight (``gc.freeze``,
journal_fold.py): the collector would rescan its objects at each full collection and at exit.
A small one is left as it is."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from snapshot_sweeps import DEFINITION, work

from sweepkit.jobs.sweeps import store
from sweepkit.jobs.sweeps.store import journal_fold


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    """The test process's collector as it was: whatever a test froze goes back in its sight."""
    yield
    gc.unfreeze()


def body_read(tmp_path: Path) -> store.LocalSweep:
    sweep = store.create_sweep(DEFINITION, tmp_path / "s", source="test", max_retries=1)
    work(sweep, 6, seed=3, leave_running=1)
    assert sweep.write_snapshot(force=True)
    fresh = store.open_sweep(sweep.path)
    fresh.outcomes()  # the head alone
    assert fresh.fold.unread is not None and fresh.fold.unread.count >= 4
    gc.unfreeze()
    fresh.refresh()  # every run: the body read
    assert fresh.fold.unread is None
    return fresh


def tracked_in_generations(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())


def test_a_large_body_is_frozen_once_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal_fold, "FREEZE_AFTER_RUNS", 4)
    fresh = body_read(tmp_path)
    ended = next(r for r in fresh.fold.runs.values() if r.state != "running")
    assert gc.get_freeze_count() > 0
    assert gc.is_tracked(ended.claims) and not tracked_in_generations(ended.claims)


def test_a_small_body_is_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal_fold, "FREEZE_AFTER_RUNS", 1000)
    fresh = body_read(tmp_path)
    ended = next(r for r in fresh.fold.runs.values() if r.state != "running")
    assert gc.get_freeze_count() == 0
    assert tracked_in_generations(ended.claims)
