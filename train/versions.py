"""What a run or an image is made of: the kit's version and git revision, torch, torchvision,
CUDA and wandb, and the image with its digest when running in one. ``sweepkit --version`` prints
it, the image's self-test prints it first, and every run records it in ``run.json``.

The image: the job script passes ``SWEEPKIT_IMAGE_DIGEST`` (it hashes the image once per
submission). Without it, Podman's ``/run/.containerenv`` names the image and its id (Podman
writes them there only for a ``--privileged`` container), and Apptainer names the SIF it runs
(``APPTAINER_CONTAINER``; hashing a multi-GB file here would cost more than the command, so no
digest then).
"""

from __future__ import annotations

import importlib.util
import os
import runpy
import subprocess
from importlib import metadata
from pathlib import Path

# Written by Podman into every container it runs: ``engine`` always; ``name``, ``id``, ``image``,
# ``imageid`` ... only in a privileged one.
CONTAINERENV = Path("/run/.containerenv")
# a login-node install (`pip install sweepkit`) creates, submits, watches and reports on sweeps
TRAINER_MISSING = "not installed (the trainer needs it: pip install 'sweepkit[train]')"


def git_revision(checkout: Path | None = None) -> str | None:
    """HEAD of ``checkout`` (default: this project), ``-dirty`` when tracked files changed.

    Inside an image there is no checkout: the revision the image was built from
    (SWEEPKIT_GIT_REVISION, set by the job script) is used instead, else the image's own label
    (SWEEPKIT_IMAGE_REVISION, set in the image's environment at build time).
    """
    in_image = os.environ.get("SWEEPKIT_IMAGE_REVISION")  # the image's revision label
    if checkout is None:
        if os.environ.get("SWEEPKIT_GIT_REVISION"):
            return os.environ["SWEEPKIT_GIT_REVISION"]
        checkout = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(checkout), *args], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    if not head:
        return in_image if in_image and in_image != "unknown" else None
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return head + ("-dirty" if dirty else "")


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def read_containerenv(path: Path = CONTAINERENV) -> dict[str, str]:
    """Podman's ``key="value"`` lines; {} outside a Podman container."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    pairs = (line.partition("=") for line in text.splitlines())
    return {key.strip(): value.strip().strip('"') for key, _, value in pairs if value}


def image_identity(containerenv: Path = CONTAINERENV) -> tuple[str | None, str | None]:
    """(image, digest) this process runs in, as far as it can know them; (None, None) on a host."""
    env = os.environ
    image = None
    digest = env.get("SWEEPKIT_IMAGE_DIGEST")
    podman = read_containerenv(containerenv)
    if podman:
        image = podman.get("image") or None
        image_id = podman.get("imageid")
        digest = digest or (f"sha256:{image_id}" if image_id and ":" not in image_id else image_id)
    apptainer = env.get("APPTAINER_CONTAINER") or env.get("SINGULARITY_CONTAINER")
    return image or apptainer or None, digest or None


def versions(containerenv: Path = CONTAINERENV) -> dict[str, str | None]:
    """The facts, in the order ``sweepkit --version`` prints them."""
    image, digest = image_identity(containerenv)
    build = torch_build()
    return {
        "sweepkit": _dist_version("sweepkit"),
        "git_revision": git_revision(),
        # torch.__version__ (2.14.1+cu130), which a wheel's metadata may write without the local part
        "torch": _str(build.get("__version__")) or _dist_version("torch") or TRAINER_MISSING,
        "torchvision": _dist_version("torchvision"),
        "cuda": _str(build.get("cuda")),
        "wandb": _dist_version("wandb"),
        "image": image,
        "image_digest": digest,
    }


def torch_build() -> dict[str, object]:
    """torch's ``torch/version.py`` (``__version__``, ``cuda``), read without importing torch
    (which takes seconds: ``--version`` on a login node need not pay it); empty without torch."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return {}
    version_py = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        return runpy.run_path(str(version_py))
    except (OSError, SyntaxError, ImportError):
        return {}


def _str(value: object) -> str | None:
    return str(value) if value else None


def format_versions(facts: dict[str, str | None]) -> str:
    width = max(len(key) for key in facts)
    return "\n".join(f"{key:<{width}}  {value or '-'}" for key, value in facts.items())
