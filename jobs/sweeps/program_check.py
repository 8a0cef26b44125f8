"""Checks of a sweep's program before any run starts.

A typo in a sweep definition's command (a preset path, ``-m trian``), a parameter that is not a
trainer key, a value the trainer refuses, or a metric the trainer never logs makes every run fail,
or finish without the metric the search learns from; found only at run time, it costs the whole
array. ``sweepkit sweep create`` checks all of it against the trainer when the command runs it
(``-m sweepkit.train``); ``sweepkit agent`` checks the command's files from its own working folder before it
claims a run (an agent started in the wrong folder would otherwise fail run after run); ``sweepkit
submit`` checks them from the folder the job will run in.

The trainer check runs the trainer's own argument parsing and config layering on the very argv the
agent would build (``build_command``): first with no values (a fault of the command
itself), then for each parameter's sample values with the other parameters at their first ones:
every listed value (nested ones too) and each distribution's median are refused when the trainer
refuses them; a distribution's tails, which only some draws reach, are warned about.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps.definition import DEFAULT_COMMAND, build_command, quiet_sweeps_import
from sweepkit.jobs.sweeps.definition.command import INTERPRETER
from sweepkit.jobs.sweeps.definition.parameters import flat_params
from sweepkit.jobs.sweeps.state import plain
from sweepkit.jobs.sweeps.vocabulary import EPOCH_METRICS, FINAL_METRICS
from sweepkit.train.config.shipped import is_name, preset_path
from sweepkit.train.errors import UserError

# What the trainer logs: per epoch (run.json "epochs", W&B history) and at the end (summary).
TRAINER_EPOCH_METRICS = EPOCH_METRICS
TRAINER_FINAL_METRICS = FINAL_METRICS
TAIL_QUANTILES = (0.001, 0.999)  # inside every distribution's support, unbounded ones included


def command_items(definition: dict[str, Any]) -> list[str]:
    return [str(c) for c in definition.get("command", DEFAULT_COMMAND)]


def trainer_args_at(items: list[str], program: str | None) -> int | None:
    """Where the trainer's own arguments start in a command (or its argv), if it runs the
    trainer: ``-m sweepkit.train``, ``-m sweepkit.jobs.cli train``, ``sweepkit train`` or program
    train/__main__.py."""
    for i, item in enumerate(items):
        if item == "-m" and items[i + 1 : i + 2] == ["sweepkit.train"]:
            return i + 2
        if item == "-m" and items[i + 1 : i + 3] == ["sweepkit.jobs.cli", "train"]:
            return i + 3
        if Path(item).name == "sweepkit" and items[i + 1 : i + 2] == ["train"]:
            return i + 2
        if (
            item in ("${program}", program)
            and program
            and Path(program).parts[-2:]
            == (
                "train",
                "__main__.py",
            )
        ):
            return i + 1
    return None


def runs_trainer(definition: dict[str, Any]) -> bool:
    return trainer_args_at(command_items(definition), definition.get("program")) is not None


def module_run(definition: dict[str, Any]) -> str | None:
    """The module the command runs with ``-m``, if any."""
    items = command_items(definition)
    for flag, name in zip(items, items[1:], strict=False):
        if flag == "-m":
            return name
    return None


_ENVVAR = re.compile(r"\$\{envvar:([^}]+)\}")


def _expanded(text: str) -> str | None:
    """``${envvar:NAME}`` replaced as W&B's agent does; None if a variable is not set here."""
    missing = [name for name in _ENVVAR.findall(text) if name not in os.environ]
    return None if missing else _ENVVAR.sub(lambda m: os.environ[m[1]], text)


def command_files(definition: dict[str, Any]) -> list[tuple[str, str]]:
    """(what, path) of the files the command needs: the program it names, and each ``--config``
    (``--config FILE`` or ``--config=FILE``); paths using an environment variable that is not set
    here are left out (the agents' environment decides them)."""
    items = command_items(definition)
    files = []
    if "${program}" in items and definition.get("program"):
        files.append(("program", str(definition["program"])))
    for flag, value in zip(items, items[1:], strict=False):
        if flag == "--config":
            files.append(("command --config", value))
    files += [("command --config", i.split("=", 1)[1]) for i in items if i.startswith("--config=")]
    out = []
    for what, name in files:
        path = _expanded(name)
        if path is not None and not path.startswith("${"):
            out.append((what, path))
    return out


def check_files(definition: dict[str, Any], source: str, folder: Path) -> None:
    """Each file the command names exists, seen from ``folder`` (where the program will start)."""
    for what, name in command_files(definition):
        if what == "command --config" and is_name(name):
            preset_path(name)  # one of the kit's presets, wherever the program starts
            continue
        path = Path(name) if Path(name).is_absolute() else folder / name
        if not path.is_file():
            raise UserError(
                f"{source}: {what} {name} not found from {folder}; the program starts in the "
                "folder the agent runs in: run it (or submit) from the folder these paths are "
                "relative to (the project checkout), or use absolute paths in the definition"
            )


def check_module(definition: dict[str, Any], folder: Path) -> str | None:
    """A warning when the ``-m`` module cannot be found here (it may exist only in the image).
    Only its top-level package is looked up: finding ``a.b`` would import (run) ``a``."""
    name = module_run(definition)
    if name is None:
        return None
    top = name.split(".")[0]
    sys.path.insert(0, str(folder))
    try:
        found = importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        found = False
    finally:
        sys.path.remove(str(folder))
    if found:
        return None
    return (
        f"warning: the command runs -m {name}, which is not importable here; every run will fail "
        "unless the image or environment the agents run in has it"
    )


def check_metric(definition: dict[str, Any], source: str) -> None:
    name = (definition.get("metric") or {}).get("name")
    if name is None:
        return
    logged = (*TRAINER_EPOCH_METRICS, *TRAINER_FINAL_METRICS)
    if name in logged:
        if "early_terminate" in definition and name not in TRAINER_EPOCH_METRICS:
            raise UserError(
                f"{source}: metric.name {name!r} is logged only when a run ends, but hyperband "
                f"(early_terminate) compares runs every epoch; use one of: "
                f"{', '.join(TRAINER_EPOCH_METRICS)}"
            )
        return
    close = difflib.get_close_matches(name, logged, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UserError(
        f"{source}: metric.name {name!r} is not a metric the trainer logs; {hint}it logs: "
        f"{', '.join(logged)}"
    )


def samples(spec: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """(values every run set must take, values only some draws take) for one parameter: every
    listed value; a distribution's median, and its tails (0.1% and 99.9%) as the second kind;
    nested parameters as dicts, each nested value varied with its siblings at their first."""
    if "parameters" in spec:
        subs = {k: samples(v) for k, v in spec["parameters"].items()}
        base = {k: musts[0] for k, (musts, _) in subs.items()}
        musts = [base] + [{**base, k: v} for k, (vs, _) in subs.items() for v in vs[1:]]
        tails = [{**base, k: v} for k, (_, ts) in subs.items() for v in ts]
        return musts, tails
    if "value" in spec:
        return [spec["value"]], []
    if "values" in spec:
        return list(spec["values"]), []
    from sweeps.params import HyperParameter

    param = HyperParameter("p", spec)
    with warnings.catch_warnings():  # scipy's, for degenerate distributions (sigma 0)
        warnings.simplefilter("ignore")
        median, *tails = (plain(param.ppf(q)) for q in (0.5, *TAIL_QUANTILES))
    return [median], [t for t in dict.fromkeys(tails) if t != median]


ARGS_MACROS = ("${args}",)  # what the trainer reads: --key=value


def check_parameters(definition: dict[str, Any], source: str) -> list[str]:
    """The trainer's own parsing and validation of the argv of runs with sample values; raises
    on what every run given a value would hit, returns warnings for values only some draws take."""
    from sweepkit.train.cli import add_arguments, parse_args
    from sweepkit.train.config import build_config

    quiet_sweeps_import()
    parser_args = _trainer_parser(add_arguments)
    items = command_items(definition)
    via_args = any(macro in items for macro in ARGS_MACROS)

    def refused(values: dict[str, Any]) -> UserError | None:
        params = {k: {"value": v} for k, v in values.items()}
        argv = build_command(definition, params, Path("config.json"))
        start = trainer_args_at(argv, definition.get("program"))
        try:
            args = parse_args(parser_args, argv[start:])
            # without ${args} the values reach the trainer only through wandb.config
            swept = None if via_args else flat_params(params)
            cfg = build_config(args.config, args.agent_overrides, args.set, wandb_config=swept)
        except UserError as err:
            return err
        if swept and cfg["wandb.mode"] == "disabled":
            return UserError(
                "the command passes no ${args} and wandb.mode is disabled, so the swept values "
                "would never reach the trainer; add ${args} to the command"
            )
        return None

    err = refused({})
    if err is not None:
        hint = "" if via_args else "; the trainer reads --key=value arguments: use ${args}"
        raise UserError(f"{source}: command: {err}{hint}")
    tries = {name: samples(spec) for name, spec in definition["parameters"].items()}
    base = {name: musts[0] for name, (musts, _) in tries.items()}
    if refused(base) is not None:
        # find the parameter to blame: the first refused on its own, else the combination
        for name, (musts, _) in tries.items():
            if (err := refused({name: musts[0]})) is not None:
                raise _refusal(source, name, musts[0], err)
        raise UserError(f"{source}: parameters: {refused(base)} (for the values {base})")
    warned = []
    for name, (musts, tails) in tries.items():
        for value in musts[1:]:
            if (err := refused({**base, name: value})) is not None:
                raise _refusal(source, name, value, err)
        for value in tails:
            if (err := refused({**base, name: value})) is not None:
                warned.append(
                    f"warning: {source}: parameters.{name}: some values its distribution draws "
                    f"are refused by the trainer, so those runs will fail (e.g. {err})"
                )
                break
    return warned


def _refusal(source: str, name: str, value: Any, err: UserError) -> UserError:
    return UserError(
        f"{source}: parameters.{name}: {err} (the trainer would refuse {name}={value!r} in "
        "every run given it)"
    )


def _trainer_parser(add_arguments: Any) -> Any:
    import argparse

    class Refuse(argparse.ArgumentParser):
        def error(self, message: str) -> Any:  # the trainer's usage errors, as one line
            raise UserError(f"the command's trainer arguments: {message}")

    parser = Refuse(prog="python -m sweepkit.train", allow_abbrev=False)
    add_arguments(parser)
    return parser


def check_definition(definition: dict[str, Any], source: str, folder: Path) -> list[str]:
    """Everything that can be checked before a run: raises ``UserError``; returns warnings."""
    check_files(definition, source, folder)
    warned = []
    if runs_trainer(definition):
        check_metric(definition, source)
        warned += check_parameters(definition, source)
    warning = check_module(definition, folder)
    # the agents' PATH decides their python; here a warning, in `sweepkit agent` an error
    problem = interpreter_problem(definition, source)
    return warned + ([warning] if warning else []) + ([f"warning: {problem}"] if problem else [])


def interpreter_problem(
    definition: dict[str, Any], source: str, path: str | None = None
) -> str | None:
    """Why ``python`` on ``path`` (default: this process's PATH, which the program inherits)
    cannot run the sweep's program, in one line; None when it can or the command does not use
    ``${interpreter}``. As under ``wandb agent``, ``${interpreter}`` is the first ``python`` on
    PATH; when the command runs the kit's trainer, that python must have it installed."""
    if "${interpreter}" not in command_items(definition):
        return None
    path = os.environ.get("PATH", os.defpath) if path is None else path
    here = Path(sys.executable).parent
    fix = (
        f"activate the environment the program's packages are installed in, or put its bin "
        f"folder (this one is {here}) first on PATH"
    )
    python = shutil.which(INTERPRETER, path=path)
    if python is None:
        return (
            f"{source}: command: ${{interpreter}} is `python` from PATH, as under wandb agent, "
            f"and there is no python on PATH; {fix}"
        )
    if not runs_trainer(definition) or Path(python).parent == here:
        return None  # this environment's own python (the kit is installed in it)
    probe = (
        "import importlib.util, sys; sys.exit(importlib.util.find_spec('sweepkit.train') is None)"
    )
    try:
        found = (
            subprocess.run(
                [python, "-c", probe],
                capture_output=True,
                timeout=60,
                env={**os.environ, "PATH": path},
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        found = False
    if found:
        return None
    return (
        f"{source}: command: ${{interpreter}} is `python` from PATH, as under wandb agent, and "
        f"{python} cannot import sweepkit.train (the kit's trainer is not installed there); {fix}"
    )
