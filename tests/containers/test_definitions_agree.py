"""The Apptainer and Docker definitions agree, checked without a container engine.

Both definitions are parsed with spython's parsers and must agree: base, environment, labels,
copied files, the locked install, the self-test, and the build arguments the build script passes
(run in --dry-run mode).
"""

from __future__ import annotations

import hashlib
import re
import shlex
from pathlib import Path

import pytest
import tomllib
from container_files import (
    BUILD,
    DEF,
    DOCKERFILE,
    REQUIREMENTS_LOCK,
    ROOT,
    TEST_DIGEST,
    base_reference,
    constraint,
    def_sections,
    docker_instructions,
    dry_run_build_args,
    pinned_base_lock,
    run_script,
)
from spython.main.parse.parsers import DockerParser, SingularityParser

DOCKERIGNORE = ROOT / "containers" / "Dockerfile.dockerignore"
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}|\$\{(\w+)\}|\$(\w+)")
PROJECT_ROOT_IN_IMAGE = "/opt/sweepkit"


def normalize(text: str) -> str:
    """Apptainer's {{ NAME }} and Docker's ${NAME} both become <NAME>."""
    return PLACEHOLDER.sub(lambda m: f"<{next(g for g in m.groups() if g)}>", text).strip()


def apptainer_recipe():
    return SingularityParser(str(DEF)).recipe["spython-base"]


def docker_recipe():
    return DockerParser(str(DOCKERFILE)).recipe["spython-base"]


def def_arguments() -> dict[str, str]:
    """%arguments defaults, as Apptainer reads them (KEY=VALUE, comments skipped)."""
    args = {}
    for line in def_sections()["arguments"].splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            args[key.strip()] = value.strip()
    return args


def docker_args() -> dict[str, str | None]:
    args: dict[str, str | None] = {}
    for word, rest in docker_instructions():
        if word == "ARG":
            name, eq, default = rest.partition("=")
            args[name] = default if eq else None
    return args


# --- the two definitions agree -------------------------------------------------------------------


def test_both_definitions_pull_the_base_by_the_same_digest_argument():
    apptainer, docker = apptainer_recipe(), docker_recipe()
    assert def_sections()["header"].splitlines()[0].strip() == "Bootstrap: docker"
    # By digest alone: Apptainer (containers/image) refuses name:tag@digest. spython lowercases
    # the Apptainer header; the argument names are the same.
    expected = "<BASE_REPOSITORY>@<BASE_DIGEST>"
    assert normalize(apptainer.fromHeader).upper() == normalize(docker.fromHeader) == expected
    assert docker_instructions()[:2] == [("ARG", "BASE_REPOSITORY"), ("ARG", "BASE_DIGEST")]
    for name, recipe in (("sweepkit.def", apptainer), ("Dockerfile", docker)):
        install = normalize("\n".join(recipe.install))
        assert "echo \"<BASE_DIGEST>\" | grep -Eq '^sha256:[0-9a-f]{64}$' || {" in install, name
        assert "ci/build-image.sh --lock" in install, name


def test_both_set_the_same_environment():
    def env(recipe) -> dict[str, str]:
        return dict(normalize(item).split("=", 1) for item in recipe.environ)

    apptainer, docker = env(apptainer_recipe()), env(docker_recipe())
    assert apptainer == docker
    config = apptainer["SWEEPKIT_BASE_CONFIG"]
    assert config.startswith(PROJECT_ROOT_IN_IMAGE + "/")
    assert (ROOT / config.removeprefix(PROJECT_ROOT_IN_IMAGE + "/")).is_file()
    assert apptainer["TORCH_HOME"] == "/cache/torch"
    assert apptainer["SWEEPKIT_TESTED_TORCH"] == "<TORCH_VERSION>"
    assert apptainer["SWEEPKIT_TESTED_TORCHVISION"] == "<TORCHVISION_VERSION>"
    assert apptainer["PYTHONNOUSERSITE"] == "1"


def test_both_have_the_same_labels_with_the_provenance_stamps():
    apptainer = {
        key: normalize(value)
        for key, _, value in (line.partition(" ") for line in apptainer_recipe().labels)
    }
    docker = {}
    for [label] in docker_recipe().labels:
        key, _, value = label.rstrip("\\ ").partition("=")
        docker[key] = normalize(value.strip('"'))
    assert apptainer == docker
    assert {
        "org.opencontainers.image.revision": "<GIT_REVISION>",
        "org.opencontainers.image.created": "<BUILD_DATE>",
        "org.opencontainers.image.base.name": "<BASE_REPOSITORY>:<BASE_TAG>",
        "org.opencontainers.image.base.digest": "<BASE_DIGEST>",
        "sweepkit.requirements.sha256": "<LOCK_SHA256>",
    }.items() <= apptainer.items()


def test_both_copy_the_same_files_which_exist_and_pass_the_docker_ignore_file():
    apptainer = {tuple(line.split()) for line in apptainer_recipe().files}
    docker = set()
    for source, dest in docker_recipe().files:
        if dest.endswith("/"):
            dest += Path(source).name
        docker.add((source, dest))
    assert apptainer == docker
    included = {
        line[1:].rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.startswith("!")
    }
    for source, dest in apptainer:
        assert (ROOT / source).exists(), f"%files source {source} is missing"
        assert dest == f"{PROJECT_ROOT_IN_IMAGE}/{source}"
        assert source in included, f"{source} is excluded from the Docker build context"
    # Nothing of the data world goes in: datasets and weights come through binds only.
    assert not any(s.split("/")[0] in ("data", "runs", "sweeps", ".venv") for s, _ in apptainer)


def test_both_install_the_hash_locked_requirements_then_the_project_without_dependencies():
    lock_in_image = f"{PROJECT_ROOT_IN_IMAGE}/containers/requirements.lock"
    copied = {tuple(line.split()) for line in apptainer_recipe().files}
    assert ("containers/requirements.lock", lock_in_image) in copied

    def pip_installs(recipe) -> list[str]:
        lines = [line.strip().rstrip("\\").strip().rstrip(";") for line in recipe.install]
        return [
            " ".join(line.split()) for line in lines if line.startswith("python3 -m pip install")
        ]

    apptainer, docker = pip_installs(apptainer_recipe()), pip_installs(docker_recipe())
    assert apptainer == docker, (apptainer, docker)
    locked, project = apptainer
    assert f"-r {lock_in_image}" in locked
    assert {"--require-hashes", "--no-deps", "--only-binary=:all:"} <= set(locked.split())
    assert project.endswith(f" {PROJECT_ROOT_IN_IMAGE}")
    assert {"--no-deps", "--no-index", "--no-build-isolation"} <= set(project.split())
    for recipe in (apptainer_recipe(), docker_recipe()):
        install = " ".join(recipe.install)
        assert "sha256sum -c -" in install and "python3 -m pip check" in install


def test_both_run_the_self_test_and_sweepkit():
    apptainer, docker = apptainer_recipe(), docker_recipe()
    selftest = f"/bin/sh {PROJECT_ROOT_IN_IMAGE}/containers/selftest.sh"
    assert def_sections()["test"].split() == ["exec", *selftest.split()]
    assert selftest in docker.install  # a RUN of its own: versions, then the smoke
    assert any(line.endswith(f"{selftest} versions") for line in apptainer.install)
    assert apptainer.cmd == 'exec sweepkit "$@"'
    assert docker.entrypoint == ["sweepkit"]
    assert "sweepkit smoke" in (ROOT / "containers" / "selftest.sh").read_text()


@pytest.mark.system  # starts processes
def test_build_arguments_are_the_ones_both_definitions_use(tmp_path):
    used_by_def = {m.group(1) for m in re.finditer(r"\{\{\s*(\w+)\s*\}\}", DEF.read_text())}
    assert used_by_def == set(docker_args())
    # No default for what must come from the lock files: a build without them stops.
    required = {"BASE_REPOSITORY", "BASE_TAG", "BASE_DIGEST", "LOCK_SHA256"}
    assert {k for k, v in docker_args().items() if v is None} == required
    assert set(def_arguments()) == used_by_def - required
    for name, package in (("TORCH_VERSION", "torch"), ("TORCHVISION_VERSION", "torchvision")):
        assert def_arguments()[name] == docker_args()[name] == constraint(package)

    for engine in ("apptainer", "docker", "podman"):
        argv, values = dry_run_build_args(tmp_path, engine)
        # Apptainer stops on unused build arguments: pass exactly those the files use.
        assert set(values) == used_by_def, engine
        base = f"{values['BASE_REPOSITORY']}:{values['BASE_TAG']}@{values['BASE_DIGEST']}"
        assert base == base_reference().partition("@")[0] + "@" + TEST_DIGEST
        assert values["LOCK_SHA256"] == hashlib.sha256(REQUIREMENTS_LOCK.read_bytes()).hexdigest()
        assert values["TORCH_VERSION"] == constraint("torch")
        assert values["TORCHVISION_VERSION"] == constraint("torchvision")
        assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", values["GIT_REVISION"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", values["BUILD_DATE"])
        if engine == "apptainer":
            assert argv[:2] == ["apptainer", "build"] and argv[-1] == "containers/sweepkit.def"
        else:
            # Podman through ci/podman.sh, which adds what the machine needs.
            program = "docker" if engine == "docker" else "ci/podman.sh"
            assert argv[:4] == [program, "build", "--file", "containers/Dockerfile"]
            assert argv[-1] == "."


@pytest.mark.system  # starts processes
def test_a_podman_build_becomes_a_sif_through_a_docker_archive(tmp_path):
    """Podman has no daemon for docker-daemon://: the image is saved to an archive first."""
    result = run_script(
        BUILD,
        "--dry-run",
        "--engine",
        "podman",
        "--sif-from-docker",
        "--tag",
        "sweepkit:t1",
        env={"SWEEPKIT_BASE_LOCK": str(pinned_base_lock(tmp_path))},
    )
    assert result.returncode == 0, result.stderr
    build, save, convert = map(shlex.split, result.stdout.splitlines())
    assert build[:2] == ["ci/podman.sh", "build"] and build[-3:] == ["--tag", "sweepkit:t1", "."]
    archive = save[save.index("--output") + 1]
    assert save == [
        "podman",
        "save",
        "--format",
        "docker-archive",
        "--output",
        archive,
        "sweepkit:t1",
    ]
    assert archive.startswith("build/") and archive.endswith(".docker.tar")
    assert convert[:3] == ["apptainer", "build", "--force"]
    assert convert[3].endswith(".sif") and convert[4] == f"docker-archive://{archive}"


def test_both_definitions_copy_every_package_the_project_installs() -> None:
    """pip installs the project in the image from what was copied: a package pyproject.toml lists
    but neither definition copies fails the build at its install step (seen with sweepkit/)."""

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    tops = {
        name.rstrip("*") for name in project["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    dockerfile, definition = DOCKERFILE.read_text(), DEF.read_text()
    ignore = DOCKERIGNORE.read_text().splitlines()
    for top in sorted(tops):
        assert f"COPY {top} /opt/sweepkit/{top}\n" in dockerfile, top
        assert f"    {top} /opt/sweepkit/{top}\n" in definition, top
        assert f"!{top}" in ignore, top
