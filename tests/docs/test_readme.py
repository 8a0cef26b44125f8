"""The README's commands: run here, or (cluster / container engine only) parsed and linted.

Convention: a ```bash block is run by a test; a ```bash cluster block needs a real cluster, the
internet or a container engine, so its commands are shellchecked and every `sweepkit` command in
it is parsed by that verb's own argument parser. ```text blocks are output. The top and "The
trainer" sections are run here; each other section is run by the tests of its own area, named in
SECTION_TESTS, which must exist and mention the section.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.cli import VERBS

pytestmark = pytest.mark.system  # starts processes (see tests/conftest.py)

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.S | re.M)
SECTION_TESTS = {
    "Sweeps": "jobs/sweeps/test_sweep_e2e.py",
    "Bring your own training script": "docs/test_byo_example.py",
    "SLURM": "jobs/slurm/test_submit.py",
    "Report": "jobs/report/test_report.py",
    "Containers and CI": "containers/test_containers.py",
}


def sections() -> dict[str, str]:
    parts = re.split(r"^## (.+)$", README, flags=re.M)
    found = {"(top)": parts[0]}
    found.update({parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)})
    return found


def blocks(text: str, lang: str = "bash", tag: str = "") -> list[str]:
    return [
        code for kind, info, code in BLOCK.findall(text) if kind == lang and info.strip() == tag
    ]


def commands(block: str) -> list[str]:
    lines = [line.split(" #")[0].strip() for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_readme_starts_with_exactly_two_setup_commands():
    first = blocks(sections()["(top)"])[0]
    assert commands(first) == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands(ci)[-1] == "make test"  # CI runs the README's test command and nothing else


def parse_sweepkit(command: str) -> None:
    argv = shlex.split(command)
    argv = argv[argv.index(next(a for a in argv if a.endswith("sweepkit"))) + 1 :]
    verb, rest = argv[0], argv[1:]
    assert verb in VERBS, command
    module = importlib.import_module(VERBS[verb][0])
    parser = argparse.ArgumentParser(prog=f"sweepkit {verb}", exit_on_error=False)
    module.add_arguments(parser)
    parse = getattr(module, "parse_args", None)
    parse(parser, rest) if parse else parser.parse_args(rest)


def test_cluster_blocks_lint_and_parse(tmp_path):
    cluster = [b for text in sections().values() for b in blocks(text, tag="cluster")]
    assert cluster, "the README shows cluster-only commands"
    for block in cluster:
        if shutil.which("shellcheck"):
            script = tmp_path / "block.sh"
            script.write_text("#!/usr/bin/env bash\n" + block)
            lint = subprocess.run(
                ["shellcheck", "-S", "warning", str(script)], capture_output=True, text=True
            )
            assert lint.returncode == 0, lint.stdout
        for command in commands(block):
            if re.match(r"^(\S*/)?sweepkit ", command):
                parse_sweepkit(command)


def readme_env() -> dict[str, str]:
    """The shell the README assumes: the pinned venv activated, no job or W&B variables."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "SLURM_", "SWEEPKIT_"))
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_trainer_section_commands_run():
    env = readme_env()
    try:
        for block in blocks(sections()["The trainer"]):
            proc = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", block],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert proc.returncode == 0, f"{block}\n{proc.stdout}\n{proc.stderr}"
    finally:
        shutil.rmtree(ROOT / "runs" / "readme-digits", ignore_errors=True)


def test_every_other_section_is_covered_by_its_area_tests():
    for title, text in sections().items():
        if title in ("(top)", "The trainer", "How it fits together", "Benchmarks") or not blocks(
            text
        ):
            continue
        assert title in SECTION_TESTS, (
            f"README section {title!r} shows commands but no test runs them"
        )
        test_file = ROOT / "tests" / SECTION_TESTS[title]
        assert test_file.exists() and title in test_file.read_text(), (
            f"{test_file.name} must run {title!r}"
        )


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
    finally:
        for created in set((ROOT / "sweeps").glob("*")) - before:
            shutil.rmtree(created, ignore_errors=True)
