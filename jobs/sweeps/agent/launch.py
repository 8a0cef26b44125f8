"""A claimed run's command line and environment, as ``wandb agent`` gives them to a program.

The command's macros are expanded as W&B's own helpers expand them
(``sweepkit.jobs.sweeps.definition.command``, without importing W&B: it costs more than the
program's own start), the
run's values are written as ``{name: {value: v}}`` YAML to
``$WANDB_DIR/wandb/sweep-<sweep>/config-<run>.yaml`` and named by ``WANDB_SWEEP_PARAM_PATH``, and
``WANDB_SWEEP_ID`` and ``WANDB_RUN_ID`` are set (``wandb/wandb_agent.py``, ``_command_run``).
Every path is absolute, as ``wandb agent``'s are, so a program that changes its working folder
still finds them. In addition ``WANDB_DIR`` and ``SWEEPKIT_RUN_DIR`` are the run folder in the
sweep, and ``WANDB_MODE`` is ``offline`` unless the environment sets it. Once the run is done,
its parameter file is kept in the run folder (``keep_param_file``).
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps import lab_group
from sweepkit.jobs.sweeps.definition.command import (
    args_json,
    build_command,
    command_chunks,
    parameter_file_text,
)
from sweepkit.jobs.sweeps.store.folder import KEPT_PARAM_FILE

# wandb-core flushes a run's transaction log every 15 s by default: a reader would see epochs late
FLUSH_INTERVAL_ENV = "WANDB_X_TRANSACTION_LOG_FLUSH_INTERVAL"
FLUSH_INTERVAL_S = "1"


def program_argv_env(
    definition: dict[str, Any],
    sweep_id: str,
    sweep_dir: Path,
    run_id: str,
    run_dir: Path,
    attempt: int,
    params: dict[str, Any],
    gid: int | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The program's argv and environment for one attempt (``attempt`` counts from 1); writes the
    run's parameter files, which the program reads (``gid``: the sweep is shared with that group,
    and so are the folders and files written here: lab_group.py)."""
    # absolute, as wandb agent gives them: a program that changes its working folder (Hydra,
    # os.chdir) still finds its parameters and WANDB_DIR whatever --root was relative to
    run_dir = Path(os.path.abspath(run_dir))
    param_dir = run_dir / "wandb" / f"sweep-{sweep_id}"
    param_path = param_dir / f"config-{run_id}.yaml"
    json_path = param_dir / f"config-{run_id}.json"
    lab_group.make_dirs(param_dir, gid)  # the group's, in a shared sweep
    param_dir.mkdir(parents=True, exist_ok=True)
    param_path.write_text(parameter_file_text(params), encoding="utf-8")
    lab_group.own_file(param_path, gid)
    env = dict(os.environ)
    env.pop("WANDB_SERVICE", None)
    env.update(
        WANDB_SWEEP_ID=sweep_id,
        WANDB_RUN_ID=run_id,
        WANDB_SWEEP_PARAM_PATH=str(param_path),
        WANDB_DIR=str(run_dir),
        SWEEPKIT_RUN_DIR=str(run_dir),
        SWEEPKIT_SWEEP_DIR=os.path.abspath(sweep_dir),
        SWEEPKIT_ATTEMPT=str(attempt),
    )
    # ${envvar:NAME} from the agent's own environment, as wandb agent expands them (before it
    # sets WANDB_RUN_ID and the parameter path)
    argv = build_command(definition, params, json_path)
    if "${args_json_file}" in command_chunks(definition, os.environ):
        json_path.write_text(args_json(params), encoding="utf-8")
        lab_group.own_file(json_path, gid)
    env.setdefault("WANDB_MODE", "offline")
    env.setdefault(FLUSH_INTERVAL_ENV, FLUSH_INTERVAL_S)
    return argv, env


def keep_param_file(env: dict[str, str]) -> None:
    """Once a run is done: move its parameter file to ``KEPT_PARAM_FILE`` in the run folder,
    remove the ``${args_json_file}`` copy, and remove their folder ``wandb/sweep-<sweep>/`` (and
    ``wandb/``) if nothing else is in it. ``wandb agent`` keeps them in one folder that the runs of
    its WANDB_DIR share; here each run has a WANDB_DIR of its own, so they would cost every run a
    folder and a file or two (filesystems of clusters cap a project's files). The YAML stays, in
    one inode: it is what shows the run was claimed, with its values, should the journal lose
    that record (store/recovery.py). Only once the run is done (its end record written, not
    preempted): two attempts of a run share these files (an attempt whose lease expired may still
    be starting when the next one does), so moved sooner they could go under the newer attempt's
    program; a later attempt (a crashed run retried) writes them again."""
    param_path = Path(env["WANDB_SWEEP_PARAM_PATH"])
    with contextlib.suppress(FileNotFoundError):  # a program may remove it: nothing to keep
        os.replace(param_path, Path(env["SWEEPKIT_RUN_DIR"]) / KEPT_PARAM_FILE)
    param_path.with_suffix(".json").unlink(missing_ok=True)
    for folder in (param_path.parent, param_path.parent.parent):
        with contextlib.suppress(OSError):  # not empty: W&B's run is there, or the program's files
            folder.rmdir()


def die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the agent dies (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
