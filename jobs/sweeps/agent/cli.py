"""``sweepkit agent [--count N] SWEEP``: run the next runs of a sweep, with or without W&B's server.

A W&B sweep reference (``entity/project/sweep_id``) is handed to ``wandb agent``, unchanged (exec);
a local sweep folder is run by :class:`sweepkit.jobs.sweeps.agent.local.LocalAgent`.
"""

from __future__ import annotations

import argparse
import os
import sys

from sweepkit.jobs.sweeps import store as store_mod
from sweepkit.jobs.sweeps.agent.local import LocalAgent
from sweepkit.jobs.sweeps.console import console_script
from sweepkit.jobs.sweeps.ref import parse
from sweepkit.train.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "sweep",
        metavar="SWEEP",
        help="local sweep folder (from sweepkit sweep create) or W&B entity/project/sweep_id",
    )
    parser.add_argument(
        "--count",
        type=int,
        default=None,
        metavar="N",
        help="run at most N runs, then exit (default: until the sweep is done)",
    )


def run(args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        raise UserError(f"--count {args.count}: must be a positive number of runs")
    ref = parse(args.sweep)
    if ref.is_local:
        return LocalAgent(store_mod.open_sweep(ref.text)).run(args.count)
    return _exec_wandb_agent(ref.wandb_path, args.count)


def _exec_wandb_agent(ref: str, count: int | None) -> int:
    wandb_cli = console_script("wandb")
    if wandb_cli is None:
        raise UserError(
            "the wandb command is not installed; pip install wandb, or use a local sweep folder"
        )
    argv = [wandb_cli, "agent", *(["--count", str(count)] if count else []), ref]
    sys.stdout.flush()
    os.execv(wandb_cli, argv)
    return 0  # not reached
