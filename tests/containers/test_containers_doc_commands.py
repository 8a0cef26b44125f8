"""The commands of docs/containers.md (its CI section and the cluster blocks) run or parse."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest
from container_files import (
    ROOT,
    WORKFLOW,
    pinned_base_lock,
    run_script,
)
from docs_blocks import blocks

from sweepkit.jobs.cli import VERBS

# --- the commands of docs/containers.md (its CI section and the cluster blocks) ------------------


def readme_commands() -> list[str]:
    return [c for block in blocks("docs/containers.md", lang="bash") for c in block.commands]


@pytest.mark.system  # starts processes
def test_readme_commands_run_or_parse(tmp_path):
    """docs/containers.md: build-script commands run as --dry-run; the container-only ones are
    parsed; the CI section's mkdir/cp runs."""
    commands = readme_commands()
    assert any(c.startswith("ci/build-image.sh --lock") for c in commands)
    env = {"SWEEPKIT_BASE_LOCK": str(pinned_base_lock(tmp_path))}
    for command in commands:
        argv = shlex.split(command)
        if argv[0] == "ci/build-image.sh":
            result = run_script(ROOT / argv[0], *argv[1:], "--dry-run", env=env)
            assert result.returncode == 0, (command, result.stderr)
        elif argv[0] == "ci/smoke.sh":
            # Runs for real: here there is no such image, and it says so.
            assert len(argv) == 2
            result = run_script(ROOT / argv[0], argv[1])
            assert result.returncode == 2, command
            assert argv[1] in result.stderr or "not on PATH" in result.stderr
        elif argv[0] == "apptainer":
            verb, *rest = argv[1:]
            assert verb in ("inspect", "test", "run", "exec"), command
            image = next(a for a in rest if a.endswith(".sif"))
            assert image.startswith("build/sweepkit-")  # where ci/build-image.sh writes it
            flags = rest[: rest.index(image)]
            while flags:
                flag = flags.pop(0)
                assert flag in ("--nv", "--bind"), command
                if flag == "--bind":
                    source, dest, *mode = flags.pop(0).split(":")
                    assert dest in ("/data", "/cache/torch") and mode in ([], ["ro"])
            if verb == "run":
                assert rest[rest.index(image) + 1] in VERBS  # the runscript is sweepkit
        elif argv[0] in ("mkdir", "cp"):
            # Runs for real, in a fresh checkout's shape: ci/ present, no .github/ yet.
            assert "ci/github/workflow.yml" in argv, command
            clone = tmp_path / "clone"
            (clone / "ci" / "github").mkdir(parents=True)
            shutil.copy2(WORKFLOW, clone / "ci" / "github" / "workflow.yml")
            for _ in range(2):  # and again, once the folder exists
                result = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", command],
                    cwd=clone,
                    capture_output=True,
                    text=True,
                )
                assert result.returncode == 0, (command, result.stderr)
                copied = clone / ".github" / "workflows" / "image.yml"
                assert copied.read_bytes() == WORKFLOW.read_bytes()
        else:
            pytest.fail(f"docs/containers.md command not covered by a test: {command}")
