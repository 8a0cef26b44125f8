"""The README's quick start: its two commands, and `make demo` run as shown (slow; once per
session, shared with other tests: tests/support/demo_sweep.py).

Every other command of README.md and docs/ is checked by tests/docs/test_commands.py, which says
which test runs each block; the blocks are read with tests/support/docs_blocks.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from demo_sweep import DemoSweep
from docs_blocks import blocks

ROOT = Path(__file__).resolve().parents[2]
# README.md, section "Quick start": make demo and make test.
QUICK_START = ("README.md", "Quick start")


def test_readme_starts_with_exactly_two_setup_commands():
    first = blocks(*QUICK_START, lang="bash")[0]
    assert first.commands == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert first.commands[-1] == "make test" == ci.strip().splitlines()[-1]  # CI runs only that


@pytest.mark.slow
def test_make_demo_runs_the_offline_sweep(demo_sweep: DemoSweep) -> None:
    """`make demo` itself runs once for the session (tests/support/demo_sweep.py); other tests
    check the sweep it leaves."""
    assert demo_sweep.proc.returncode == 0, demo_sweep.output
    out = demo_sweep.output
    assert "finished" in out and "Test Accuracy" in out, out
    # the output the README shows: the lines that hold no id, number or timing
    (shown,) = blocks(*QUICK_START, lang="text")
    for line in shown.body.splitlines():
        if line.startswith(("sweepkit agent: sweep complete", "run  ", "runs: ", "complete")):
            assert line in out, line
    # ... and the lines that name the sweep, with this one's id
    sweep = demo_sweep.sweep
    assert f"(grid, {sweep})" in out and f"wrote {sweep}/report.html" in out, out
