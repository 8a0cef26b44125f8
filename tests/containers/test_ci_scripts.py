"""The CI shell scripts, the definition's scriptlets and the GitHub workflow: linted, and the build
and smoke scripts' one-line refusals (no container engine needed).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from container_files import (
    BUILD,
    ROOT,
    WORKFLOW,
    constraint,
    def_sections,
    docker_instructions,
    dry_run_build_args,
    pinned_base_lock,
    run_script,
)

SMOKE = ROOT / "ci" / "smoke.sh"
# The virtual environment's scripts (sweepkit, check-jsonschema) live beside its interpreter.
BIN = Path(sys.executable).parent


# --- shell: scripts, scriptlets, workflow ------------------------------------------------------


@pytest.fixture(scope="module")
def shellcheck() -> str:
    path = shutil.which("shellcheck")
    if path is None:
        pytest.fail("shellcheck is not installed: apt-get install -y shellcheck (make system-deps)")
    return path


@pytest.mark.system  # starts processes
def test_shell_scripts_pass_shellcheck(shellcheck):
    scripts = sorted((ROOT / "ci").glob("*.sh")) + sorted((ROOT / "containers").glob("*.sh"))
    assert {p.name for p in scripts} >= {"build-image.sh", "smoke.sh", "selftest.sh"}
    result = run_script(shellcheck, *scripts)
    assert result.returncode == 0, result.stdout
    for script in scripts:
        assert run_script("bash", "-n", script).returncode == 0, script


@pytest.mark.system  # starts processes
def test_definition_scriptlets_pass_shellcheck_once_rendered(tmp_path, shellcheck):
    _, values = dry_run_build_args(tmp_path, "apptainer")
    sections = def_sections()
    for name in ("post", "environment", "runscript", "test"):
        body = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: values[m.group(1)], sections[name])
        script = tmp_path / f"{name}.sh"
        script.write_text("#!/bin/sh\n" + body + "\n")
        result = run_script(shellcheck, "--shell=sh", script)
        assert result.returncode == 0, f"%{name}:\n{result.stdout}"
    run_commands = [rest for word, rest in docker_instructions() if word == "RUN"]
    script = tmp_path / "docker-run.sh"
    script.write_text("#!/bin/sh\n" + "\n".join(run_commands) + "\n")
    result = run_script(shellcheck, "--shell=sh", script)
    assert result.returncode == 0, result.stdout


@pytest.mark.system  # starts processes
def test_workflow_is_a_valid_github_workflow_that_builds_tests_and_keeps_the_sif():
    result = run_script(
        BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", WORKFLOW
    )
    assert result.returncode == 0, result.stdout + result.stderr
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["image"]["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert "ci/build-image.sh" in runs
    assert re.search(r"^apptainer test build/sweepkit\.sif$", runs, re.M)
    assert re.search(r"^ci/smoke\.sh build/sweepkit\.sif$", runs, re.M)
    assert "docker image prune" in runs  # frees the runner's disk before the build
    [upload] = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload["with"]["path"] == "build/sweepkit.sif"
    assert "refs/tags/" in upload["if"]


# --- ci/smoke.sh and the image's self-test -----------------------------------------------------


@pytest.mark.system  # starts processes
def test_build_names_a_missing_engine_in_one_line(tmp_path):
    """No podman on PATH: one line naming it and how to get it, before anything is built."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in (
        *("bash", "env", "git", "sha256sum", "sed", "grep", "head", "tr", "cut", "date"),
        *("dirname", "id", "cat", "mkdir"),
    ):
        found = shutil.which(tool)
        assert found, tool
        (tools / tool).symlink_to(found)
    result = run_script(
        BUILD,
        "--engine",
        "podman",
        env={"PATH": str(tools), "SWEEPKIT_BASE_LOCK": str(pinned_base_lock(tmp_path))},
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "build-image: error: podman is not on PATH; install it (Debian: apt-get install podman) "
        "or pick another --engine"
    ]


@pytest.mark.system  # starts processes
def test_build_names_an_engine_that_cannot_run_in_one_line(tmp_path):
    """A podman that is installed but broken (here a stand-in whose `info` fails as Podman's does
    without conmon): one line with its error, before any build."""
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "podman").write_text(
        "#!/bin/sh\necho 'Error: could not find a working conmon binary (configured options: [])' >&2"
        "\nexit 125\n"
    )
    (tools / "podman").chmod(0o755)
    result = run_script(
        BUILD,
        "--engine",
        "podman",
        env={
            "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}",
            "SWEEPKIT_BASE_LOCK": str(pinned_base_lock(tmp_path)),
        },
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "build-image: error: podman cannot run here (podman info: Error: could not find a working "
        "conmon binary (configured options: [])); start its daemon or fix its setup"
    ]


@pytest.mark.system  # starts processes
def test_smoke_script_names_what_is_missing(tmp_path):
    missing = run_script(SMOKE, tmp_path / "nope.sif")
    assert missing.returncode == 2
    assert f"image file {tmp_path / 'nope.sif'} not found" in missing.stderr
    assert "ci/build-image.sh" in missing.stderr

    image = tmp_path / "empty.sif"
    image.write_bytes(b"")
    system_path = "/usr/bin:/bin"
    if not any(shutil.which(e, path=system_path) for e in ("apptainer", "singularity")):
        no_engine = run_script(SMOKE, image, env={"PATH": system_path})
        assert no_engine.returncode == 2
        assert "neither apptainer nor singularity is on PATH" in no_engine.stderr

    docker = run_script(SMOKE, "sweepkit:not-built-here")
    assert docker.returncode == 2
    assert "sweepkit:not-built-here" in docker.stderr or "not on PATH" in docker.stderr

    usage = run_script(SMOKE)
    assert usage.returncode == 2 and "usage: ci/smoke.sh" in usage.stderr


@pytest.mark.system  # starts processes
def test_smoke_script_on_the_host_runs_sweepkit_smoke_and_returns_its_exit_code():
    env = {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    bad = run_script(SMOKE, "--host", "--model", "nope", env=env)
    assert bad.returncode == 2  # sweepkit smoke's own usage error, passed through
    assert "invalid choice: 'nope'" in bad.stderr
    assert "smoke.sh: sweepkit smoke --model nope" in bad.stderr

    # A passing smoke on the host is tests/train/test_trainer.py's (sweepkit smoke, the same command).


@pytest.mark.system  # starts processes
def test_selftest_refuses_a_torch_other_than_the_tested_one():
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "SWEEPKIT_TESTED_TORCH": "1.0.0",
        "SWEEPKIT_TESTED_TORCHVISION": constraint("torchvision"),
    }
    result = run_script("/bin/sh", ROOT / "containers" / "selftest.sh", "versions", env=env)
    assert result.returncode == 1
    assert f"the base image has torch {constraint('torch')}" in result.stderr
    assert "containers/base.lock" in result.stderr
