"""The README's quick start: its two commands, and `make demo` run as shown (slow).

Every other command of README.md and docs/ is checked by tests/docs/test_commands.py, which says
which test runs each block; the blocks are read with tests/support/docs_blocks.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from docs_blocks import blocks

ROOT = Path(__file__).resolve().parents[2]
# README.md, section "Quick start": make demo and make test.
QUICK_START = ("README.md", "Quick start")


def test_readme_starts_with_exactly_two_setup_commands():
    first = blocks(*QUICK_START, lang="bash")[0]
    assert first.commands == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert first.commands[-1] == "make test" == ci.strip().splitlines()[-1]  # CI runs only that


def readme_env() -> dict[str, str]:
    """The shell the README assumes: the pinned venv activated, no job or W&B variables."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "SLURM_", "SWEEPKIT_"))
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.slow
def test_make_demo_runs_the_offline_sweep():
    before = set((ROOT / "sweeps").glob("*")) if (ROOT / "sweeps").exists() else set()
    env = readme_env()
    try:
        proc = subprocess.run(
            ["make", "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out = proc.stdout + proc.stderr
        assert "finished" in out and "Test Accuracy" in out, out
        # the output the README shows: the lines that hold no id, number or timing
        (shown,) = blocks(*QUICK_START, lang="text")
        for line in shown.body.splitlines():
            if line.startswith(("sweepkit agent: sweep complete", "run  ", "runs: ", "complete")):
                assert line in out, line
    finally:
        for created in set((ROOT / "sweeps").glob("*")) - before:
            shutil.rmtree(created, ignore_errors=True)
