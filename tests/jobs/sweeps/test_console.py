"""The console script beside the interpreter wins over PATH (a venv need not be activated)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sweepkit.jobs.sweeps.console import console_script


def script(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_beside_the_interpreter_then_on_path_then_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv, elsewhere = tmp_path / "venv" / "bin", tmp_path / "elsewhere"
    monkeypatch.setattr(sys, "executable", str(venv / "python"))
    monkeypatch.setenv("PATH", str(elsewhere))
    assert console_script("wandb") is None
    on_path = script(elsewhere / "wandb")
    assert console_script("wandb") == str(on_path)
    beside = script(venv / "wandb")
    assert console_script("wandb") == str(beside)
    (venv / "sweepkit").mkdir()  # a folder of that name is no script
    assert console_script("sweepkit") is None
