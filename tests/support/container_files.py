"""The container definitions, lock files and CI scripts as the tests under tests/containers/ read them.

Both definitions are parsed with spython's parsers (no container engine needed); the build and
smoke scripts run through run_script.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEF = ROOT / "containers" / "sweepkit.def"
DOCKERFILE = ROOT / "containers" / "Dockerfile"
REQUIREMENTS_LOCK = ROOT / "containers" / "requirements.lock"
BASE_LOCK = ROOT / "containers" / "base.lock"
BUILD = ROOT / "ci" / "build-image.sh"
WORKFLOW = ROOT / "ci" / "github" / "workflow.yml"
# A syntactically valid digest for dry runs of the build script; not a real image's digest.
TEST_DIGEST = "sha256:" + "0123456789abcdef" * 4


def def_sections() -> dict[str, str]:
    """The def file's raw sections (spython reads %arguments as comments and %test into echo lines)."""
    sections: dict[str, list[str]] = {"header": []}
    current = "header"
    for line in DEF.read_text().splitlines():
        if line.startswith("%"):
            current = line[1:].split()[0]
            sections.setdefault(current, [])
        else:
            sections[current].append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


def docker_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = pending + line
        pending = ""
        word, _, rest = text.strip().partition(" ")
        instructions.append((word.upper(), rest.strip()))
    return instructions


def constraint(name: str) -> str:
    match = re.search(rf"^{re.escape(name)}==(\S+)", (ROOT / "constraints.txt").read_text(), re.M)
    assert match, f"constraints.txt pins no {name}"
    return match.group(1)


def pinned_base_lock(tmp_path: Path) -> Path:
    name_tag = base_reference().partition("@")[0]
    path = tmp_path / "base.lock"
    path.write_text(f"# test copy, pinned to a made-up digest\n{name_tag}@{TEST_DIGEST}\n")
    return path


def run_script(*argv: str | Path, env: dict[str, str] | None = None, cwd: Path = ROOT):
    return subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def dry_run_build_args(tmp_path: Path, engine: str) -> tuple[list[str], dict[str, str]]:
    result = run_script(
        BUILD,
        "--dry-run",
        "--engine",
        engine,
        env={"SWEEPKIT_BASE_LOCK": str(pinned_base_lock(tmp_path))},
    )
    assert result.returncode == 0, result.stderr
    argv = shlex.split(result.stdout.splitlines()[0])
    values = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--build-arg")
    return argv, values


# --- the base image: pinned, or refused with the lock step named -------------------------------


def base_reference() -> str:
    lines = [line.strip() for line in BASE_LOCK.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")][0]
