"""The sbatch array script of a sweep: ``jobs/slurm/sweep_array.sbatch`` rendered from a profile.

Jinja2 in strict mode (``StrictUndefined``: a value the template uses and the caller did not set
is an error, never an empty string). Values in ``#SBATCH`` lines were checked by
``jobs/slurm/profiles/`` (nothing there can be quoted); values in the script body are shell-quoted
with the ``q`` filter. Also the provenance the script prints: git revision and image digest.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sweepkit.jobs.slurm.profiles import CONTROL_CHARS, DIRECTIVE_BAD, Profile
from sweepkit.jobs.slurm.target import SweepTarget
from sweepkit.jobs.sweeps.console import console_script
from sweepkit.train import versions
from sweepkit.train.errors import UserError
from sweepkit.train.staging import file_digest

TEMPLATE = "sweep_array.sbatch"


# ----- rendering ------------------------------------------------------------------------------
def agent_argv(profile: Profile, target: SweepTarget, runs_per_task: int) -> list[str]:
    """The agent command: wandb agent for W&B sweeps, sweepkit agent for local ones."""
    count = ["--count", str(runs_per_task)]
    if not target.sweep.is_local:
        exe = "wandb" if profile.container else _beside_python("wandb")
        return [exe, "agent", "--forward-signals", *count, "$SWEEP"]
    exe = "sweepkit" if profile.container else _beside_python("sweepkit")
    return [exe, "agent", *count, "$SWEEP"]


def _beside_python(name: str) -> str:
    """The console script of this environment (a venv need not be activated in the job)."""
    return console_script(name) or name


def launch_lines(
    profile: Profile, target: SweepTarget, runs_per_task: int, workdir: Path
) -> list[str]:
    """The agent command as shell-quoted lines of a bash array (``$SWEEP``/``$IMAGE`` kept)."""

    def word(token: str) -> str:
        if token in _SHELL_WORDS:
            return _SHELL_WORDS[token]
        return f'"{token}"' if token in ("$SWEEP", "$IMAGE") else shlex.quote(token)

    lines: list[list[str]] = []
    if profile.runtime == "podman":
        return [
            " ".join(word(token) for token in line)
            for line in podman_run(profile, target, runs_per_task, workdir)
        ]
    if profile.container:
        lines.append([profile.runtime, "exec"] + (["--nv"] if profile.gpus else []))
        binds = list(profile.binds)
        # The working directory is bound by apptainer by default; the sweep folder may not be.
        if target.sweep.is_local and not target.sweep.folder.is_relative_to(workdir):
            binds.append(str(target.sweep.folder))
        lines += [["--bind", bind] for bind in binds]
        lines.append(["$IMAGE"])
    lines.append(agent_argv(profile, target, runs_per_task))
    return [" ".join(word(token) for token in line) for line in lines]


# Launch tokens that stay shell expansions in the rendered array (set by the template).
_SHELL_WORDS = {"$PODMAN": '"$PODMAN"', "${podman_flags[@]}": '"${podman_flags[@]}"'}


def podman_run(
    profile: Profile, target: SweepTarget, runs_per_task: int, workdir: Path
) -> list[list[str]]:
    """``podman run`` of the agent: nothing of the job's environment enters a Podman container
    unless named, so the SLURM and sweepkit variables (the node's name among them), the threads,
    the GPU assignment and the profile's env are passed by name; binds keep their paths; the
    working directory and a sweep folder outside it are bound at the same path."""
    lines = [["$PODMAN", "run", "--rm", "--network", "host", "${podman_flags[@]}"]]
    if profile.gpus:
        lines.append(["--device", "nvidia.com/gpu=all"])  # CDI; CUDA_VISIBLE_DEVICES picks
    names = ["SLURM_*", "SWEEPKIT_*", "OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "PYTHONNOUSERSITE"]
    if not target.sweep.is_local:
        names.append("WANDB_*")
    names += [name for name in profile.env if not name.startswith(("SLURM_", "SWEEPKIT_"))]
    lines += [["--env", name] for name in dict.fromkeys(names)]
    binds = [bind if ":" in bind else f"{bind}:{bind}" for bind in profile.binds]
    binds.append(f"{workdir}:{workdir}")
    if target.sweep.is_local and not target.sweep.folder.is_relative_to(workdir):
        binds.append(f"{target.sweep.folder}:{target.sweep.folder}")
    lines += [["--volume", bind] for bind in binds]
    exe, *args = agent_argv(profile, target, runs_per_task)
    lines.append(["--workdir", str(workdir), "--entrypoint", exe, "$IMAGE"])
    lines.append(args)
    return lines


def render_context(
    *,
    profile: Profile,
    target: SweepTarget,
    array: str,
    runs_per_task: int,
    workdir: Path,
    log_dir: Path,
    job_name: str,
    image_digest: str | None,
    git_revision: str,
) -> dict[str, Any]:
    for what, value in (("working directory", str(workdir)), ("log folder", str(log_dir))):
        bad = DIRECTIVE_BAD.search(value) or CONTROL_CHARS.search(value)
        if bad:
            raise UserError(
                f"{what} {value!r} holds {bad.group()!r}, which an #SBATCH line cannot hold; "
                "use a path without spaces or shell characters (profile key log_dir, or cd)"
            )
    if DIRECTIVE_BAD.search(job_name):
        raise UserError(f"job name {job_name!r} holds a space or shell character; fix job_name")
    return {
        "profile": profile,
        # kind: what the template's W&B-only parts (the key file, signal forwarding) test
        "sweep": {
            "kind": "local" if target.sweep.is_local else "wandb",
            "ref": target.name,
            "id": target.sweep_id,
        },
        "array": array,
        "runs_per_task": runs_per_task,
        "workdir": str(workdir),
        "log_dir": str(log_dir),
        "log_path": str(log_dir / profile.log_name),
        "job_name": job_name,
        "image": str(profile.image) if profile.image else "",
        "image_digest": image_digest or "",
        "git_revision": git_revision,
        "container": profile.container,
        # runtime none: the job's ${interpreter} (python from PATH) is this environment's
        "python_bin": str(Path(sys.executable).parent),
        "env": profile.env,
        "key_file": str(profile.wandb_api_key_file),
        "launch": launch_lines(profile, target, runs_per_task, workdir),
        "rendered_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def render(context: dict[str, Any]) -> str:
    """The sbatch script; an undefined template value is an error (StrictUndefined)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["q"] = lambda value: shlex.quote(str(value))
    env.filters["dq"] = job_time_quote
    try:
        return env.get_template(TEMPLATE).render(**context)
    except jinja2.UndefinedError as err:
        raise UserError(
            f"jobs/slurm/{TEMPLATE}: {err}; the template uses a value submit does not set"
        ) from None


# ----- provenance -----------------------------------------------------------------------------
def git_revision(workdir: Path) -> str:
    """HEAD of the checkout the job runs in, with -dirty when it has uncommitted changes."""
    return versions.git_revision(workdir) or "unknown"


def image_sha256(image: Path) -> str:
    """sha256 of the image file, cached per (path, size, mtime) since images are gigabytes."""
    stat = image.stat()
    key = f"{image.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    cache = (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        / "sweepkit"
        / "image-digests.json"
    )
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if isinstance(known, dict) and isinstance(known.get(key), str):
        return str(known[key])
    value = f"sha256:{file_digest(image, 'sha256')}"
    try:
        known = known if isinstance(known, dict) else {}
        known[key] = value
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1))
        os.replace(tmp, cache)
    except OSError:
        pass  # a cache we cannot write only costs time
    return value


def profile_image_digest(profile: Profile) -> str | None:
    """The profile's image digest, or None when the image is not here: the sha256 of a .sif
    file, or the digest Podman gives its image."""
    if profile.image is None:
        return None
    if profile.runtime == "podman":
        return podman_image_digest(str(profile.image))
    return image_sha256(profile.image) if profile.image.is_file() else None


def podman_image_digest(image: str) -> str | None:
    """The digest of a Podman image here (``podman image inspect``), or None when Podman or the
    image is missing. SWEEPKIT_PODMAN names another Podman command, as in the job script."""
    command = shlex.split(os.environ.get("SWEEPKIT_PODMAN") or "podman")
    try:
        out = subprocess.run(
            [*command, "image", "inspect", "--format", "{{.Digest}}", image],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    digest = out.stdout.strip()
    return digest if out.returncode == 0 and digest.startswith("sha256:") else None


def job_time_quote(value: str) -> str:
    """``value`` in double quotes: ``$VAR`` and ``${VAR}`` expand when the job runs, on the node
    (profiles refuse command substitution); ``\\$`` keeps a literal ``$``; any other backslash and
    every double quote stand for themselves."""
    escaped = re.sub(r"\\(?!\$)", r"\\\\", str(value)).replace('"', '\\"')
    return f'"{escaped}"'
