"""The sweepkit console script: verbs, help, usage errors, a closed pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch

from sweepkit.jobs.cli import VERBS
from sweepkit.train import versions

ROOT = Path(__file__).resolve().parents[2]
SWEEPKIT = [sys.executable, "-m", "sweepkit.jobs.cli"]


@pytest.mark.system  # starts processes
@pytest.mark.parametrize("verb", list(VERBS))
def test_every_verb_has_help(verb):
    proc = subprocess.run([*SWEEPKIT, verb, "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and f"usage: sweepkit {verb}" in proc.stdout


@pytest.mark.system  # starts processes
def test_usage_errors_are_one_line_and_exit_2():
    bare = subprocess.run(SWEEPKIT, capture_output=True, text=True, cwd=ROOT)
    assert bare.returncode == 2 and all(verb in bare.stdout for verb in VERBS)
    bogus = subprocess.run([*SWEEPKIT, "trian"], capture_output=True, text=True, cwd=ROOT)
    assert (
        bogus.returncode == 2
        and bogus.stderr.count("\n") == 1
        and "unknown verb 'trian'" in bogus.stderr
    )


@pytest.mark.system  # starts processes
def test_a_closed_pipe_is_not_a_traceback(tmp_path):
    # `sweepkit sweep create ... | head -0`: the reader is gone before the sweep path is printed
    proc = subprocess.run(
        f"{' '.join(SWEEPKIT)} sweep create config/sweeps/digits_grid.yaml --root {tmp_path} | head -0",
        shell=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        executable="/bin/bash",
    )
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr


@pytest.mark.system  # starts processes
def test_version_reads_torch_and_cuda_without_importing_torch():
    """torch's import takes seconds; --version reads its version from its metadata and files."""
    code = (
        "import sys\n"
        "from sweepkit.jobs.cli import main\n"
        "main(['--version'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    import torch  # the test's own reference, after the subprocess (which must not import it)

    facts = dict(line.split(None, 1) for line in proc.stdout.splitlines())
    assert facts["torch"] == torch.__version__ and facts["cuda"] == (torch.version.cuda or "-")


@pytest.mark.system  # starts processes
def test_version_names_the_kit_its_revision_torch_cuda_wandb_and_the_image(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWEEPKIT_", "APPTAINER_"))}
    proc = subprocess.run(
        [*SWEEPKIT, "--version"], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert proc.returncode == 0, proc.stderr
    facts = dict(line.split(None, 1) for line in proc.stdout.splitlines())
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert facts["sweepkit"] == metadata.version("sweepkit")
    assert facts["git_revision"] in (head, f"{head}-dirty")
    assert facts["torch"] == torch.__version__ and facts["cuda"] == (torch.version.cuda or "-")
    assert facts["wandb"] == metadata.version("wandb")
    assert facts["image"] == "-" and facts["image_digest"] == "-"  # not in a container here
    # in an Apptainer job: the SIF it runs and the digest the job script computed
    env.update(
        APPTAINER_CONTAINER="/images/sweepkit.sif", SWEEPKIT_IMAGE_DIGEST="sha256:" + "a" * 64
    )
    inside = subprocess.run(
        [*SWEEPKIT, "--version"], capture_output=True, text=True, cwd=ROOT, env=env
    )
    facts = dict(line.split(None, 1) for line in inside.stdout.splitlines())
    assert (
        facts["image"] == "/images/sweepkit.sif" and facts["image_digest"] == "sha256:" + "a" * 64
    )


@pytest.mark.system  # starts processes
def test_an_image_without_a_checkout_names_its_revision_label(tmp_path):
    # In a container: no git checkout of the kit, the revision comes from the image's label
    # (SWEEPKIT_IMAGE_REVISION in its environment); Podman's /run/.containerenv names the image.
    containerenv = tmp_path / ".containerenv"
    containerenv.write_text(
        'engine="podman-4.3.1"\nname="x"\nimage="localhost/sweepkit:abc"\nimageid="'
        + "b" * 64
        + '"\n'
    )
    assert versions.image_identity(containerenv) == ("localhost/sweepkit:abc", "sha256:" + "b" * 64)
    assert versions.read_containerenv(tmp_path / "absent") == {}
    env = {"SWEEPKIT_IMAGE_REVISION": "abc123", "PATH": os.environ["PATH"]}
    code = "from sweepkit.train.versions import git_revision; print(git_revision())"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert proc.returncode == 0, proc.stderr
    # this checkout still wins here; a folder that is not a checkout gets the label
    assert proc.stdout.strip() != "abc123"
    not_a_checkout = subprocess.run(
        [
            sys.executable,
            "-c",
            "from sweepkit.train.versions import git_revision; from pathlib import Path;"
            f" print(git_revision(Path({str(tmp_path)!r})))",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert not_a_checkout.stdout.strip() == "abc123", not_a_checkout.stderr
