"""Run one of bench/'s scripts as a user does, from the repository root, in a fresh process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_bench(script: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """``python bench/SCRIPT ARGS``; fails the test with the script's output unless it exits 0."""
    proc = subprocess.run(
        [sys.executable, f"bench/{script}", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc
