"""``sweepkit sweep create SWEEP_YAML``: validate a W&B sweep definition and create the sweep.

``--backend local`` (the default) makes a sweep folder under ``--root`` (default ``sweeps/``) on the
shared filesystem and prints its path, the reference every other verb takes. ``--backend wandb``
creates the sweep in W&B's cloud, as ``wandb sweep`` does, and prints ``entity/project/sweep_id``.
Only the reference goes to stdout (``SWEEP=$(sweepkit sweep create ...)``); the rest to stderr.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps import program_check, store
from sweepkit.jobs.sweeps.definition import load_definition, missing_goal_warning
from sweepkit.train.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser(
        "create", help="validate a sweep definition and create the sweep", description=__doc__
    )
    create.add_argument(
        "definition",
        metavar="SWEEP_YAML",
        help="W&B sweep definition, e.g. config/sweep_config.yaml",
    )
    create.add_argument(
        "--backend",
        choices=("local", "wandb"),
        default="local",
        help="local: a sweep folder, no server (default); wandb: W&B's cloud",
    )
    create.add_argument(
        "--root",
        default=store.DEFAULT_ROOT,
        metavar="DIR",
        help="where local sweep folders go (default: sweeps/); put it on the shared filesystem",
    )
    create.add_argument(
        "--project", help="W&B project (wandb backend; for local sweeps recorded for sweepkit sync)"
    )
    create.add_argument(
        "--entity", help="W&B entity (wandb backend; for local sweeps recorded for sweepkit sync)"
    )
    create.add_argument(
        "--lease",
        type=float,
        default=store.DEFAULT_LEASE_S,
        metavar="SECONDS",
        help=f"local: a run whose agent sends no heartbeat for this long is ended by other agents, as its own records say, else crashed and handed out again (default {store.DEFAULT_LEASE_S:g})",
    )
    create.add_argument(
        "--group",
        metavar="NAME",
        help="local: share the sweep with this Unix group (a lab): group-owned, setgid, "
        "group-writable, so that every member can run its agents (default: yours alone)",
    )
    create.add_argument(
        "--max-retries",
        type=int,
        default=store.DEFAULT_MAX_RETRIES,
        metavar="N",
        help=f"local: times a crashed run is handed out again (default {store.DEFAULT_MAX_RETRIES})",
    )


# Above this many points a grid is more than ten arrays at SLURM's default MaxArraySize (1001),
# and, at a minute a run, a week of one GPU: most often values listed by mistake (a range written
# as values, one parameter too many), rarely meant.
LARGE_GRID = 10_000


def large_grid_warning(planned: int, source: str) -> str:
    return (
        f"warning: {source}: the grid has {planned:,} points, above {LARGE_GRID:,} (more than ten "
        "SLURM arrays at its default MaxArraySize of 1001); check the values, or sample it: "
        "method: random with run_cap"
    )


def run(args: argparse.Namespace) -> int:
    definition = load_definition(args.definition, backend=args.backend)
    for warning in program_check.check_definition(definition, str(args.definition), Path.cwd()):
        print(warning, file=sys.stderr)
    goal_warning = missing_goal_warning(definition, str(args.definition))
    if goal_warning:
        print(goal_warning, file=sys.stderr)
    if args.backend == "wandb":
        print(_create_wandb(definition, args.entity, args.project))
        return 0
    if args.lease <= 0:
        raise UserError(f"--lease {args.lease:g}: must be a positive number of seconds")
    if args.max_retries < 0:
        raise UserError(f"--max-retries {args.max_retries}: must be 0 or more")
    project = args.project or definition.get("project")
    entity = args.entity or definition.get("entity")
    sweep = store.create_sweep(
        definition,
        Path(args.root),
        source=str(args.definition),
        lease_s=args.lease,
        max_retries=args.max_retries,
        extra={"project": project, "entity": entity},
        group=args.group,
    )
    if definition["method"] == "bayes":  # the first agents claim it without the engine
        sweep.put_ahead(by="sweep create", load=True)
    planned = sweep.planned_runs()
    size = (
        plural(planned, "run")
        if planned is not None
        else "no run_cap: runs until you stop the agents"
    )
    print(sweep.path, flush=True)
    if definition["method"] == "grid" and planned is not None and planned > LARGE_GRID:
        print(large_grid_warning(planned, str(args.definition)), file=sys.stderr)
    print(
        f"created local sweep {sweep.sweep_id} ({definition['method']}, {size}) in {sweep.path}",
        file=sys.stderr,
    )
    print(next_steps(sweep.path), file=sys.stderr)
    return 0


def plural(n: int, noun: str) -> str:
    """``1 run``, ``2 runs``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def next_steps(path: Path) -> str:
    """What to run next: an agent here, or an array job on SLURM. ``submit`` needs a profile
    (the README's step 2), so its hint names the options it cannot run without."""
    where = shlex.quote(str(path))
    return (
        f"next: sweepkit agent {where}    (or on SLURM: sweepkit submit {where} "
        "--profile NAME --cluster-config FILE, NAME a profile in FILE)"
    )


def _create_wandb(definition: dict[str, Any], entity: str | None, project: str | None) -> str:
    import wandb
    from wandb.errors import CommError, UsageError

    project = project or definition.get("project")
    entity = entity or definition.get("entity")
    if not project:
        raise UserError(
            "--project is required with --backend wandb (or set project: in the sweep definition)"
        )
    try:
        sweep_id = wandb.sweep(sweep=definition, entity=entity, project=project)
        if not entity:
            entity = wandb.Api().default_entity
    except (CommError, UsageError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"W&B could not create the sweep ({first}); check `wandb login` and the network, or use --backend local"
        ) from None
    return f"{entity}/{project}/{sweep_id}"
