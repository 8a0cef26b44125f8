"""The ``sweepkit`` console script.

Only the module of the verb being run is imported, so that ``sweepkit agent`` or
``sweepkit status`` start in well under a second (torch is imported only by the verbs that train).
Each verb module provides ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import importlib
import sys

from sweepkit.train.entry import run_command, trainer_missing
from sweepkit.train.errors import EXIT_USAGE

# verb -> (module, one-line help)
VERBS: dict[str, tuple[str, str]] = {
    "train": ("sweepkit.train.cli", "train one run (same as python -m sweepkit.train)"),
    "smoke": ("sweepkit.train.smoke", "one train and one eval step of ResNet-50 on synthetic data"),
    "data": (
        "sweepkit.train.staging",
        "stage CIFAR-10 or ImageNet weights on a machine with internet",
    ),
    "sweep": ("sweepkit.jobs.sweeps.create", "create a sweep (local store or W&B)"),
    "agent": ("sweepkit.jobs.sweeps.agent.cli", "run the next runs of a sweep"),
    "submit": ("sweepkit.jobs.slurm.submit", "render the sbatch array for a sweep and submit it"),
    "status": ("sweepkit.jobs.sweeps.status", "table of a sweep's runs"),
    "report": ("sweepkit.jobs.report.command", "self-contained HTML report of a sweep"),
    "sync": ("sweepkit.jobs.sweeps.sync", "upload a local sweep's offline runs to W&B"),
}


def _usage() -> str:
    width = max(len(v) for v in VERBS)
    lines = [
        "usage: sweepkit VERB [options]   (sweepkit VERB --help for each)",
        "       sweepkit --version       (the kit, its revision, torch, CUDA, wandb, the image)",
        "",
        "verbs:",
    ]
    lines += [f"  {verb:<{width}}  {help_}" for verb, (_, help_) in VERBS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else EXIT_USAGE
    if argv[0] == "--version":
        from sweepkit.train.versions import format_versions, versions

        print(format_versions(versions()))
        return 0
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        print(
            f"sweepkit: unknown verb {verb!r}; choose one of: {', '.join(VERBS)}", file=sys.stderr
        )
        return EXIT_USAGE
    try:
        module = importlib.import_module(VERBS[verb][0])
    except ModuleNotFoundError as err:  # a verb whose module imports torch at the top
        return trainer_missing(f"sweepkit {verb}", err)
    return run_command(module, f"sweepkit {verb}", VERBS[verb][1], rest)


if __name__ == "__main__":
    sys.exit(main())
