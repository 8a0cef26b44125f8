"""``sweepkit submit SWEEP --profile NAME``: render the sbatch array for a sweep and submit it.

The script is ``jobs/slurm/sweep_array.sbatch`` rendered with Jinja2 in strict mode (an undefined value
is an error, never an empty string) from a cluster profile (``jobs/slurm/profiles/``) and the sweep.
``--array auto`` sizes the array to the runs the sweep still has to make (``jobs/slurm/array.py``);
a sweep that needs more tasks than the cluster's ``MaxArraySize`` allows one array is submitted as
several arrays, each waiting for the one before (``--dependency=afterany``).
The rendered copy is kept beside the sweep, with one line per submission in
``SWEEP/slurm/submissions.jsonl`` (``jobs/slurm/submission_log.py``).

``--launcher`` picks who runs the script (``jobs/slurm/launcher/``): ``slurm`` hands it to sbatch,
``local`` runs the same rendered script's array tasks here as processes, with the concurrency and
the SLURM variables a task would see. Both go through the same steps here.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from sweepkit.jobs.slurm.array import array_specs
from sweepkit.jobs.slurm.cluster_limits import ArrayLimit, read_array_limit
from sweepkit.jobs.slurm.launcher import LAUNCHERS, Job, Launcher, launcher_for
from sweepkit.jobs.slurm.launcher.directives import most_at_once
from sweepkit.jobs.slurm.launcher.sbatch import dependency_option
from sweepkit.jobs.slurm.profiles import Profile, load_profile
from sweepkit.jobs.slurm.script import git_revision, profile_image_digest, render, render_context
from sweepkit.jobs.slurm.submission_log import record, share_with_lab
from sweepkit.jobs.slurm.target import SweepTarget, resolve_sweep
from sweepkit.train.errors import UserError
from sweepkit.train.write_errors import as_user_error


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
        choices=tuple(LAUNCHERS),
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
    launcher = launcher_for(args.launcher)  # picked once: every step below goes through it
    profile, target, contexts = prepare(args)
    scripts = [render(context) for context in contexts]
    if args.dry_run:
        print_dry_run(scripts, profile, target, contexts)
        return 0
    jobs = queue_chain(launcher, scripts, target, contexts)
    if len(jobs) == 1:
        return launcher.follow(jobs[0], contexts[0])
    return launcher.follow_chain(jobs, contexts)


def prepare(args: argparse.Namespace) -> tuple[Profile, SweepTarget, list[dict[str, Any]]]:
    """The profile, the sweep and the template's values of each array to submit (one, or several
    under the cluster's MaxArraySize), each checked before anything is written, in the order a
    user fixes them: profile, sweep, runs per task, array, image, key."""
    profile = load_profile(args.profile, args.cluster_config)
    target = resolve_sweep(args.sweep)
    if not target.sweep.is_local:
        check_online(profile)
    runs_per_task = profile.runs_per_task if args.runs_per_task is None else args.runs_per_task
    if runs_per_task < 1:
        raise UserError(f"--runs-per-task {runs_per_task}: use 1 or more")
    if target.sweep.is_local:
        warn_shape(profile, target)
    limit = array_limit(args.launcher)
    arrays = array_specs(args.array, profile, target, runs_per_task, limit)
    workdir = Path.cwd()
    log_dir = workdir / (profile.log_dir or target.record_dir / "logs")  # absolute either way
    image_digest = profile_image_digest(profile)
    if profile.image is not None and image_digest is None and not args.dry_run:
        raise missing_image(profile)
    if not target.sweep.is_local and not args.dry_run:
        check_key_file(profile)
    context = render_context(
        profile=profile,
        target=target,
        array=arrays[0],
        runs_per_task=runs_per_task,
        workdir=workdir,
        log_dir=log_dir,
        job_name=profile.job_name or f"sweepkit-{target.sweep_id}",
        image_digest=image_digest,
        git_revision=git_revision(workdir),
    )
    # "after": the job id of the array this one waits for, known once that one is queued
    context.update(array_limit=limit, after=None)
    return profile, target, [{**context, "array": spec} for spec in arrays]


def queue_chain(
    launcher: Launcher, scripts: list[str], target: SweepTarget, contexts: list[dict[str, Any]]
) -> list[Job]:
    """Queue the arrays in order, each after the one before; when a later one fails, say which
    are queued already (they run)."""
    jobs: list[Job] = []
    for script, context in zip(scripts, contexts, strict=True):
        context["after"] = jobs[-1].job_id if jobs else None
        try:
            jobs.append(queue(launcher, script, target, context))
        except UserError as err:
            if not jobs:
                raise
            ids = " ".join(job.job_id for job in jobs)
            raise UserError(
                f"{err}; array {len(jobs) + 1} of {len(contexts)} was not submitted, but job(s) "
                f"{ids} are queued and recorded: let them run and submit again for the runs they "
                f"leave, or scancel {ids}"
            ) from None
    return jobs


def queue(launcher: Launcher, script: str, target: SweepTarget, context: dict[str, Any]) -> Job:
    """Make the record and log folders, hand the script to the launcher, record the submission.
    Whatever fails before the job is out of reach leaves no folder or script behind."""
    log_dir = Path(context["log_dir"])
    made = [d for d in (target.record_dir, log_dir) if not d.exists()]
    try:
        target.record_dir.mkdir(parents=True, exist_ok=True)
        log_dir.mkdir(parents=True, exist_ok=True)  # sbatch does not create it; the job would die
        share_with_lab(target, made)
        job = launcher.submit(script, target.record_dir, context)
    except (UserError, OSError) as err:
        raise _nothing_submitted(err, made, target) from None
    try:
        record(target, job, context, launcher.name)
    except OSError as err:
        where = launcher.unrecorded(job)
        if where is None:  # taken back
            raise _nothing_submitted(err, made, target) from None
        raise as_user_error(
            err, target.record_dir / "submissions.jsonl", "free space there", then=where
        ) from None
    return job


def _nothing_submitted(err: Exception, made: list[Path], target: SweepTarget) -> Exception:
    """The error to show when nothing was queued, after the folders made for it are removed."""
    _remove_new(made)
    if isinstance(err, OSError):
        return as_user_error(
            err,
            err.filename or target.record_dir,
            "free space there",
            then="nothing was submitted",
        )
    return err


def _remove_new(made: list[Path]) -> None:
    """Nothing was queued: leave no empty folders behind for it (deepest first)."""
    for folder in sorted(made, key=lambda d: len(d.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty: something else lives there now
            folder.rmdir()


def print_dry_run(
    scripts: list[str], profile: Profile, target: SweepTarget, contexts: list[dict[str, Any]]
) -> None:
    """The first array's script and the sbatch command of every array (the others' scripts
    differ from the first only in their #SBATCH --array line)."""
    print(scripts[0], end="")
    kept = target.record_dir / "JOBID.sbatch"
    if len(scripts) == 1:
        print(f"# sbatch command: sbatch --parsable SCRIPT  (SCRIPT kept as {kept})")
    else:
        limit = contexts[0]["array_limit"]
        at_once = most_at_once([context["array"] for context in contexts])
        print(
            f"# {len(scripts)} arrays: this cluster's MaxArraySize {limit.max_array_size} "
            f"({limit.source}) allows at most {limit.highest_index} tasks an array; each waits for "
            f"the one before, so at most {at_once} tasks run at once. The script above is the "
            "first's; each differs only in its #SBATCH --array line."
        )
        for n, context in enumerate(contexts, start=1):
            after = f"{dependency_option(f'JOBID_{n - 1}')} " if n > 1 else ""
            print(
                f"# sbatch command {n}/{len(scripts)}: sbatch --parsable {after}SCRIPT_{n}  "
                f"(#SBATCH --array={context['array']}; JOBID_{n} from it)"
            )
        print(f"# (each SCRIPT_N kept as {kept})")
    if profile.image is not None and not contexts[0]["image_digest"]:
        print(f"# note: image {profile.image} not found here", file=sys.stderr)


# ----- checks before anything is written ---------------------------------------------------
def array_limit(launcher: str) -> ArrayLimit | None:
    """The cluster's MaxArraySize for sbatch; the local twin runs the tasks itself, unbounded."""
    return read_array_limit() if launcher == "slurm" else None


def check_online(profile: Profile) -> None:
    """A W&B sweep's server picks the next runs from their metrics: its runs must report."""
    mode = profile.env.get("WANDB_MODE", "").lower()
    if mode in ("offline", "disabled", "dryrun"):
        raise UserError(
            f"{profile.source}: profile {profile.name!r}, key 'env.WANDB_MODE': {mode} runs "
            "cannot report to a W&B sweep's server, which picks the next runs from their "
            "metrics; drop it from env for W&B sweeps (local sweeps run offline anyway)"
        )


def warn_shape(profile: Profile, target: SweepTarget) -> None:
    """Refuse a command that cannot use the profile's nodes; warn when it uses one GPU of many."""
    from sweepkit.jobs.slurm.shape import check_command_fits
    from sweepkit.jobs.sweeps.store import open_sweep

    definition = open_sweep(target.sweep.folder).definition
    warning = check_command_fits(profile, definition, f"{target.name}/sweep.yaml")
    if warning:
        print(warning, file=sys.stderr)


def missing_image(profile: Profile) -> UserError:
    missing = (
        f"no Podman image {profile.image} here (podman image inspect); build it "
        "(ci/build-image.sh --engine podman) or fix the name"
        if profile.runtime == "podman"
        else f"{profile.image} not found; build it (ci/build-image.sh) or fix the path"
    )
    return UserError(f"{profile.source}: profile {profile.name!r}, key 'image': {missing}")


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
