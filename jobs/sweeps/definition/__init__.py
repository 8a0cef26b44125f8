"""W&B sweep definitions: what ``wandb sweep`` accepts, checked before anything runs.

``check`` loads and validates a definition (the ``sweeps`` package's schema, then what the engine
would only find mid-sweep), ``messages`` turns the schema's refusals into one line each,
``command`` builds a run's command line as ``wandb agent`` does, ``plan`` counts a sweep's runs,
``parameters`` flattens a run's values, ``engine`` imports the ``sweeps`` package quietly,
``checked`` remembers a sweep file's check (so that agents need not import the engine), and
``grid`` gives a grid's points by index in the engine's order.
"""

from sweepkit.jobs.sweeps.definition import checked
from sweepkit.jobs.sweeps.definition.check import load_definition, missing_goal_warning, validate
from sweepkit.jobs.sweeps.definition.command import (
    DEFAULT_COMMAND,
    args_json,
    build_command,
    upgrade_legacy_command,
)
from sweepkit.jobs.sweeps.definition.engine import quiet_sweeps_import
from sweepkit.jobs.sweeps.definition.run_count import planned_runs

__all__ = [
    "DEFAULT_COMMAND",
    "args_json",
    "build_command",
    "checked",
    "load_definition",
    "missing_goal_warning",
    "planned_runs",
    "quiet_sweeps_import",
    "upgrade_legacy_command",
    "validate",
]
