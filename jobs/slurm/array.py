"""The ``--array`` of a submission: sized from the runs a sweep still has to make, or the user's
own spec checked and given the profile's ``%N`` concurrency limit.

Sizing from the sweep means no task starts an agent for an exhausted sweep. The cluster's
``MaxArraySize`` (``cluster_limits.py``) bounds both: ``auto`` is cut to the largest array the
cluster takes, with one note (the tasks take runs from the sweep, so the rest wait for another
submit, or a larger ``--runs-per-task``); a spec with an index above it is refused in one line. A
spec with more tasks than a local sweep has runs left is trimmed to them, with one note.
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


def array_spec(
    spec: str,
    profile: Profile,
    target: SweepTarget,
    runs_per_task: int,
    limit: ArrayLimit | None = None,
) -> str:
    """The --array value: auto-sized from the sweep, or the user's spec with the profile's %N;
    within ``limit`` (the cluster's MaxArraySize; None: unbounded)."""
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
        return f"{ids}%{percent or profile.concurrency}"
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
    tasks = math.ceil(remaining / per_task)
    if limit is not None and tasks > limit.highest_index:
        note = _capped_note(remaining, tasks, profile.agents_per_task, per_task, limit)
        print(note, file=sys.stderr)
    return auto_array(
        remaining,
        runs_per_task,
        profile.agents_per_task,
        profile.concurrency,
        None if limit is None else limit.highest_index,
    )


def auto_array(
    remaining: int,
    runs_per_task: int,
    agents_per_task: int,
    concurrency: int,
    max_tasks: int | None = None,
) -> str:
    """One task per ``runs_per_task * agents_per_task`` remaining runs, at most ``max_tasks``, and
    a ``%N`` limit never above the task count."""
    tasks = math.ceil(remaining / (runs_per_task * agents_per_task))
    if max_tasks is not None:
        tasks = min(tasks, max_tasks)
    return f"1-{tasks}%{min(concurrency, tasks)}"


def _capped_note(
    remaining: int, tasks: int, agents_per_task: int, per_task: int, limit: ArrayLimit
) -> str:
    most = limit.highest_index
    cover = math.ceil(remaining / (most * agents_per_task))
    return (
        f"note: {remaining} runs left need {tasks} array tasks, above this cluster's "
        f"MaxArraySize {limit.max_array_size} ({limit.source}; the highest index is {most}): "
        f"submitting 1-{most}, which takes {most * per_task} runs; submit again for the rest "
        f"(no run is taken twice), or pass --runs-per-task {cover} to cover them in one array"
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
            f"{limit.highest_index}); use --array auto, or indices up to {limit.highest_index}"
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
