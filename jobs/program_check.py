"""Checks of a sweep's program before any run starts.

A typo in a sweep definition's command (a preset path, ``-m trian``), a parameter that is not a
trainer key, a value the trainer refuses, or a metric the trainer never logs makes every run fail,
or finish without the metric the search learns from; found only at run time, it costs the whole
array. ``sweepkit sweep create`` checks all of it against the trainer when the command runs it
(``-m train``); ``sweepkit agent`` checks the command's files from its own working folder before it
claims a run (an agent started in the wrong folder would otherwise fail run after run); ``sweepkit
submit`` checks them from the folder the job will run in.

The trainer check runs the trainer's own argument parsing and config layering on the very argv the
agent would build (``sweepdef.build_command``) for sample values of each parameter: every listed
value, and the ends and middle of each distribution.
"""

from __future__ import annotations

import difflib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from jobs import sweepdef
from jobs.sweep_state import plain
from train.errors import UserError

# What the trainer logs: per epoch (run.json "epochs", W&B history) and at the end (summary).
TRAINER_EPOCH_METRICS = (
    "Train Loss",
    "Validation Loss",
    "Validation Accuracy",
    "images_per_s",
    "lr",
    "epoch_s",
)
TRAINER_FINAL_METRICS = ("best Validation Accuracy", "Test Loss", "Test Accuracy")
QUANTILES = (0.001, 0.5, 0.999)  # inside every distribution's support, unbounded ones included


def command_items(definition: dict[str, Any]) -> list[str]:
    return [str(c) for c in definition.get("command", sweepdef.DEFAULT_COMMAND)]


def module_run(definition: dict[str, Any]) -> str | None:
    """The module the command runs with ``-m``, if any."""
    items = command_items(definition)
    for flag, name in zip(items, items[1:], strict=False):
        if flag == "-m":
            return name
    return None


def runs_trainer(definition: dict[str, Any]) -> bool:
    return module_run(definition) == "train"


def command_files(definition: dict[str, Any]) -> list[tuple[str, str]]:
    """(what, path) of the files the command needs: the program it names, and each ``--config``."""
    items = command_items(definition)
    files = []
    if "${program}" in items and definition.get("program"):
        files.append(("program", str(definition["program"])))
    for flag, value in zip(items, items[1:], strict=False):
        if flag == "--config":
            files.append(("command --config", value))
    return files


def check_files(definition: dict[str, Any], source: str, folder: Path) -> None:
    """Each file the command names exists, seen from ``folder`` (where the program will start)."""
    for what, name in command_files(definition):
        path = Path(name) if Path(name).is_absolute() else folder / name
        if not path.is_file():
            raise UserError(
                f"{source}: {what} {name} not found from {folder}; the program starts in the "
                "folder the agent runs in: run it (or submit) from the folder these paths are "
                "relative to (the project checkout), or use absolute paths in the definition"
            )


def check_module(definition: dict[str, Any], folder: Path) -> str | None:
    """A warning when the ``-m`` module cannot be imported here (it may exist only in the image)."""
    name = module_run(definition)
    if name is None:
        return None
    sys.path.insert(0, str(folder))
    try:
        found = importlib.util.find_spec(name) is not None
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


def samples(spec: dict[str, Any]) -> list[Any]:
    """Values to try for one parameter: nested parameters as dicts of their first samples."""
    if "parameters" in spec:
        return [{k: samples(v)[0] for k, v in spec["parameters"].items()}]
    if "value" in spec:
        return [spec["value"]]
    if "values" in spec:
        return list(spec["values"])
    from sweeps.params import HyperParameter

    param = HyperParameter("p", spec)
    return list(dict.fromkeys(plain(param.ppf(q)) for q in QUANTILES))


def check_parameters(definition: dict[str, Any], source: str) -> None:
    """The trainer's own parsing and validation of the argv of runs with sample values."""
    from train.cli import add_arguments, parse_args
    from train.config import build_config

    sweepdef.quiet_sweeps_import()
    parser_args = _trainer_parser(add_arguments)

    def refused(values: dict[str, Any]) -> UserError | None:
        params = {k: {"value": v} for k, v in values.items()}
        argv = sweepdef.build_command(definition, params, Path("config.json"))
        try:
            args = parse_args(parser_args, argv[argv.index("-m") + 2 :])
            build_config(args.config, args.agent_overrides, args.set)
        except UserError as err:
            return err
        return None

    tries = {name: samples(spec) for name, spec in definition["parameters"].items()}
    for name, values in tries.items():  # each alone, so that the error names its parameter
        for value in values:
            err = refused({name: value})
            if err is not None:
                raise UserError(
                    f"{source}: parameters.{name}: {err} (the trainer would refuse "
                    f"{name}={value!r} in every run given it)"
                )
    together = {name: values[0] for name, values in tries.items()}
    err = refused(together)  # keys the trainer checks against each other
    if err is not None:
        raise UserError(f"{source}: parameters: {err} (for the values {together})")


def _trainer_parser(add_arguments: Any) -> Any:
    import argparse

    class Refuse(argparse.ArgumentParser):
        def error(self, message: str) -> Any:  # the trainer's usage errors, as one line
            raise UserError(f"the command's trainer arguments: {message}")

    parser = Refuse(prog="python -m train", allow_abbrev=False)
    add_arguments(parser)
    return parser


def check_definition(definition: dict[str, Any], source: str, folder: Path) -> list[str]:
    """Everything that can be checked before a run: raises ``UserError``; returns warnings."""
    check_files(definition, source, folder)
    if runs_trainer(definition):
        check_metric(definition, source)
        check_parameters(definition, source)
    warning = check_module(definition, folder)
    return [warning] if warning else []
