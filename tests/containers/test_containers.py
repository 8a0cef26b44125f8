"""The container definitions, lock files and CI scripts, checked without a container engine.

No Apptainer or Docker daemon is needed: both definitions are parsed with spython's parsers and
must agree (base, environment, labels, copied files, the locked install, the self-test); the
build script runs in --dry-run mode; the shell scripts, the definition's scriptlets and the GitHub
workflow are linted. Building and running the image is left to machines with an engine (the
docs/containers.md says which steps those are).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from spython.main.parse.parsers import DockerParser, SingularityParser

from sweepkit.jobs.cli import VERBS

pytestmark = pytest.mark.system  # starts processes (see tests/conftest.py)

ROOT = Path(__file__).resolve().parents[2]
DEF = ROOT / "containers" / "sweepkit.def"
DOCKERFILE = ROOT / "containers" / "Dockerfile"
DOCKERIGNORE = ROOT / "containers" / "Dockerfile.dockerignore"
REQUIREMENTS_LOCK = ROOT / "containers" / "requirements.lock"
BASE_LOCK = ROOT / "containers" / "base.lock"
BUILD = ROOT / "ci" / "build-image.sh"
SMOKE = ROOT / "ci" / "smoke.sh"
WORKFLOW = ROOT / "ci" / "github" / "workflow.yml"
# The virtual environment's scripts (sweepkit, check-jsonschema) live beside its interpreter.
BIN = Path(sys.executable).parent

# A syntactically valid digest for dry runs of the build script; not a real image's digest.
TEST_DIGEST = "sha256:" + "0123456789abcdef" * 4
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}|\$\{(\w+)\}|\$(\w+)")
PROJECT_ROOT_IN_IMAGE = "/opt/sweepkit"


def normalize(text: str) -> str:
    """Apptainer's {{ NAME }} and Docker's ${NAME} both become <NAME>."""
    return PLACEHOLDER.sub(lambda m: f"<{next(g for g in m.groups() if g)}>", text).strip()


def apptainer_recipe():
    return SingularityParser(str(DEF)).recipe["spython-base"]


def docker_recipe():
    return DockerParser(str(DOCKERFILE)).recipe["spython-base"]


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


def def_arguments() -> dict[str, str]:
    """%arguments defaults, as Apptainer reads them (KEY=VALUE, comments skipped)."""
    args = {}
    for line in def_sections()["arguments"].splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            args[key.strip()] = value.strip()
    return args


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


def docker_args() -> dict[str, str | None]:
    args: dict[str, str | None] = {}
    for word, rest in docker_instructions():
        if word == "ARG":
            name, eq, default = rest.partition("=")
            args[name] = default if eq else None
    return args


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


# --- the base image: pinned, or refused with the lock step named -------------------------------


def base_reference() -> str:
    lines = [line.strip() for line in BASE_LOCK.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")][0]


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


# --- shell: scripts, scriptlets, workflow ------------------------------------------------------


@pytest.fixture(scope="module")
def shellcheck() -> str:
    path = shutil.which("shellcheck")
    if path is None:
        pytest.fail("shellcheck is not installed: apt-get install -y shellcheck (make system-deps)")
    return path


def test_shell_scripts_pass_shellcheck(shellcheck):
    scripts = sorted((ROOT / "ci").glob("*.sh")) + sorted((ROOT / "containers").glob("*.sh"))
    assert {p.name for p in scripts} >= {"build-image.sh", "smoke.sh", "selftest.sh"}
    result = run_script(shellcheck, *scripts)
    assert result.returncode == 0, result.stdout
    for script in scripts:
        assert run_script("bash", "-n", script).returncode == 0, script


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


def test_smoke_script_on_the_host_runs_sweepkit_smoke_and_returns_its_exit_code():
    env = {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    bad = run_script(SMOKE, "--host", "--model", "nope", env=env)
    assert bad.returncode == 2  # sweepkit smoke's own usage error, passed through
    assert "invalid choice: 'nope'" in bad.stderr
    assert "smoke.sh: sweepkit smoke --model nope" in bad.stderr
    # A passing smoke on the host is tests/train/test_trainer.py's (sweepkit smoke, the same command).


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


# --- the commands of docs/containers.md (its CI section and the cluster blocks) ------------------


def readme_commands() -> list[str]:
    from docs_blocks import blocks

    return [c for block in blocks("docs/containers.md", lang="bash") for c in block.commands]


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


VERBS_OF_SWEEPKIT = (
    "train",
    "smoke",
    "data",
    "sweep",
    "agent",
    "submit",
    "status",
    "report",
    "sync",
)


def test_both_definitions_copy_every_package_the_project_installs() -> None:
    """pip installs the project in the image from what was copied: a package pyproject.toml lists
    but neither definition copies fails the build at its install step (seen with sweepkit/)."""
    import tomllib

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
