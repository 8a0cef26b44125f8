"""A run's command line, built as ``wandb agent`` builds it, and the check of its macros.

Command lines are built with W&B's own helpers (``create_sweep_command`` and
``create_sweep_command_args`` from ``wandb.sdk.launch.sweeps.utils``), so ``${args}`` and the other
macros expand exactly as under ``wandb agent``, ``${interpreter}`` included: it is ``python``,
found on the program's PATH (``sweep_vars["interpreter"] = ["python"]`` in ``wandb_agent.py``), so
the user's environment first on PATH is the one that runs the program. Whether that python can
run the kit's trainer is checked before the first run (``program_check.interpreter_problem``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sweepkit.train.errors import UserError

# Macros that wandb agent expands (wandb/wandb_agent.py and create_sweep_command_args).
COMMAND_MACROS = (
    "env",
    "interpreter",
    "program",
    "args",
    "args_no_equals",
    "args_no_hyphens",
    "args_no_boolean_flags",
    "args_json",
    "args_json_file",
    "args_append_hydra",
    "args_override_hydra",
)
DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]
INTERPRETER = "python"  # what ${interpreter} is under wandb agent: python from PATH

# Until the kit installed under one import name, its trainer ran as ``-m train``: a sweep folder made
# then names those modules in its sweep.yaml, and still runs, with today's names.
LEGACY_MODULES = {
    "train": "sweepkit.train",
    "train.launch": "sweepkit.train.launch",
    "jobs.cli": "sweepkit.jobs.cli",
}
_MACRO = re.compile(r"\$\{([^}]*)\}")


def check_command(definition: dict[str, Any], source: str, program: bool = True) -> None:
    command = definition.get("command", DEFAULT_COMMAND)
    uses_program = False
    for item in command:
        for macro in _MACRO.findall(str(item)):
            if macro.startswith("envvar:"):
                continue
            if macro not in COMMAND_MACROS:
                allowed = ", ".join("${" + m + "}" for m in COMMAND_MACROS) + ", ${envvar:NAME}"
                raise UserError(
                    f"{source}: command: unknown macro ${{{macro}}}; allowed: {allowed}"
                )
            uses_program = uses_program or macro == "program"
    if program and uses_program and not definition.get("program"):
        raise UserError(
            f"{source}: program: missing; the command uses ${{program}} (set program: or write command: without it)"
        )


def upgrade_legacy_command(definition: dict[str, Any]) -> str | None:
    """Map a command's ``-m train`` (``train.launch``, ``jobs.cli``) to the module's name under
    ``sweepkit``, in place; returns the one warning to show, or None when nothing was mapped."""
    command = definition.get("command")
    if not isinstance(command, list):
        return None
    items = [str(c) for c in command]
    mapped = [
        LEGACY_MODULES.get(item, item) if i and items[i - 1] == "-m" else command[i]
        for i, item in enumerate(items)
    ]
    if mapped == command:
        return None
    old = " ".join(items)
    definition["command"] = mapped
    return (
        f"warning: this sweep's command ({old}) names the kit's modules as before sweepkit 0.2; "
        f"running it as {' '.join(str(c) for c in mapped)}"
    )


def build_command(
    definition: dict[str, Any], params: dict[str, Any], args_json_file: Path
) -> list[str]:
    """The program's argv for one run, as wandb agent builds it (``params`` is ``{name: {value: v}}``)."""
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    command = sweep_utils.create_sweep_command(
        [str(c) for c in definition.get("command", DEFAULT_COMMAND)]
    )
    sweep_vars: dict[str, Any] = sweep_utils.create_sweep_command_args({"args": params})
    sweep_vars["interpreter"] = [INTERPRETER]
    sweep_vars["program"] = [str(definition["program"])] if definition.get("program") else []
    sweep_vars["args_json_file"] = [str(args_json_file)]
    sweep_vars["env"] = ["/usr/bin/env"]
    argv: list[str] = []
    for chunk in command:
        chunk = str(chunk)
        if chunk.startswith("${") and chunk.endswith("}"):
            argv += sweep_vars.get(chunk[2:-1]) or []
        else:
            argv.append(chunk)
    return argv


def args_json(params: dict[str, Any]) -> str:
    """What ``${args_json}`` and the ``${args_json_file}`` file hold: ``{name: value}`` as JSON."""
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    return str(sweep_utils.create_sweep_command_args({"args": params})["args_json"][0])
