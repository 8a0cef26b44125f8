"""``python -m sweepkit.jobs.slurm.launcher SCRIPT``: the local twin by hand, on a script that
``sweepkit submit`` rendered (the submission record of a local job names this command)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sweepkit.jobs.slurm.launcher.local import MODULE
from sweepkit.jobs.slurm.launcher.local_array import run_array
from sweepkit.train.errors import UserError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}",
        description="run an sbatch array script's tasks as local processes (SLURM's twin)",
    )
    parser.add_argument("script", type=Path, help="a script rendered by sweepkit submit")
    parser.add_argument("--job-id", default=str(int(time.time()) % 1_000_000_000))
    parser.add_argument("--array", help="override the script's --array (e.g. 1-4%%2)")
    args = parser.parse_args(argv)
    if not args.script.is_file():
        print(f"python -m {MODULE}: error: no script at {args.script}", file=sys.stderr)
        return 2
    try:
        return run_array(args.script, args.job_id, args.array)
    except UserError as err:
        print(f"python -m {MODULE}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
