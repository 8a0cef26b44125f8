"""The image's locks: the base pinned by digest (or the build refused with the lock step named), and
the hash-locked requirements that match pyproject.toml's dependencies.
"""

from __future__ import annotations

import importlib.metadata
import re
import shlex

import pytest
import tomllib
from container_files import (
    BASE_LOCK,
    BUILD,
    REQUIREMENTS_LOCK,
    ROOT,
    base_reference,
    constraint,
    run_script,
)
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# --- the hash-locked requirements ---------------------------------------------------------------


def lock_entries() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) from containers/requirements.lock."""
    text = REQUIREMENTS_LOCK.read_text().replace("\\\n", " ")
    entries: dict[str, tuple[str, list[str]]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        spec, *options = line.split()
        assert "==" in spec, f"{spec} is not pinned with =="
        name, version = spec.split("==")
        hashes = [o.removeprefix("--hash=") for o in options if o.startswith("--hash=")]
        assert len(hashes) == len(options), f"{spec}: options other than --hash: {options}"
        entries[canonicalize_name(name)] = (version, hashes)
    return entries


@pytest.mark.system  # starts processes
def test_base_is_pytorchs_image_for_the_tested_torch_and_is_pinned_or_refused():
    ref = base_reference()
    name_tag, _, digest = ref.partition("@")
    name, _, tag = name_tag.rpartition(":")
    assert name in ("docker.io/pytorch/pytorch", "pytorch/pytorch")
    assert tag.startswith(f"{constraint('torch')}-cuda") and tag.endswith("-runtime")
    result = run_script(BUILD, "--dry-run", "--engine", "apptainer")
    if digest:
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
        assert result.returncode == 0, result.stderr
    else:
        # Shipped unpinned (no registry where it was written): the build refuses and says why.
        assert result.returncode == 2
        assert "not pinned by digest" in result.stderr
        assert "ci/build-image.sh --lock" in result.stderr
        assert "ci/build-image.sh --lock" in BASE_LOCK.read_text()


@pytest.mark.system  # starts processes
def test_build_refuses_a_base_lock_without_digest_and_lock_step_rejects_a_bad_name(tmp_path):
    unpinned = tmp_path / "base.lock"
    unpinned.write_text("# no digest\ndocker.io/pytorch/pytorch:2.14.1-cuda13.0-cudnn9-runtime\n")
    for engine in ("apptainer", "docker"):
        result = run_script(
            BUILD, "--dry-run", "--engine", engine, env={"SWEEPKIT_BASE_LOCK": str(unpinned)}
        )
        assert result.returncode == 2
        assert f"{unpinned} names docker.io/pytorch/pytorch:" in result.stderr
    bad = run_script(BUILD, "--lock", "--dry-run", "--base", "pytorch/pytorch")
    assert bad.returncode == 2 and "is not NAME:TAG" in bad.stderr
    # The registry API the lock step asks when neither skopeo nor crane is installed.
    plan = run_script(BUILD, "--lock", "--dry-run", "--base", "pytorch/pytorch:2.14.1-x")
    assert plan.returncode == 0, plan.stderr
    assert "https://registry-1.docker.io/v2/pytorch/pytorch/manifests/2.14.1-x" in plan.stderr
    assert unpinned.read_text().startswith("# no digest")  # --dry-run wrote nothing


def test_requirements_lock_pins_and_hashes_every_runtime_dependency():
    entries = lock_entries()
    for name, (_, hashes) in entries.items():
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), name
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = set()
    for text in project["project"]["dependencies"] + project["build-system"]["requires"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name in ("torch", "torchvision"):
            continue
        wanted.add(name)
        assert requirement.specifier.contains(entries[name][0]), (name, entries[name][0])
        for extra in requirement.extras:  # e.g. wandb[sweeps] -> sweeps
            for dep in importlib.metadata.requires(requirement.name) or []:
                dep_req = Requirement(dep)
                if dep_req.marker and dep_req.marker.evaluate({"extra": extra}):
                    wanted.add(canonicalize_name(dep_req.name))
    assert wanted <= set(entries), sorted(wanted - set(entries))
    # torch and its CUDA stack come from the base image, never from the lock.
    leaked = [
        n for n in entries if n in ("torch", "torchvision", "triton") or n.startswith("nvidia-")
    ]
    assert not leaked
    # The image gets the versions the test environment was tested with.
    pins = dict(
        (canonicalize_name(n), v)
        for n, v in re.findall(
            r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "constraints.txt").read_text(), re.M
        )
    )
    differ = {n: (v, pins[n]) for n, (v, _) in entries.items() if n in pins and pins[n] != v}
    assert not differ
    assert "ci/build-image.sh --requirements" in REQUIREMENTS_LOCK.read_text()


@pytest.mark.system  # starts processes
def test_requirements_step_locks_pyproject_dependencies_minus_torch():
    result = run_script(BUILD, "--requirements", "--dry-run")
    assert result.returncode == 0, result.stderr
    *requirements_in, command = result.stdout.splitlines()
    listed = {
        canonicalize_name(Requirement(line).name)
        for line in requirements_in
        if line and not line.startswith("#")
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = {
        canonicalize_name(Requirement(r).name)
        for r in project["project"]["dependencies"] + project["build-system"]["requires"]
    }
    assert listed == declared - {"torch", "torchvision"}
    argv = shlex.split(command)
    assert {"--generate-hashes", "--allow-unsafe", "--no-emit-find-links"} <= set(argv)
    assert argv[argv.index("--constraint") + 1] == "constraints.txt"
    assert "PIP_CONFIG_FILE=/dev/null" in argv  # independent of this machine's pip mirrors
