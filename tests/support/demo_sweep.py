"""The README's `make demo`, run once per test session (tests/conftest.py): the 4-run digits grid
through the real trainer, its status and its report, in the project's own sweeps/ folder.

Three tests check that one sweep, each for its own facts, rather than training the same grid
three times (about a minute each on 2 cores): tests/docs/test_readme.py (the output the README
shows), tests/jobs/sweeps/test_sweep_digits.py (status, run folders, W&B records, sync) and
tests/jobs/report/test_report_browser.py (the report in Chromium). They only read it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def readme_env() -> dict[str, str]:
    """The shell the README assumes: the pinned venv activated, no job or W&B variables."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "SLURM_", "SWEEPKIT_"))
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@dataclass(frozen=True)
class DemoSweep:
    proc: subprocess.CompletedProcess[str]  # `make demo` as the README runs it
    created: list[Path]  # the folders it made under sweeps/ (one: the sweep's)

    @property
    def output(self) -> str:
        return self.proc.stdout + self.proc.stderr

    @property
    def sweep(self) -> str:
        """The sweep folder, relative to the project root (as `make demo` names it)."""
        assert self.proc.returncode == 0, self.output
        assert len(self.created) == 1, self.created
        return str(self.created[0].relative_to(ROOT))


@pytest.fixture(scope="session")
def demo_sweep() -> Iterator[DemoSweep]:
    sweeps = ROOT / "sweeps"
    before = set(sweeps.glob("*")) if sweeps.exists() else set()
    try:
        proc = subprocess.run(
            ["make", "demo"],
            cwd=ROOT,
            env=readme_env(),
            capture_output=True,
            text=True,
            timeout=1200,
        )
        yield DemoSweep(proc, sorted(set(sweeps.glob("*")) - before))
    finally:
        for created in set(sweeps.glob("*")) - before:
            shutil.rmtree(created, ignore_errors=True)
