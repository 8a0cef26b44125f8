"""One profile's keys checked together: what a single value cannot show (a signal lead longer
than the time limit, agents that cannot share the GPUs, binds without a container)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from sweepkit.jobs.slurm.profiles.schema import DIRECTIVE_BAD, KEYS, RUNTIMES, Profile
from sweepkit.jobs.slurm.profiles.units import MEMORY, parse_time_s
from sweepkit.jobs.slurm.profiles.values import Checker
from sweepkit.train.errors import UserError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EXTRA = re.compile(r"^--[a-z][a-z0-9-]*(=\S+)?$")
# Options the template already sets from profile keys: an extra copy would silently disagree.
_RESERVED_EXTRA = (
    "--array",
    "--output",
    "--error",
    "--chdir",
    "--signal",
    "--requeue",
    "--no-requeue",
    "--open-mode",
    "--job-name",
    "--partition",
    "--account",
    "--qos",
    "--constraint",
    "--time",
    "--mem",
    "--cpus-per-task",
    "--gres",
    "--ntasks",
    "--nodes",
)


def check_profile(source: Path, name: str, raw: Any) -> Profile:
    """The ``Profile`` of ``raw``, the mapping under ``profiles: NAME:``; the first problem, in
    the order the keys are checked, is one UserError."""
    check = _checker(source, name, raw)
    partition, time, time_s, runtime, concurrency = _limits(check)
    image_text = check.text("image", directive=False, required=runtime != "none")
    if runtime == "none" and image_text:
        raise check.fail("image", "is set but runtime is none", "set runtime: apptainer or drop it")
    signal_lead_s = check.integer("signal_lead_s", 300, 0, 65535)
    if signal_lead_s >= time_s:
        raise check.fail(
            "signal_lead_s",
            f"{signal_lead_s} s is not shorter than the time limit {time} ({time_s} s)",
            "use a lead of a few minutes, well under the time limit",
        )
    mem = _memory(check)
    gpus, agents, nodes, gpu_type = _shape(check)
    env = _environment(check, raw.get("env") or {})
    binds = _binds(check, runtime)
    extra = _sbatch_extra(check)
    log_name, job_name, log_dir = _logs(check)
    key_file = check.text("wandb_api_key_file", directive=False)
    return Profile(
        name=name,
        source=source,
        partition=partition,
        time=time,
        time_s=time_s,
        concurrency=concurrency,
        runtime=runtime,
        account=check.text("account", directive=True),
        qos=check.text("qos", directive=True),
        constraint=check.text("constraint", directive=True),
        cpus_per_task=check.integer("cpus_per_task", 1, 1, 4096),
        mem=mem,
        gpus=gpus,
        gpu_type=gpu_type,
        requeue=check.boolean("requeue", True),
        signal_lead_s=signal_lead_s,
        modules=check.strings("modules"),
        image=check.path("image", image_text),
        binds=binds,
        env=env,
        log_dir=log_dir,
        log_name=log_name,
        job_name=job_name,
        runs_per_task=check.integer("runs_per_task", 1, 1, 10_000),
        agents_per_task=agents,
        nodes=nodes,
        wandb_api_key_file=check.path("wandb_api_key_file", key_file)
        or Path(os.path.expanduser(Profile.wandb_api_key_file)),
        sbatch_extra=extra,
    )


def _checker(source: Path, name: str, raw: Any) -> Checker:
    """The checker of a profile whose name is valid and whose keys are all profile keys."""
    if not _NAME.match(name):
        raise UserError(
            f"{source}: profile name {name!r} must be letters, digits, '-', '_' or '.'; rename it"
        )
    if not isinstance(raw, dict):
        raise UserError(f"{source}: profile {name!r} must be a mapping of keys; see its examples")
    check = Checker(source, name, raw)
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise check.fail(
            unknown[0], "is not a profile key", f"use one of: {', '.join(sorted(KEYS))}"
        )
    return check


def _limits(check: Checker) -> tuple[str, str, int, str, int]:
    """The required keys: partition, time (and its seconds), runtime, concurrency."""
    partition = check.text("partition", directive=True, required=True)
    time = check.text("time", directive=True, required=True)
    runtime = check.text("runtime", directive=False, required=True)
    assert partition is not None and time is not None and runtime is not None
    concurrency = check.integer("concurrency", None, 1)
    time_s = parse_time_s(time)
    if time_s is None or time_s == 0:
        raise check.fail(
            "time", f"{time!r} is not a SLURM time limit", "write MM, HH:MM:SS or D-HH:MM:SS"
        )
    if runtime not in RUNTIMES:
        raise check.fail(
            "runtime", f"{runtime!r} is not known", f"use one of {', '.join(RUNTIMES)}"
        )
    return partition, time, time_s, runtime, concurrency


def _memory(check: Checker) -> str | None:
    mem = check.text("mem", directive=True)
    if mem is not None and mem.isdigit():
        # sbatch reads a bare number as megabytes: `mem: 64` would ask for 64 MB
        raise check.fail(
            "mem",
            f"{mem!r} has no unit, and SLURM would read it as {mem} MB",
            f"write {mem}G for gigabytes, or {mem}M if megabytes were meant",
        )
    if mem is not None and not MEMORY.match(mem):
        raise check.fail("mem", f"{mem!r} is not a SLURM memory size", "write e.g. 16G or 4000M")
    return mem


def _shape(check: Checker) -> tuple[int, int, int, str | None]:
    """GPUs, agents per task, nodes and GPU type: a task over several nodes runs one run, and
    packed agents share the task's GPUs evenly."""
    gpus = check.integer("gpus", 0, 0, 64)
    agents = check.integer("agents_per_task", 1, 1, 64)
    nodes = check.integer("nodes", 1, 1, 4096)
    if nodes > 1 and agents > 1:
        raise check.fail(
            "agents_per_task",
            f"packs agents while nodes is {nodes}: a task over several nodes runs one run",
            "use agents_per_task: 1 with nodes, or nodes: 1 to pack",
        )
    if agents > 1 and (agents > gpus or gpus % agents):
        raise check.fail(
            "agents_per_task",
            f"{agents} agents cannot share {gpus} GPU(s) evenly (each agent gets gpus / "
            "agents_per_task of them)",
            "set gpus to a multiple of agents_per_task, or agents_per_task: 1",
        )
    gpu_type = check.text("gpu_type", directive=True)
    if gpu_type and ("," in gpu_type or ":" in gpu_type):
        raise check.fail("gpu_type", f"{gpu_type!r} is not one type", "write e.g. a100")
    return gpus, agents, nodes, gpu_type


def _environment(check: Checker, env_raw: Any) -> dict[str, str]:
    """``env``: plain values; ``$VAR`` stays for the node to expand, a command substitution is
    refused (the node would run it)."""
    if not isinstance(env_raw, dict):
        raise check.fail("env", "must be a mapping", "write `env: {NAME: value}`")
    env: dict[str, str] = {}
    for key, value in env_raw.items():
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise check.fail(f"env.{key}", "is not a variable name", "use letters, digits, _")
        if isinstance(value, dict | list) or value is None:
            raise check.fail(f"env.{key}", f"{value!r} is not a plain value", "quote it")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if "$(" in text or "`" in text:
            raise check.fail(
                f"env.{key}",
                f"{text!r} holds a command substitution, which a job would run on the node",
                "write the value, or $VAR / ${VAR} (expanded on the node when the job starts)",
            )
        env[key] = check.text_value(f"env.{key}", text, directive=False)
    return env


def _binds(check: Checker, runtime: str) -> tuple[str, ...]:
    binds = tuple(
        check.expanded(f"binds[{i}]", bind) for i, bind in enumerate(check.strings("binds"))
    )
    for i, bind in enumerate(binds):
        parts = bind.split(":")
        if len(parts) > 3 or not parts[0].startswith("/") or "," in bind:
            raise check.fail(
                f"binds[{i}]", f"{bind!r} is not SRC[:DST[:ro|rw]]", "write e.g. /data:/data:ro"
            )
        if len(parts) == 3 and parts[2] not in ("ro", "rw"):
            raise check.fail(f"binds[{i}]", f"option {parts[2]!r} is not ro or rw", "use ro/rw")
    if binds and runtime == "none":
        raise check.fail("binds", "only apply to a container runtime", "remove them or set runtime")
    return binds


def _sbatch_extra(check: Checker) -> tuple[str, ...]:
    extra = check.strings("sbatch_extra", directive=False)
    for i, option in enumerate(extra):  # each already checked by check.strings
        if not _EXTRA.match(option) or DIRECTIVE_BAD.search(option):
            raise check.fail(
                f"sbatch_extra[{i}]",
                f"{option!r} is not one --option or --option=value without spaces or shell "
                "characters",
                "write e.g. --mail-type=FAIL",
            )
        if option.split("=")[0] in _RESERVED_EXTRA:
            raise check.fail(
                f"sbatch_extra[{i}]",
                f"{option.split('=')[0]} is set from a profile key or by sweepkit submit",
                "use the matching profile key (see config/cluster.yaml) or --array",
            )
    return extra


def _logs(check: Checker) -> tuple[str, str | None, Path | None]:
    """Log file name pattern, job name and log folder; the folder ends up in --output."""
    log_name = check.text("log_name", directive=True) or "%x-%A_%a.out"
    if "/" in log_name:
        raise check.fail("log_name", f"{log_name!r} holds '/'", "put folders in log_dir")
    job_name = check.text("job_name", directive=True)
    log_dir = check.path("log_dir", check.text("log_dir", directive=False))
    if log_dir is not None:  # it ends up in the --output directive
        check.text_value("log_dir", str(log_dir), directive=True)
    return log_name, job_name, log_dir
