"""A run's command line and parameter files, against W&B's own agent.

The oracle is ``wandb/wandb_agent.py`` in this environment: ``Agent._command_run``, the code that
builds the program's argv under ``wandb agent`` (``create_sweep_command``, then its own
``sweep_vars``: ``${env}``, ``${interpreter}``, ``${program}``, ``${args_json_file}``), writes
``WANDB_SWEEP_PARAM_PATH`` and the ``${args_json_file}`` file. Only the process it would start is
replaced, by a recorder of the command it was given (a test cannot let W&B's agent start one
without a W&B server). The kit's ``program_argv_env``, which builds them without importing W&B,
must give the same argv, the same files (byte for byte) and the same parameter path for every
macro, command and parameter set Hypothesis makes.
"""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sweepkit.jobs.sweeps.agent.launch import program_argv_env
from sweepkit.jobs.sweeps.definition.command import COMMAND_MACROS

SWEEP_ID, RUN_ID = "conf1234", "run5678"
MACROS = [f"${{{m}}}" for m in COMMAND_MACROS]
LITERALS = [
    "-m",
    "pkg.train",
    "--config",
    "c.yaml",
    "lit-${envvar:CONF_SET}-x",
    "${envvar:CONF_UNSET}",
    # set by wandb agent in its own environment, but only after it expands the command
    "${envvar:WANDB_RUN_ID}",
    "--p=${envvar:WANDB_SWEEP_PARAM_PATH}",
    "${envvar:WANDB_SWEEP_ID}",
]

names = st.text(string.ascii_letters + string.digits + "_.-", min_size=1, max_size=10)
leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=6,
)
params = st.dictionaries(names, values.map(lambda v: {"value": v}), max_size=5)
commands = st.lists(st.sampled_from(MACROS + LITERALS), max_size=8)


class Recorded:
    """Stands in for W&B's AgentProcess: keeps the command instead of starting it."""

    last: list[str] | None = None

    def __init__(self, command: list[str] | None = None, **_: Any) -> None:
        Recorded.last = list(command or [])


def wandb_agent_run(
    command: list[str] | None, program: str, run_dir: Path, args: dict[str, Any]
) -> tuple[list[str], dict[str, str]]:
    """(argv, {file name: text}) as W&B's agent builds and writes them for one run."""
    from wandb import wandb_agent

    agent = wandb_agent.Agent(api=None, queue=None, sweep_id=SWEEP_ID)
    agent._sweep_command = list(command or [])  # as Agent.run sets it from the sweep's config
    Recorded.last = None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(wandb_agent, "AgentProcess", Recorded)
        for name in ("WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH"):  # the agent sets them: undone
            mp.setenv(name, os.environ[name])
        agent._command_run({"run_id": RUN_ID, "program": program, "args": args})
    assert Recorded.last is not None  # W&B's agent got as far as starting the program
    return Recorded.last, written(run_dir)


def written(run_dir: Path) -> dict[str, str]:
    folder = run_dir / "wandb" / f"sweep-{SWEEP_ID}"
    found = {p.name: p.read_text() for p in sorted(folder.glob("*"))} if folder.exists() else {}
    for path in folder.glob("*"):
        path.unlink()
    return found


def kit_run(
    command: list[str] | None, program: str, run_dir: Path, args: dict[str, Any]
) -> tuple[list[str], dict[str, str], str]:
    definition: dict[str, Any] = {"program": program}
    if command is not None:
        definition["command"] = command
    argv, env = program_argv_env(definition, SWEEP_ID, run_dir, RUN_ID, run_dir, 1, args)
    return argv, written(run_dir), env["WANDB_SWEEP_PARAM_PATH"]


def check(tmp_path: Path, command: list[str] | None, args: dict[str, Any]) -> None:
    run_dir = tmp_path / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_DIR", str(run_dir))
        mp.setenv("WANDB_SWEEP_ID", SWEEP_ID)
        mp.setenv("CONF_SET", "from-env")
        mp.setenv("WANDB_RUN_ID", "the-agents-last-run")
        mp.setenv("WANDB_SWEEP_PARAM_PATH", "the-agents-last-path")
        mp.delenv("CONF_UNSET", raising=False)
        oracle_argv, oracle_files = wandb_agent_run(command, "prog.py", run_dir, args)
        argv, files, param_path = kit_run(command, "prog.py", run_dir, args)
    assert argv == oracle_argv
    assert files == oracle_files
    assert param_path == str(run_dir / "wandb" / f"sweep-{SWEEP_ID}" / f"config-{RUN_ID}.yaml")


def test_every_macro_in_one_command(tmp_path: Path) -> None:
    args = {"lr": {"value": 1e-5}, "flag": {"value": False}, "on": {"value": True}}
    check(tmp_path, [*MACROS, *LITERALS], args)
    check(tmp_path, None, args)  # no command: W&B's default, ${env} ${interpreter} ...


@given(command=commands, args=params)
def test_command_and_files_are_wandb_agents(tmp_path_factory: Any, command: Any, args: Any) -> None:
    check(tmp_path_factory.mktemp("run"), command, args)
