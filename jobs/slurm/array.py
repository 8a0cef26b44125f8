"""The ``--array`` of a submission: sized from the runs a sweep still has to make, or the user's
own spec checked and given the profile's ``%N`` concurrency limit.

Sizing from the sweep means no task starts an agent for an exhausted sweep. The cluster's
``MaxArraySize`` (``cluster_limits.py``) bounds both: ``auto`` needing more tasks than one array
may hold is split into several arrays of at most ``MaxArraySize - 1`` tasks each, which submit
chains (each later one waits for the one before: ``--dependency=afterany``), so that the ``%N``
limit still bounds the tasks running at once; above ``MAX_ARRAYS`` arrays it is refused in one
line that names the ``--runs-per-task`` that fits. A spec with an index above the limit is refused
in one line. A spec with more tasks than a local sweep has runs left is trimmed to them, with one
note.
"""

from __future__ import annotations

import heapq
import itertools
import math
import re
import sys
from collections.abc import Iterator

from sweepkit.jobs.slurm.cluster_limits import ArrayLimit
from sweepkit.jobs.slurm.profiles import Profile
from sweepkit.jobs.slurm.target import SweepTarget
from sweepkit.train.errors import UserError

_ARRAY = re.compile(r"^\d+(-\d+(:\d+)?)?(,\d+(-\d+(:\d+)?)?)*(%\d+)?$")


# The most arrays one submit chains: each is a job record of its own (SLURM's MaxJobCount is 10,000
# by default, for every user), and a sweep that needs more is better cut by --runs-per-task.
MAX_ARRAYS = 100


def array_specs(
    spec: str,
    profile: Profile,
    target: SweepTarget,
    runs_per_task: int,
    limit: ArrayLimit | None = None,
) -> list[str]:
    """The --array value of each array to submit, in order: auto-sized from the sweep (split
    within ``limit``, the cluster's MaxArraySize; None: unbounded), or the user's one spec with
    the profile's %N."""
    per_task = runs_per_task * profile.agents_per_task
    if spec != "auto":
        if not _ARRAY.match(spec):
            raise UserError(
                f"--array {spec!r} is not an sbatch array spec; write e.g. 1-12%2, 0-7:2 or "
                "1,3,5, or auto"
            )
        _check_array_ranges(spec)
        ids, _, percent = spec.partition("%")
        ids = _trim_to_runs_left(ids, target, per_task)
        _check_highest_index(ids, limit)
        return [f"{ids}%{percent or profile.concurrency}"]
    planned, remaining = remaining_runs(target)
    if planned is None or remaining is None:
        raise UserError(
            f"sweep {target.name} has no fixed size (method {_method(target)} without run_cap), "
            "so --array auto cannot size it; pass --array 1-N%C or set run_cap"
        )
    if remaining == 0:
        raise UserError(
            f"sweep {target.name} has no runs left ({planned} planned, all taken or done); see "
            "`sweepkit status`; nothing submitted"
        )
    if limit is not None and limit.highest_index < 1:
        raise UserError(
            f"this cluster's MaxArraySize is {limit.max_array_size} ({limit.source}): it takes no "
            "array jobs, and sweepkit submit submits one; ask its admins, or use --launcher local"
        )
    max_tasks = None if limit is None else limit.highest_index
    arrays = auto_arrays(
        remaining, runs_per_task, profile.agents_per_task, profile.concurrency, max_tasks
    )
    if limit is not None and len(arrays) > MAX_ARRAYS:
        raise _too_many_arrays(target, remaining, per_task, profile.agents_per_task, limit)
    return arrays


def auto_arrays(
    remaining: int,
    runs_per_task: int,
    agents_per_task: int,
    concurrency: int,
    max_tasks: int | None = None,
) -> list[str]:
    """One task per ``runs_per_task * agents_per_task`` remaining runs, in arrays of at most
    ``max_tasks`` tasks (ids 1..n), each with a ``%N`` limit never above its task count. Above
    ``MAX_ARRAYS`` arrays, only ``MAX_ARRAYS + 1`` are listed (the caller refuses them)."""
    tasks = math.ceil(remaining / (runs_per_task * agents_per_task))
    size = tasks if max_tasks is None else min(tasks, max_tasks)
    full, rest = divmod(tasks, size)
    sizes = [size] * min(full, MAX_ARRAYS + 1) + ([rest] if rest and full <= MAX_ARRAYS else [])
    return [f"1-{n}%{min(concurrency, n)}" for n in sizes]


def _too_many_arrays(
    target: SweepTarget, remaining: int, per_task: int, agents_per_task: int, limit: ArrayLimit
) -> UserError:
    most = limit.highest_index
    tasks = math.ceil(remaining / per_task)
    fits = math.ceil(remaining / (MAX_ARRAYS * most * agents_per_task))
    return UserError(
        f"sweep {target.name}: {remaining} runs left need {tasks} array tasks at "
        f"{per_task} run(s) a task, {math.ceil(tasks / most)} arrays under this cluster's "
        f"MaxArraySize {limit.max_array_size} ({limit.source}; at most {most} tasks an array), "
        f"above the {MAX_ARRAYS} one submit chains; pass --runs-per-task {fits} (or more), or "
        "--array 1-N%C for part of them; nothing submitted"
    )


def _parts(ids: str) -> list[range]:
    """``1-10:2,15`` -> [range(1, 11, 2), range(15, 16)], without listing the ids (a spec may
    name ten million)."""
    found = []
    for part in ids.split(","):
        first, _, rest = part.partition("-")
        last, _, step = rest.partition(":")
        found.append(range(int(first), int(last or first) + 1, int(step or 1)))
    return found


def _first_ids(parts: list[range], count: int) -> list[int]:
    """The first ``count`` distinct task ids of ``parts``, in order (as sbatch runs them)."""
    merged: Iterator[int] = heapq.merge(*parts)
    unique = (key for key, _ in itertools.groupby(merged))
    return list(itertools.islice(unique, count))


def _compact(ids: list[int]) -> str:
    """[1, 2, 3, 7] -> ``1-3,7``."""
    runs = []
    for _, group in itertools.groupby(enumerate(ids), key=lambda pair: pair[1] - pair[0]):
        block = [value for _, value in group]
        runs.append(f"{block[0]}-{block[-1]}" if len(block) > 1 else str(block[0]))
    return ",".join(runs)


def _trim_to_runs_left(ids: str, target: SweepTarget, per_task: int) -> str:
    """A local sweep's array cut to the tasks its runs left need, with one note."""
    if not target.sweep.is_local:
        return ids  # a W&B sweep's runs are counted over the network: auto does that
    _, remaining = remaining_runs(target)
    if not remaining:
        return ids  # unbounded, or nothing left: the user's array as given
    needed = math.ceil(remaining / per_task)
    first = _first_ids(_parts(ids), needed + 1)
    if len(first) <= needed:
        return ids
    trimmed = _compact(first[:needed])
    runs = "run" if remaining == 1 else "runs"
    print(
        f"note: --array {ids} has more tasks than sweep {target.name} needs ({remaining} "
        f"{runs} left, {per_task} a task): submitting {trimmed}",
        file=sys.stderr,
    )
    return trimmed


def _check_highest_index(ids: str, limit: ArrayLimit | None) -> None:
    highest = max(part[-1] for part in _parts(ids))
    if limit is not None and highest > limit.highest_index:
        raise UserError(
            f"--array {ids}: index {highest} is above this cluster's MaxArraySize "
            f"{limit.max_array_size} ({limit.source}; the highest index is "
            f"{limit.highest_index}); use indices up to {limit.highest_index}, or --array auto, "
            "which splits a larger sweep into arrays that run one after another"
        )


def _check_array_ranges(spec: str) -> None:
    """What sbatch would refuse only after the submission is recorded: an empty range (5-1), a
    zero step, a %0 limit. Read range by range: the ids are never listed."""
    ids, _, limit = spec.partition("%")
    for part in ids.split(","):
        first, _, rest = part.partition("-")
        last, _, step = rest.partition(":")
        if int(last or first) < int(first) or int(step or 1) < 1:
            raise UserError(
                f"--array {spec!r}: part {part!r} is empty; write ranges as FIRST-LAST with "
                "FIRST <= LAST and a step of 1 or more"
            )
    if limit and int(limit) == 0:
        raise UserError(f"--array {spec!r}: %0 would run no task at once; write e.g. %2")


def remaining_runs(target: SweepTarget) -> tuple[int | None, int | None]:
    """(planned, remaining): runs the sweep makes in all, and those not taken or done yet."""
    if target.sweep.is_local:
        from sweepkit.jobs.sweeps.store import open_sweep

        return open_sweep(target.sweep.folder).remaining()
    return _wandb_remaining(target.sweep.wandb_path)


def _wandb_remaining(path: str) -> tuple[int | None, int | None]:
    """Planned and remaining runs of a W&B sweep, from its config and runs (network)."""
    import wandb

    from sweepkit.jobs.sweeps.definition import planned_runs

    try:
        sweep = wandb.Api().sweep(path)
        config = sweep.config
        states = [run.state for run in sweep.runs]
    except Exception as err:  # the cloud's errors vary by version; report them as one line
        raise UserError(
            f"cannot read W&B sweep {path} ({type(err).__name__}: {err}); check the reference "
            "and `wandb login`, or pass --array 1-N%C"
        ) from None
    planned = planned_runs(config)
    if planned is None:
        return None, None
    # Preempted W&B runs are handed out again by the sweep server, so they still need a task.
    taken = sum(1 for state in states if state not in ("preempted", "preempting"))
    return planned, max(0, planned - taken)


def _method(target: SweepTarget) -> str:
    if not target.sweep.is_local:
        return "?"
    from sweepkit.jobs.sweeps.store import open_sweep

    return str(open_sweep(target.sweep.folder).definition.get("method"))
