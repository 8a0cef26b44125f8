"""The sweepkit console script: verbs, help, usage errors, a closed pipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jobs.cli import VERBS

ROOT = Path(__file__).resolve().parent.parent
SWEEPKIT = [sys.executable, "-m", "jobs.cli"]


@pytest.mark.parametrize("verb", list(VERBS))
def test_every_verb_has_help(verb):
    proc = subprocess.run([*SWEEPKIT, verb, "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and f"usage: sweepkit {verb}" in proc.stdout


def test_usage_errors_are_one_line_and_exit_2():
    bare = subprocess.run(SWEEPKIT, capture_output=True, text=True, cwd=ROOT)
    assert bare.returncode == 2 and all(verb in bare.stdout for verb in VERBS)
    bogus = subprocess.run([*SWEEPKIT, "trian"], capture_output=True, text=True, cwd=ROOT)
    assert (
        bogus.returncode == 2
        and bogus.stderr.count("\n") == 1
        and "unknown verb 'trian'" in bogus.stderr
    )


def test_a_closed_pipe_is_not_a_traceback(tmp_path):
    # `sweepkit sweep create ... | head -0`: the reader is gone before the sweep path is printed
    proc = subprocess.run(
        f"{' '.join(SWEEPKIT)} sweep create config/sweeps/digits_grid.yaml --root {tmp_path} | head -0",
        shell=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        executable="/bin/bash",
    )
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr
