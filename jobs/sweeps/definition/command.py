"""A run's command line, built as ``wandb agent`` builds it, and the check of its macros.

Command lines are built here as W&B's own helpers build them (``create_sweep_command`` and
``create_sweep_command_args`` from ``wandb.sdk.launch.sweeps.utils``, ``Agent._command_run`` in
``wandb/wandb_agent.py``), without importing them: ``wandb.sdk.launch`` alone takes about 1.4 s to
import, more than a run's program takes to start. W&B's code stays the oracle:
``tests/conformance/test_command.py`` checks that the argv and the files are W&B's, byte for byte,
for commands and parameters Hypothesis makes. ``${args}`` and the other
macros expand exactly as under ``wandb agent``, ``${interpreter}`` included: it is ``python``,
found on the program's PATH (``sweep_vars["interpreter"] = ["python"]`` in ``wandb_agent.py``), so
the user's environment first on PATH is the one that runs the program. Whether that python can
run the kit's trainer is checked before the first run (``program_check.interpreter_problem``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
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
_ENVVAR = re.compile(r"\$\{envvar\:([A-Z0-9_]*)\}")  # W&B's SWEEP_COMMAND_ENV_VAR_REGEX


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


def command_chunks(definition: dict[str, Any], env: Mapping[str, str]) -> list[str]:
    """The command's items with ``${envvar:NAME}`` replaced by ``env``'s value (the name itself
    when unset), W&B's default command when there is none (``create_sweep_command``)."""
    command = [str(c) for c in definition.get("command") or DEFAULT_COMMAND]
    return [_ENVVAR.sub(lambda m: env.get(m.group(1), m.group(1)), chunk) for chunk in command]


def macro_values(params: dict[str, Any]) -> dict[str, list[str]]:
    """Each ``${args...}`` macro's expansion for ``params`` (``{name: {value: v}}``), as
    ``create_sweep_command_args`` makes them."""
    out: dict[str, list[str]] = {
        "args": [],
        "args_no_equals": [],
        "args_no_hyphens": [],
        "args_no_boolean_flags": [],
        "args_append_hydra": [],
        "args_override_hydra": [],
    }
    for name, holder in params.items():
        value = holder["value"]
        flag = f"{name}={value}"
        out["args"].append("--" + flag)
        out["args_no_hyphens"].append(flag)
        out["args_no_equals"] += [f"--{name}", str(value)]
        out["args_append_hydra"].append("+" + flag)
        out["args_override_hydra"].append("++" + flag)
        if not isinstance(value, bool):
            out["args_no_boolean_flags"].append("--" + flag)
        elif value:  # a false boolean flag is left out
            out["args_no_boolean_flags"].append("--" + name)
    out["args_json"] = [args_json(params)]
    return out


def build_command(
    definition: dict[str, Any],
    params: dict[str, Any],
    args_json_file: Path,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """The program's argv for one run, as wandb agent builds it (``params`` is
    ``{name: {value: v}}``); ``${envvar:NAME}`` from ``env`` (default: this process's)."""
    sweep_vars = macro_values(params)
    sweep_vars["interpreter"] = [INTERPRETER]
    sweep_vars["program"] = [str(definition["program"])] if definition.get("program") else []
    sweep_vars["args_json_file"] = [str(args_json_file)]
    sweep_vars["env"] = ["/usr/bin/env"]
    argv: list[str] = []
    for chunk in command_chunks(definition, os.environ if env is None else env):
        if chunk.startswith("${") and chunk.endswith("}"):
            argv += sweep_vars.get(chunk[2:-1]) or []
        else:
            argv.append(chunk)
    return argv


def args_json(params: dict[str, Any]) -> str:
    """What ``${args_json}`` and the ``${args_json_file}`` file hold: ``{name: value}`` as JSON."""
    return json.dumps({name: holder["value"] for name, holder in params.items()})


def parameter_file_text(params: dict[str, Any]) -> str:
    """The ``WANDB_SWEEP_PARAM_PATH`` file's text, as ``config_util.save_config_file_from_dict``
    writes it."""
    import yaml

    text = "wandb_version: 1"
    if params:  # W&B leaves out an empty mapping: wandb.init could not parse it
        dumped = yaml.dump(
            params,
            Dumper=yaml.SafeDumper,
            default_flow_style=False,
            allow_unicode=True,
            sort_keys=False,
        )
        text += "\n\n" + dumped
    return text
