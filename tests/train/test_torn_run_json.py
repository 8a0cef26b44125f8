"""A torn run.json never retrains a finished run (issue 28): the trainer, started again on the run
folder, recovers the state from its checkpoints or refuses in one line (train/torn_record.py).

The runs are real digits trainings (the tiny settings of test_trainer.py); run.json is torn at
several points: empty, cut after one byte, cut in the middle, cut before its last byte, garbled.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch  # noqa: F401 - decide() reads checkpoints with it: imported at collection
from trainer_runs import DIGITS, ROOT, env_without_wandb

from sweepkit.train.runrecord import read_run_json
from sweepkit.train.torn_record import decide, run_json_problem

TINY = [
    "model_name=resnet18",
    "batch_size=32",
    "num_epochs=2",
    "limit_train_batches=4",
    "deterministic=true",
    "wandb.mode=disabled",
]


def tears(whole: bytes) -> dict[str, bytes]:
    garbled = bytearray(whole)
    garbled[len(whole) // 3 : len(whole) // 3 + 8] = b"\x00\xff#!?{]\n"
    return {
        "empty": b"",
        "one byte": whole[:1],
        "middle": whole[: len(whole) // 2],
        "last byte cut": whole.rstrip()[:-1],
        "garbled": bytes(garbled),
    }


def trainer(run_dir: Path, *sets: str) -> subprocess.CompletedProcess[str]:
    args = ["--config", DIGITS, "--run-dir", str(run_dir)]
    for value in (*TINY, *sets):
        args += ["--set", value]
    return subprocess.run(
        [sys.executable, "-m", "sweepkit.train", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env_without_wandb(),
        timeout=600,
    )


def trained(tmp_path: Path, name: str, *sets: str) -> Path:
    run_dir = tmp_path / name
    proc = trainer(run_dir, *sets)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert read_run_json(run_dir)["state"] == "finished"
    return run_dir


def torn_copy(run_dir: Path, where: Path, torn: bytes) -> Path:
    shutil.copytree(run_dir, where)
    (where / "run.json").write_bytes(torn)
    return where


def trained_epochs(proc: subprocess.CompletedProcess[str]) -> list[str]:
    out = proc.stdout + proc.stderr
    return [line for line in out.splitlines() if line.lstrip().startswith("epoch ")]


@pytest.mark.system  # trains models, starts the trainer
def test_finished_run_with_torn_run_json_is_not_trained_again(tmp_path):
    run_dir = trained(tmp_path, "run")
    whole = (run_dir / "run.json").read_bytes()
    final = run_dir / "checkpoints" / "final.pt"
    for label, torn in tears(whole).items():
        copy = torn_copy(run_dir, tmp_path / label.replace(" ", "-"), torn)
        proc = trainer(copy)
        assert proc.returncode == 0, (label, proc.stdout + proc.stderr)
        assert "already finished; nothing to do" in proc.stdout, label
        assert not trained_epochs(proc), (label, proc.stdout)
        warning = [line for line in proc.stderr.splitlines() if "run.json" in line]
        assert len(warning) == 1 and "shows the run finished" in warning[0], proc.stderr
        assert (copy / "checkpoints" / "final.pt").read_bytes() == final.read_bytes()
        assert (copy / "run.json.torn").read_bytes() == torn  # the evidence kept
        rebuilt = read_run_json(copy)
        assert rebuilt["state"] == "finished" and rebuilt["exit_code"] == 0, label
        assert rebuilt["recovered"]["from"].endswith("checkpoints/final.pt")
        again = trainer(copy)  # and the rebuilt record is read as any finished run's
        assert again.returncode == 0 and "already finished" in again.stdout
        assert "run.json" not in again.stderr


@pytest.mark.system  # trains models, starts the trainer
def test_torn_run_json_resumes_from_the_newest_checkpoint(tmp_path):
    run_dir = trained(tmp_path, "run", "checkpoint.keep_after_finish=all")
    whole = (run_dir / "run.json").read_bytes()
    history = json.loads(whole)["epochs"]
    # every epoch checkpointed: only the test split is evaluated again, no epoch trained
    done = torn_copy(run_dir, tmp_path / "done", tears(whole)["middle"])
    proc = trainer(done, "checkpoint.keep_after_finish=all")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not trained_epochs(proc), proc.stdout + proc.stderr
    assert "resuming from checkpoints/ckpt-e0002-s000000.pt" in proc.stderr
    record = read_run_json(done)
    assert record["state"] == "finished" and record["resumed_from"] == {"epoch": 2, "step": 0}
    assert record["epochs"] == history
    # the last epoch's checkpoint lost too: epoch 2 alone is trained again
    half = torn_copy(run_dir, tmp_path / "half", tears(whole)["garbled"])
    (half / "checkpoints" / "ckpt-e0002-s000000.pt").unlink()
    proc = trainer(half, "checkpoint.keep_after_finish=all")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [line.split()[1] for line in trained_epochs(proc)] == ["2/2"], proc.stdout
    assert read_run_json(half)["resumed_from"] == {"epoch": 1, "step": 0}


@pytest.mark.system  # trains models, starts the trainer
def test_torn_run_json_with_nothing_else_on_disk_is_refused_in_one_line(tmp_path):
    run_dir = trained(tmp_path, "run", "checkpoint.keep_after_finish=none")
    torn = tears((run_dir / "run.json").read_bytes())["middle"]
    (run_dir / "run.json").write_bytes(torn)
    before = sorted(p.name for p in run_dir.iterdir())
    proc = trainer(run_dir, "checkpoint.keep_after_finish=none")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert f"{run_dir / 'run.json'} is not valid JSON" in proc.stderr
    assert "mv " in proc.stderr and "restore run.json" in proc.stderr
    assert not trained_epochs(proc)
    assert sorted(p.name for p in run_dir.iterdir()) == before  # nothing changed
    assert (run_dir / "run.json").read_bytes() == torn


def test_every_cut_of_a_run_json_is_seen_as_torn_and_refused_without_checkpoints(tmp_path):
    record = {"run_id": "r", "state": "finished", "epochs": [{"epoch": 1, "acc": 0.5}]}
    whole = (json.dumps(record, indent=2) + "\n").encode()
    for cut in range(len(whole.rstrip())):
        (tmp_path / "run.json").write_bytes(whole[:cut])
        problem = run_json_problem(tmp_path)
        assert problem is not None, cut
        assert decide(tmp_path, problem).refusal, cut
    (tmp_path / "run.json").write_bytes(whole)
    assert run_json_problem(tmp_path) is None
    (tmp_path / "run.json").unlink()
    assert run_json_problem(tmp_path) is None  # a new run: nothing torn


def test_a_json_value_that_is_not_a_record_is_torn(tmp_path):
    for text in ("[]", "null", '"finished"', "\ufeff{}"):
        (tmp_path / "run.json").write_text(text)
        assert run_json_problem(tmp_path) is not None, text
