"""``sweepkit submit SWEEP --profile NAME``: render the sbatch array for a sweep and submit it.

The script is ``jobs/slurm/sweep_array.sbatch`` rendered with Jinja2 in strict mode (an undefined value
is an error, never an empty string) from a cluster profile (``jobs/slurm/profiles.py``) and the sweep.
``--array auto`` sizes the array to the runs the sweep still has to make, so no task starts an
agent for an exhausted sweep. The rendered copy is kept beside the sweep, with one line per
submission in ``SWEEP/slurm/submissions.jsonl`` (job id, profile, array, the exact sbatch
command, image digest, git revision): what a reviewer needs to see or rerun the job.

``--launcher local`` runs the same rendered script's array tasks as local processes
(``jobs/slurm/local.py``), with the concurrency and the SLURM variables a task would see.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jobs.slurm.profiles import CONTROL_CHARS, Profile, load_profile
from jobs.slurm.script import (
    SweepTarget,
    git_revision,
    job_environment,
    profile_image_digest,
    render,
    render_context,
)
from jobs.sweeps.program_check import check_files
from train.atomic import write_atomic
from train.errors import UserError
from train.staging import file_digest
from train.write_errors import as_user_error

SBATCH_TIMEOUT_S = 120
_ARRAY = re.compile(r"^\d+(-\d+(:\d+)?)?(,\d+(-\d+(:\d+)?)?)*(%\d+)?$")
_WANDB_REF = re.compile(r"^[\w.-]+/[\w.-]+/[A-Za-z0-9]+$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "sweep", help="a local sweep folder (sweeps/ID) or a W&B sweep entity/project/sweep_id"
    )
    parser.add_argument("--profile", required=True, help="profile name in the cluster config")
    parser.add_argument(
        "--array",
        default="auto",
        metavar="auto|SPEC",
        help="auto (default): one task per remaining run with the profile's concurrency; or an "
        "sbatch array spec such as 1-12%%2 (the profile's %%N is added when SPEC has none)",
    )
    parser.add_argument(
        "--runs-per-task",
        type=int,
        metavar="N",
        help="runs each task takes from the sweep (agent --count; default: the profile's, else 1)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the script and the sbatch command; submit and write nothing",
    )
    parser.add_argument(
        "--launcher",
        choices=("slurm", "local"),
        default="slurm",
        help="slurm (default): sbatch; local: run the same script's tasks here as processes",
    )
    parser.add_argument(
        "--cluster-config",
        type=Path,
        metavar="PATH",
        help="cluster profiles file (default $SWEEPKIT_CLUSTER_CONFIG or config/cluster.yaml)",
    )


def run(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile, args.cluster_config)
    target = resolve_sweep(args.sweep)
    if target.kind == "wandb":
        mode = profile.env.get("WANDB_MODE", "").lower()
        if mode in ("offline", "disabled", "dryrun"):
            raise UserError(
                f"{profile.source}: profile {profile.name!r}, key 'env.WANDB_MODE': {mode} runs "
                "cannot report to a W&B sweep's server, which picks the next runs from their "
                "metrics; drop it from env for W&B sweeps (local sweeps run offline anyway)"
            )
    runs_per_task = profile.runs_per_task if args.runs_per_task is None else args.runs_per_task
    if runs_per_task < 1:
        raise UserError(f"--runs-per-task {runs_per_task}: use 1 or more")
    if target.kind == "local":
        from jobs.slurm.shape import check_command_fits
        from jobs.sweeps.store import open_sweep

        warning = check_command_fits(
            profile, open_sweep(target.ref).definition, f"{target.ref}/sweep.yaml"
        )
        if warning:
            print(warning, file=sys.stderr)
    array = array_spec(args.array, profile, target, runs_per_task)
    workdir = Path.cwd()
    log_dir = workdir / (profile.log_dir or target.record_dir / "logs")  # absolute either way
    job_name = profile.job_name or f"sweepkit-{target.sweep_id}"
    image_digest = profile_image_digest(profile)
    if profile.image is not None and image_digest is None and not args.dry_run:
        missing = (
            f"no Podman image {profile.image} here (podman image inspect); build it "
            "(ci/build-image.sh --engine podman) or fix the name"
            if profile.runtime == "podman"
            else f"{profile.image} not found; build it (ci/build-image.sh) or fix the path"
        )
        raise UserError(f"{profile.source}: profile {profile.name!r}, key 'image': {missing}")
    if target.kind == "wandb" and not args.dry_run:
        check_key_file(profile)

    context = render_context(
        profile=profile,
        target=target,
        array=array,
        runs_per_task=runs_per_task,
        workdir=workdir,
        log_dir=log_dir,
        job_name=job_name,
        image_digest=image_digest,
        git_revision=git_revision(workdir),
    )
    script = render(context)

    if args.dry_run:
        print(script, end="")
        kept = target.record_dir / "JOBID.sbatch"
        print(f"# sbatch command: sbatch --parsable SCRIPT  (SCRIPT kept as {kept})")
        if profile.image is not None and image_digest is None:
            print(f"# note: image {profile.image} not found here", file=sys.stderr)
        return 0

    made = [d for d in (target.record_dir, log_dir) if not d.exists()]
    try:
        target.record_dir.mkdir(parents=True, exist_ok=True)
        log_dir.mkdir(parents=True, exist_ok=True)  # sbatch does not create it; the job would die
        _share_with_lab(target, made)
        if args.launcher == "local":
            job_id, path = prepare_local(script, context, target, profile)
        else:
            job_id, command = submit_slurm(script, target, profile)
    except (UserError, OSError) as err:  # nothing was queued: leave no empty folders behind for it
        for folder in sorted(made, key=lambda d: len(d.parts), reverse=True):
            with contextlib.suppress(OSError):  # not empty: something else lives there now
                folder.rmdir()
        if isinstance(err, OSError):
            raise as_user_error(
                err,
                err.filename or target.record_dir,
                "free space there, or fix the mount; nothing was submitted",
            ) from None
        raise
    if args.launcher == "local":
        return run_local(path, job_id, context, target, profile)
    try:
        record(target, job_id, profile, context, command, "slurm")
    except OSError as err:
        raise as_user_error(
            err,
            target.record_dir / "submissions.jsonl",
            f"job {job_id} is queued (squeue -j {job_id}) but not recorded; free space there",
        ) from None
    print_watch_hint(job_id, target, profile, context)
    return 0


# ----- sweep and array ------------------------------------------------------------------------
def resolve_sweep(ref: str) -> SweepTarget:
    """A folder that exists is a local sweep (opened to check it); else entity/project/id."""
    if CONTROL_CHARS.search(ref):
        raise UserError(f"sweep reference {ref!r} holds a control character")
    path = Path(ref)
    if path.is_dir():
        from jobs.sweeps.store import open_sweep

        sweep = open_sweep(path)
        folder = path.resolve()
        # the job starts in this folder (--chdir): the command's files must be there
        check_files(sweep.definition, str(folder / "sweep.yaml"), Path.cwd())
        return SweepTarget("local", str(folder), sweep.sweep_id, folder / "slurm")
    if _WANDB_REF.match(ref):
        entity, project, sweep_id = ref.split("/")
        record_dir = Path("sweeps") / "wandb" / entity / project / sweep_id / "slurm"
        return SweepTarget("wandb", ref, sweep_id, record_dir.resolve())
    raise UserError(
        f"sweep {ref!r} is neither a sweep folder nor a W&B sweep entity/project/sweep_id; "
        "pass the folder that `sweepkit sweep create` printed"
    )


def remaining_runs(target: SweepTarget) -> tuple[int | None, int | None]:
    """(planned, remaining): runs the sweep makes in all, and those not taken or done yet."""
    if target.kind == "local":
        from jobs.sweeps.store import open_sweep

        return open_sweep(target.ref).remaining()
    return _wandb_remaining(target.ref)


def _wandb_remaining(ref: str) -> tuple[int | None, int | None]:
    """Planned and remaining runs of a W&B sweep, from its config and runs (network)."""
    import wandb

    from jobs.sweeps.definition import planned_runs

    try:
        sweep = wandb.Api().sweep(ref)
        config = sweep.config
        states = [run.state for run in sweep.runs]
    except Exception as err:  # the cloud's errors vary by version; report them as one line
        raise UserError(
            f"cannot read W&B sweep {ref} ({type(err).__name__}: {err}); check the reference "
            "and `wandb login`, or pass --array 1-N%C"
        ) from None
    planned = planned_runs(config)
    if planned is None:
        return None, None
    # Preempted W&B runs are handed out again by the sweep server, so they still need a task.
    taken = sum(1 for state in states if state not in ("preempted", "preempting"))
    return planned, max(0, planned - taken)


def array_spec(spec: str, profile: Profile, target: SweepTarget, runs_per_task: int) -> str:
    """The --array value: auto-sized from the sweep, or the user's spec with the profile's %N."""
    if spec != "auto":
        if not _ARRAY.match(spec):
            raise UserError(
                f"--array {spec!r} is not an sbatch array spec; write e.g. 1-12%2, 0-7:2 or "
                "1,3,5, or auto"
            )
        _check_array_ranges(spec)
        return spec if "%" in spec else f"{spec}%{profile.concurrency}"
    planned, remaining = remaining_runs(target)
    if planned is None or remaining is None:
        raise UserError(
            f"sweep {target.ref} has no fixed size (method {_method(target)} without run_cap), "
            "so --array auto cannot size it; pass --array 1-N%C or set run_cap"
        )
    if remaining == 0:
        raise UserError(
            f"sweep {target.ref} has no runs left ({planned} planned, all taken or done); see "
            "`sweepkit status`; nothing submitted"
        )
    tasks = math.ceil(remaining / (runs_per_task * profile.agents_per_task))
    return f"1-{tasks}%{min(profile.concurrency, tasks)}"


def _check_array_ranges(spec: str) -> None:
    """What sbatch would refuse only after the submission is recorded: an empty range (5-1), a
    zero step, a %0 limit."""
    from jobs.slurm.local import expand_array

    try:
        ids, limit = expand_array(spec)
    except UserError as err:
        raise UserError(
            f"--array {spec!r}: {err}; write ranges as FIRST-LAST with FIRST <= LAST"
        ) from None
    if limit == 0:
        raise UserError(f"--array {spec!r}: %0 would run no task at once; write e.g. %2")


def _method(target: SweepTarget) -> str:
    if target.kind != "local":
        return "?"
    from jobs.sweeps.store import open_sweep

    return str(open_sweep(target.ref).definition.get("method"))


def check_key_file(profile: Profile) -> None:
    """A W&B sweep needs the API key file, readable by its owner only (the job checks again)."""
    path = profile.wandb_api_key_file
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        raise UserError(
            f"{profile.source}: profile {profile.name!r}, key 'wandb_api_key_file': {path} not "
            f"found; create it with: (umask 077; printf %s YOUR_KEY > {path})"
        ) from None
    if mode & 0o077:
        raise UserError(
            f"{path} (profile {profile.name!r}, key 'wandb_api_key_file') has mode {mode:o}, "
            f"readable by others; run: chmod 600 {path}"
        )


# ----- submission -----------------------------------------------------------------------------
def submit_slurm(script: str, target: SweepTarget, profile: Profile) -> tuple[str, list[str]]:
    """sbatch --parsable the script; keep it as SWEEP/slurm/<job id>.sbatch. Returns (id, argv).

    The copy is written first (so a full disk fails before anything is queued) and the script
    goes to sbatch on stdin: SLURM keeps its own copy for requeues, and no job records a path
    that is renamed once the job id is known.
    """
    if shutil.which("sbatch") is None:
        raise UserError(
            "sbatch not found: run sweepkit submit on a SLURM login node, or use --launcher local"
        )
    fd, tmp_name = tempfile.mkstemp(prefix=".submit-", suffix=".sbatch", dir=target.record_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(script)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(0o644)
        try:
            result = subprocess.run(
                ["sbatch", "--parsable"],
                input=script,
                env=job_environment(),
                capture_output=True,
                text=True,
                timeout=SBATCH_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise UserError(
                f"sbatch gave no answer in {SBATCH_TIMEOUT_S} s (profile {profile.name!r}); "
                "the job may still have been queued: check `squeue --me` before submitting again"
            ) from None
        if result.returncode != 0:
            message = (result.stderr or result.stdout).strip() or f"exit {result.returncode}"
            raise UserError(
                f"sbatch rejected the job of profile {profile.name!r} ({profile.source}): {message}"
            )
        # --parsable prints "jobid" or "jobid;cluster".
        job_id = result.stdout.strip().split(";")[0]
        if not job_id.isdigit():
            raise UserError(f"sbatch printed {result.stdout.strip()!r}, not a job id; check sbatch")
        final = target.record_dir / f"{job_id}.sbatch"
        os.replace(tmp, final)
        return job_id, ["sbatch", "--parsable", str(final)]
    finally:
        tmp.unlink(missing_ok=True)


def _lab_gid(target: SweepTarget) -> int | None:
    from jobs.sweeps.lab_group import sweep_group

    return sweep_group(Path(target.ref)) if target.kind == "local" else None


def _share_with_lab(target: SweepTarget, made: list[Path]) -> None:
    """In a lab-shared sweep, the slurm/ folders this submit made are the group's too, so that
    every member's submit records there (jobs/sweeps/lab_group.py)."""
    from jobs.sweeps.lab_group import share_folder

    gid = _lab_gid(target)
    if gid is not None:
        for folder in made:
            share_folder(folder, gid)


def prepare_local(
    script: str, context: dict[str, Any], target: SweepTarget, profile: Profile
) -> tuple[str, Path]:
    """Keep the script as SWEEP/slurm/<job id>.sbatch and record the submission (taking the
    script back if the record cannot be written); returns (job id, script path)."""
    job_id = local_job_id(target.record_dir)
    path = target.record_dir / f"{job_id}.sbatch"
    write_atomic(path, script.encode(), 0o644)
    command = [sys.executable, "-m", "jobs.slurm.local", str(path), "--job-id", job_id]
    try:
        record(target, job_id, profile, context, command, "local")
    except OSError:
        path.unlink(missing_ok=True)
        raise
    return job_id, path


def run_local(
    path: Path, job_id: str, context: dict[str, Any], target: SweepTarget, profile: Profile
) -> int:
    """Run the array here: jobs.slurm.local with the same script, concurrency and SLURM env."""
    from jobs.slurm.local import run_array

    print(
        f"Running array {job_id} (tasks {context['array']}) of sweep {target.ref} here with "
        f"profile {profile.name!r}; logs in {context['log_dir']}",
        flush=True,
    )
    return run_array(path, job_id=job_id)


def local_job_id(record_dir: Path) -> str:
    """A numeric id like SLURM's, unique in this sweep's records (the local twin's job id)."""
    job = int(time.time()) % 1_000_000_000
    while (record_dir / f"{job}.sbatch").exists():
        job += 1
    return str(job)


def record(
    target: SweepTarget,
    job_id: str,
    profile: Profile,
    context: dict[str, Any],
    command: list[str],
    launcher: str,
) -> None:
    """Append one line to SWEEP/slurm/submissions.jsonl in a single write."""
    entry = {
        "job_id": job_id,
        "profile": profile.name,
        "array": context["array"],
        "script": f"slurm/{job_id}.sbatch",
        "sbatch_command": command,
        "submitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "image": context["image"] or None,
        "image_digest": context["image_digest"] or None,
        "git_revision": context["git_revision"],
        # The hash-locked requirements the image was built from (its sweepkit.requirements.sha256
        # label); the report shows it as recorded at submission.
        "lock_sha256": requirements_lock_sha256(),
        "launcher": launcher,
        "runs_per_task": context["runs_per_task"],
        "log": context["log_path"],
        "host": socket.gethostname(),
    }
    line = (json.dumps(entry) + "\n").encode()
    fd_path = str(target.record_dir / "submissions.jsonl")
    fd = os.open(fd_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size == 0 and os.fstat(fd).st_uid == os.geteuid() and _lab_gid(target) is not None:
            os.fchmod(fd, 0o664)  # made now, by us: every lab member appends to it
        try:
            if os.write(fd, line) < len(line):  # a full disk: what fits, and no error yet
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), fd_path)
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)  # no torn line left in the record
            raise
    finally:
        os.close(fd)


def requirements_lock_sha256() -> str | None:
    lock = Path(__file__).resolve().parents[2] / "containers" / "requirements.lock"
    return file_digest(lock, "sha256") if lock.is_file() else None


def print_watch_hint(
    job_id: str, target: SweepTarget, profile: Profile, context: dict[str, Any]
) -> None:
    log = context["log_path"].replace("%x", context["job_name"]).replace("%A", job_id)
    log = log.replace("%a", "*").replace("%j", "*")
    print(
        f"Submitted array job {job_id} (tasks {context['array']}, {context['runs_per_task']} "
        f"run(s) each) for sweep {target.ref} with profile {profile.name!r}.\n"
        f"  script: {target.record_dir / (job_id + '.sbatch')}\n"
        f"  logs:   {log}\n"
        f"  watch:  squeue -j {job_id}    sweepkit status {shlex.quote(target.ref)}\n"
        f"  cancel: scancel {job_id}"
    )
