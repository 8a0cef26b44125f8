"""The run record's bookkeeping methods the training loop calls (run.json in a tmp folder)."""

from __future__ import annotations

import json

import pytest

from sweepkit.train.runrecord import RunRecord


@pytest.mark.system  # starts processes: RunRecord runs git for the revision
def test_epochs_resume_and_test_metrics_land_in_run_json(tmp_path):
    record = RunRecord(tmp_path, "r1", {"seed": 0}, previous={"timings": {"train_s": 2.0}})
    record.note_resume(1, 3)
    history = [{"epoch": 2, "Validation Accuracy": 50.0}]
    record.add_epoch(history, {"Validation Accuracy": 50.0}, train_s=1.5)
    on_disk = json.loads((tmp_path / "run.json").read_text())
    assert on_disk["resumed_from"] == {"epoch": 1, "step": 3}
    assert on_disk["epochs"] == history and on_disk["timings"]["train_s"] == 3.5
    record.add_to_summary({"Test Accuracy": 40.0})
    assert record.summary == {"Validation Accuracy": 50.0, "Test Accuracy": 40.0}
    record.update(state="finished")
    assert json.loads((tmp_path / "run.json").read_text())["summary"]["Test Accuracy"] == 40.0


@pytest.mark.system  # starts processes: RunRecord runs git for the revision
def test_a_rank_that_does_not_persist_writes_nothing(tmp_path):
    record = RunRecord(tmp_path, "r1", {}, previous={}, persist=False)
    record.add_epoch([], {}, train_s=1.0)
    assert not (tmp_path / "run.json").exists() and record.data["timings"]["train_s"] == 1.0
