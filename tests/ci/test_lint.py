"""Static checks CI enforces: ruff (lint and format) and mypy on the code, the import layers
(import-linter), shellcheck on scripts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.system  # starts processes
def test_ruff_lint_and_format():
    lint = run(str(BIN / "ruff"), "check", "train", "jobs", "sweepkit", "bench", "tests")
    assert lint.returncode == 0, lint.stdout
    fmt = run(str(BIN / "ruff"), "format", "--check", "train", "jobs", "sweepkit", "bench", "tests")
    assert fmt.returncode == 0, fmt.stdout


@pytest.mark.system  # starts processes
def test_mypy_on_the_package_code():
    result = run(str(BIN / "mypy"))  # packages and settings from pyproject.toml
    assert result.returncode == 0, result.stdout


@pytest.mark.system  # starts processes
def test_import_layers_and_no_circles():
    """The contracts in pyproject.toml: report and slurm on sweeps, sweeps on train, train
    importing nothing from jobs, no import circle between sibling modules anywhere, and the
    store's pure core free of file and OS access."""
    result = run(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout
    contracts = (ROOT / "pyproject.toml").read_text().count("[[tool.importlinter.contracts]]")
    assert f"{contracts} kept, 0 broken" in result.stdout, result.stdout


@pytest.mark.system  # starts processes
def test_shellcheck_on_every_shell_script():
    if not shutil.which("shellcheck"):
        pytest.skip(
            "shellcheck is not installed (make test installs it: tests/install-system-deps.sh)"
        )
    scripts = sorted(p for p in ROOT.rglob("*.sh") if ".venv" not in p.parts) + [
        ROOT / ".ci" / "run"
    ]
    assert len(scripts) >= 5
    result = run("shellcheck", *map(str, scripts))
    assert result.returncode == 0, result.stdout
