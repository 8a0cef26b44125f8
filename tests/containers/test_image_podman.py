"""The image, built and run for real with Podman: ci/build-image.sh --engine podman on the stand-in
base (tests/containers/README.md says how it differs from PyTorch's image), then its labels, the
smoke, a sweep run inside a container, and a 2-run grid through SLURM with the local-podman
profile, each run from a container of its own.

The slowest tests of the suite: the stand-in base is built once per recipe and kept (several GB,
in Podman's store); the image built on it is removed at the end, with everything else these tests
made. Needs root, podman, runc and debootstrap (tests/install-system-deps.sh installs them).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from slurm_fixture import REPO, Slurm, make_sweep, run_infos, submitted_job, sweepkit

from sweepkit.jobs.sweeps.store import AgentIdentity, Claim, open_sweep
from sweepkit.jobs.sweeps.store.journal import Journal

pytestmark = [pytest.mark.container, pytest.mark.slow]

PODMAN = REPO / "ci" / "podman.sh"
STANDIN = REPO / "tests" / "containers" / "standin-base.sh"
BUILD = REPO / "ci" / "build-image.sh"
SMOKE = REPO / "ci" / "smoke.sh"
CLUSTER = REPO / "config" / "cluster.yaml"
# The local-podman profile's image (config/cluster.yaml).
IMAGE = "localhost/sweepkit-test:image-test"
NODE = socket.gethostname()
# The real trainer on digits, kept tiny: ResNet-18, one epoch of three steps.
DIGITS = {
    "program": "train",
    "command": [
        "${env}",
        "${interpreter}",
        "-m",
        "sweepkit.train",
        "--config",
        "config/presets/digits.yaml",
        "--model_name=resnet18",
        "--num_epochs=1",
        "--limit_train_batches=3",
        "${args}",
    ],
    "method": "grid",
    "metric": {"name": "Validation Accuracy", "goal": "maximize"},
    "parameters": {"learning_rate": {"values": [0.01, 0.001]}, "batch_size": {"value": 32}},
}


def podman(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PODMAN), *argv], capture_output=True, text=True, timeout=timeout, check=False
    )


def tail(result: subprocess.CompletedProcess[str], lines: int = 30) -> str:
    return "\n".join((result.stdout + result.stderr).splitlines()[-lines:])


@pytest.fixture(scope="module")
def standin() -> dict[str, str]:
    """The stand-in base (built only when its recipe changed) and its lock."""
    for tool in ("podman", "runc", "debootstrap"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} missing: run tests/install-system-deps.sh (make system-deps)")
    if os.geteuid() != 0:
        pytest.fail("the container tests need root (debootstrap, rootful Podman)")
    lock = REPO / "build" / "standin" / "base.lock"
    result = subprocess.run(
        ["bash", str(STANDIN), str(lock)], capture_output=True, text=True, timeout=1800
    )
    assert result.returncode == 0, tail(result)
    ref = result.stdout.strip().splitlines()[-1]
    assert lock.read_text().strip().endswith(ref)
    name_tag, _, digest = ref.partition("@")
    return {"lock": str(lock), "name_tag": name_tag, "digest": digest}


@pytest.fixture(scope="module")
def image(standin: dict[str, str]) -> Iterator[dict[str, str]]:
    """containers/Dockerfile built on the stand-in by ci/build-image.sh, the self-test included;
    removed afterwards. No intermediate images are kept (BUILDAH_LAYERS=false)."""
    env = {**os.environ, "SWEEPKIT_BASE_LOCK": standin["lock"], "BUILDAH_LAYERS": "false"}
    result = subprocess.run(
        [str(BUILD), "--engine", "podman", "--tag", IMAGE],
        capture_output=True,
        text=True,
        timeout=1800,
        env=env,
    )
    try:
        assert result.returncode == 0, tail(result)
        assert f"image: {IMAGE}\n" in result.stdout
        assert "selftest: torch 2.14.1" in result.stderr  # the self-test ran as the last step
        inspect = podman("image", "inspect", IMAGE)
        assert inspect.returncode == 0, inspect.stderr
        yield {**standin, "inspect": inspect.stdout}
    finally:
        podman("rmi", "--force", IMAGE)


def test_image_labels_name_its_revision_lock_and_the_standin_base(image: dict[str, str]) -> None:
    (info,) = json.loads(image["inspect"])
    labels = info["Labels"]
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert labels["org.opencontainers.image.revision"] in (head, f"{head}-dirty")
    lock = (REPO / "containers" / "requirements.lock").read_bytes()
    assert labels["sweepkit.requirements.sha256"] == hashlib.sha256(lock).hexdigest()
    assert labels["org.opencontainers.image.base.digest"] == image["digest"]
    assert labels["org.opencontainers.image.base.name"] == image["name_tag"]
    assert (labels["sweepkit.tested.torch"], labels["sweepkit.tested.torchvision"]) == (
        "2.14.1",
        "0.29.1",
    )
    assert info["Config"]["Entrypoint"] == ["sweepkit"]
    # inside a container the image names its revision label and versions; Podman tells a
    # container its image and id (/run/.containerenv) only when it runs privileged
    version = podman("run", "--rm", IMAGE, "--version", timeout=300)
    assert version.returncode == 0, tail(version)
    facts = dict(line.split(None, 1) for line in version.stdout.splitlines())
    assert facts["git_revision"] == labels["org.opencontainers.image.revision"]
    assert facts["torch"].startswith("2.14.1") and facts["torchvision"].startswith("0.29.1")
    privileged = podman("run", "--rm", "--privileged", IMAGE, "--version", timeout=300)
    assert privileged.returncode == 0, tail(privileged)
    facts = dict(line.split(None, 1) for line in privileged.stdout.splitlines())
    assert facts["image"].endswith(IMAGE.split("/", 1)[1]), facts
    assert facts["image_digest"] == f"sha256:{info['Id']}", facts


def test_smoke_script_runs_the_smoke_in_the_image(image: dict[str, str]) -> None:
    result = subprocess.run(
        [str(SMOKE), IMAGE],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "SWEEPKIT_DOCKER": str(PODMAN)},
    )
    assert result.returncode == 0, tail(result)
    if shutil.which("nvidia-smi") is None:
        assert "the smoke runs on the CPU" in result.stderr


def test_agent_in_a_container_runs_a_run_and_leaves_a_host_agents_claim_alone(
    image: dict[str, str], tmp_path: Path
) -> None:
    ref = make_sweep(tmp_path, DIGITS)
    # A live agent on this node, outside the container: its pid means nothing in the
    # container's PID namespace, so only its heartbeat may tell whether it is gone.
    held = open_sweep(ref).claim(AgentIdentity())
    assert isinstance(held, Claim)
    digest = json.loads(image["inspect"])[0]["Digest"]
    result = podman(
        "run",
        "--rm",
        "--network",
        "host",
        "--env",
        f"SWEEPKIT_NODE={NODE}",
        "--env",
        f"SWEEPKIT_IMAGE_DIGEST={digest}",
        "--env",
        "WANDB_MODE=offline",
        "--env",
        "OMP_NUM_THREADS=1",
        "--volume",
        f"{ref}:{ref}",
        "--workdir",
        "/opt/sweepkit",
        IMAGE,
        "agent",
        "--count",
        "1",
        ref,
        timeout=900,
    )
    assert result.returncode == 0, tail(result)
    runs = {r.run_id: r for r in open_sweep(ref).runs()}
    assert runs[held.run_id].state == "running" and runs[held.run_id].attempts == 1
    (ran,) = [r for r in runs.values() if r.run_id != held.run_id]
    assert ran.state == "finished" and ran.attempts == 1
    assert isinstance(ran.metric, float) and ran.metric > 0  # the store outside has its metric
    (info,) = [i for i in run_infos(ref) if i["run_id"] == ran.run_id]
    assert info["image_digest"] == digest and info["host"] == NODE
    claims = journal_claims(ref)
    assert claims[ran.run_id]["host"] == NODE
    assert claims[ran.run_id]["pid_ns"] != AgentIdentity().pid_ns


def journal_claims(ref: str) -> dict[str, dict[str, Any]]:
    records = Journal(Path(ref) / "journal.jsonl").read_new()
    return {r["run"]: r for r in records if r.get("t") == "claim"}


@pytest.mark.slurm
def test_local_podman_profile_runs_a_grid_in_two_containers_through_slurm(
    slurm: Slurm, image: dict[str, str], tmp_path: Path
) -> None:
    ref = make_sweep(tmp_path, DIGITS)
    env = {**slurm.env(), "SWEEPKIT_PODMAN": str(PODMAN)}
    result = sweepkit(
        "submit", ref, "--profile", "local-podman", "--cluster-config", str(CLUSTER), env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    job = str(submitted_job(ref)["job_id"])
    slurm.wait_done(job, timeout=900)
    logs = "\n".join(p.read_text() for p in sorted((Path(ref) / "slurm" / "logs").glob("*")))
    runs = open_sweep(ref).runs()
    assert sorted(r.state for r in runs) == ["finished", "finished"], logs
    assert all(isinstance(r.metric, float) for r in runs)
    digest = json.loads(image["inspect"])[0]["Digest"]
    infos = run_infos(ref)
    assert [i["image_digest"] for i in infos] == [digest, digest]
    assert [i["host"] for i in infos] == [NODE, NODE]  # the node's name, not a container id
    assert f"{PODMAN} run --rm --network host" in logs
    # Two agents, two containers, one node: each in a PID namespace of its own.
    namespaces = {c["pid_ns"] for c in journal_claims(ref).values()}
    assert len(namespaces) == 2 and AgentIdentity().pid_ns not in namespaces


def test_a_lock_hash_that_the_index_does_not_serve_stops_the_build_in_one_line(
    standin: dict[str, str], tmp_path: Path
) -> None:
    """A checkout whose lock has a wrong sha256 for its first package: the build stops at the
    locked install with pip's line for that package and the lock file named."""
    copy = tmp_path / "checkout"
    shutil.copytree(
        REPO,
        copy,
        ignore=shutil.ignore_patterns(".git", ".venv", "build", "sweeps", "runs", "*_cache"),
    )
    lock = copy / "containers" / "requirements.lock"
    first, rest = lock.read_text().split("\n    # via", 1)
    package = next(line for line in first.splitlines() if "==" in line).split(" ")[0]
    wrong = re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, first)
    lock.write_text(wrong + "\n    # via" + rest)
    tag = "localhost/sweepkit-test:wrong-hash"
    try:
        result = subprocess.run(
            [str(copy / "ci" / "build-image.sh"), "--engine", "podman", "--tag", tag],
            capture_output=True,
            text=True,
            timeout=1200,
            env={**os.environ, "SWEEPKIT_BASE_LOCK": standin["lock"], "BUILDAH_LAYERS": "false"},
        )
    finally:
        podman("rmi", "--force", tag)
    assert result.returncode == 2, tail(result)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "build-image: error: a hash in containers/requirements.lock does not match the file pip "
        f"got: {package} from "
    ), last
    assert "ci/build-image.sh --requirements" in last
