"""New run and sweep ids (jobs/sweeps/store/sweep.py, folder.py): an id is tried until its folder
can be made, a bounded number of times; when every try is taken, one clear error and nothing
written.

Ids are random (36^8 of them): ten taken in a row cannot happen for real, so the id source is
replaced here by one that always gives an id whose folder exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweepkit.jobs.sweeps import store
from sweepkit.jobs.sweeps.store import folder
from sweepkit.train.errors import UserError

DEFINITION = {
    "method": "random",
    "metric": {"name": "acc", "goal": "maximize"},
    "command": ["${env}", "${interpreter}", "-m", "sweepkit.train", "${args}"],
    "parameters": {"lr": {"min": 0.0, "max": 1.0}},
}


def test_a_claim_whose_new_run_ids_are_all_taken_says_so_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = store.create_sweep(DEFINITION, tmp_path, source="test")
    (local.path / "runs" / "taken000").mkdir()  # not a run of this sweep: no claim names it
    tries = []
    monkeypatch.setattr(folder, "new_id", lambda: tries.append(1) or "taken000")
    with pytest.raises(UserError) as err:
        local.claim(store.AgentIdentity())
    assert str(err.value).count("\n") == 0
    assert f"{folder.RUN_ID_TRIES} new run ids in a row were taken" in str(err.value)
    assert str(local.path / "runs") in str(err.value)
    assert len(tries) == folder.RUN_ID_TRIES
    assert (local.path / "journal.jsonl").read_bytes() == b"", "no claim of a folder not its own"
    assert not (local.path / "lock").exists(), "the lock was let go"


def test_a_sweep_whose_new_ids_are_all_taken_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "taken000").mkdir()
    monkeypatch.setattr(folder, "new_id", lambda: "taken000")
    with pytest.raises(UserError, match="10 new sweep ids in a row were taken; pass --root"):
        store.create_sweep(DEFINITION, tmp_path, source="test")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken000"]
