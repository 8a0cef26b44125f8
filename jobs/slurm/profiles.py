"""Cluster profiles (``config/cluster.yaml``): load, validate, and hand a typed ``Profile`` out.

A profile is everything site-specific about an sbatch array job: where it runs (partition,
account, qos, constraint), what it asks for (CPUs, memory, GPUs, time), how it behaves near its
end (signal lead time, requeue), and how the agent starts (modules, container runtime, image,
binds, environment, log names). ``sweepkit submit`` renders ``jobs/slurm/sweep_array.sbatch`` from it.

Validation is strict because a profile value ends up in a shell script: an ``#SBATCH`` line
cannot be quoted, so a value with a newline, ``;``, a backtick, ``$`` or white space in a
directive is refused (it would break the header or inject a command); values used in the script
body are shell-quoted when rendered, and only control characters are refused there. Every
problem is one ``UserError`` naming the file, the profile and the key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from train.errors import UserError

RUNTIMES = ("apptainer", "singularity", "podman", "none")
DEFAULT_CLUSTER_CONFIG = Path("config") / "cluster.yaml"
# Characters that break or inject into an ``#SBATCH --opt=VALUE`` line.
DIRECTIVE_BAD = re.compile(r"[\s;`$'\"\\#]")
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MEM = re.compile(r"^[0-9]+[KMGT]$")
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
# SLURM time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


@dataclass(frozen=True)
class Profile:
    """One validated cluster profile. Paths are absolute (``~`` expanded) unless noted."""

    name: str
    source: Path
    partition: str
    time: str
    time_s: int
    concurrency: int
    runtime: str
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    cpus_per_task: int = 1
    mem: str | None = None
    gpus: int = 0
    gpu_type: str | None = None
    requeue: bool = True
    signal_lead_s: int = 300
    modules: tuple[str, ...] = ()
    image: Path | None = None
    binds: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None  # None: SWEEP/slurm/logs
    log_name: str = "%x-%A_%a.out"
    job_name: str | None = None  # None: sweepkit-<sweep id>
    runs_per_task: int = 1
    agents_per_task: int = 1
    nodes: int = 1
    wandb_api_key_file: Path = Path("~/.config/sweepkit/wandb_api_key")
    sbatch_extra: tuple[str, ...] = ()

    @property
    def container(self) -> bool:
        return self.runtime != "none"


_KEYS: dict[str, str] = {
    "partition": "SLURM partition (--partition)",
    "account": "account to charge (--account)",
    "qos": "quality of service (--qos)",
    "constraint": "node features (--constraint), e.g. a100|h100",
    "time": "time limit per task (--time), e.g. 04:00:00 or 1-00:00:00",
    "cpus_per_task": "CPUs per array task (--cpus-per-task)",
    "mem": "memory per task (--mem), e.g. 64G",
    "gpus": "GPUs per array task (--gres=gpu:N)",
    "gpu_type": "GPU type in the gres request (--gres=gpu:TYPE:N)",
    "concurrency": "array tasks running at once (the %N of --array)",
    "requeue": "requeue a task whose time limit is near (true/false)",
    "signal_lead_s": "seconds before the time limit that SIGUSR1 arrives (--signal=B:USR1@N)",
    "modules": "environment modules to load before the agent starts",
    "runtime": "apptainer, singularity, podman or none (agent on the host)",
    "image": "container image: a .sif path, or a Podman image NAME:TAG",
    "binds": "bind mounts, SRC[:DST[:ro]]",
    "env": "extra environment variables for the agent and trainer",
    "log_dir": "folder for the task logs (default SWEEP/slurm/logs)",
    "log_name": "log file name pattern (default %x-%A_%a.out)",
    "job_name": "job name (default sweepkit-<sweep id>)",
    "runs_per_task": "runs each array task takes from the sweep (agent --count)",
    "agents_per_task": "agents per task, each with its share of the task's GPUs (packing)",
    "nodes": "nodes per task; one run spans them (its command uses python -m train.launch)",
    "wandb_api_key_file": "file holding the W&B API key, mode 0600",
    "sbatch_extra": "further #SBATCH options, e.g. [--mail-type=FAIL]",
}


def parse_time_s(value: str) -> int | None:
    """Seconds in a SLURM ``--time`` value, or None when the format is not one SLURM accepts."""
    match = _TIME.match(value)
    if not match:
        return None
    days, a, b, c = match.groups()
    parts = [int(p) for p in (a, b, c) if p is not None]
    if days is not None:  # D-H, D-H:M, D-H:M:S
        hours, minutes, seconds = (parts + [0, 0])[:3]
        return ((int(days) * 24 + hours) * 60 + minutes) * 60 + seconds
    if len(parts) == 1:  # M
        return parts[0] * 60
    if len(parts) == 2:  # M:S
        return parts[0] * 60 + parts[1]
    return (parts[0] * 60 + parts[1]) * 60 + parts[2]  # H:M:S


class _Checker:
    """Reads one profile's mapping; each failure names file, profile and key."""

    def __init__(self, source: Path, name: str, raw: dict[str, Any]) -> None:
        self.source, self.name, self.raw = source, name, raw

    def fail(self, key: str, problem: str, fix: str) -> UserError:
        return UserError(f"{self.source}: profile {self.name!r}, key {key!r}: {problem}; {fix}")

    def text(self, key: str, directive: bool, required: bool = False) -> str | None:
        value = self.raw.get(key)
        if value is None or value == "":
            if required:
                raise self.fail(key, "is missing", f"add `{key}:` ({_KEYS[key]})")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(key, f"must be a string, not {type(value).__name__}", "quote it")
        return self.text_value(key, str(value), directive)

    def integer(self, key: str, default: int | None, low: int, high: int | None = None) -> int:
        value = self.raw.get(key, default)
        if value is None:
            raise self.fail(key, "is missing", f"add `{key}:` ({_KEYS[key]})")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be a whole number, not {value!r}", f"e.g. `{key}: {low}`")
        if value < low or (high is not None and value > high):
            span = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise self.fail(key, f"is {value}", f"use a number {span}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, not {value!r}", "write true or false")
        return value

    def strings(self, key: str, directive: bool = False) -> tuple[str, ...]:
        value = self.raw.get(key) or []
        if isinstance(value, str) or not isinstance(value, list):
            raise self.fail(key, "must be a list", f"write `{key}: [a, b]`")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str | int | float) or isinstance(item, bool) or item == "":
                raise self.fail(f"{key}[{i}]", f"{item!r} is not a string", "quote it")
            out.append(self.text_value(f"{key}[{i}]", str(item), directive))
        return tuple(out)

    def text_value(self, key: str, value: str, directive: bool) -> str:
        if CONTROL_CHARS.search(value):
            raise self.fail(key, f"{value!r} holds a newline or control character", "remove it")
        bad = DIRECTIVE_BAD.search(value) if directive else None
        if bad:
            raise self.fail(
                key,
                f"{value!r} holds {bad.group()!r}, which would break or inject into its "
                "#SBATCH line",
                "use a plain value (letters, digits, - _ . : / , | & = +)",
            )
        return value


def _expand(check: _Checker, key: str, value: str) -> str:
    """``~`` and ``$VAR`` expanded now, on the submitting host (login and compute nodes share
    HOME and site variables such as SCRATCH); the script then holds a plain quoted path."""
    if "$(" in value or "`" in value:
        raise check.fail(key, f"{value!r} holds a command substitution", "write a plain path")
    expanded = os.path.expanduser(os.path.expandvars(value))
    if "$" in expanded:
        raise check.fail(
            key, f"{value!r} uses a variable that is not set here", "set it or spell it out"
        )
    return expanded


def _path(check: _Checker, key: str, value: str | None) -> Path | None:
    return Path(_expand(check, key, value)) if value else None


def _check_profile(source: Path, name: str, raw: Any) -> Profile:
    if not _NAME.match(name):
        raise UserError(
            f"{source}: profile name {name!r} must be letters, digits, '-', '_' or '.'; rename it"
        )
    if not isinstance(raw, dict):
        raise UserError(f"{source}: profile {name!r} must be a mapping of keys; see its examples")
    check = _Checker(source, name, raw)
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise check.fail(
            unknown[0], "is not a profile key", f"use one of: {', '.join(sorted(_KEYS))}"
        )

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

    mem = check.text("mem", directive=True)
    if mem is not None and mem.isdigit():
        # sbatch reads a bare number as megabytes: `mem: 64` would ask for 64 MB
        raise check.fail(
            "mem",
            f"{mem!r} has no unit, and SLURM would read it as {mem} MB",
            f"write {mem}G for gigabytes, or {mem}M if megabytes were meant",
        )
    if mem is not None and not _MEM.match(mem):
        raise check.fail("mem", f"{mem!r} is not a SLURM memory size", "write e.g. 16G or 4000M")

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

    env_raw = raw.get("env") or {}
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

    binds = tuple(_expand(check, f"binds[{i}]", b) for i, b in enumerate(check.strings("binds")))
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

    log_name = check.text("log_name", directive=True) or "%x-%A_%a.out"
    if "/" in log_name:
        raise check.fail("log_name", f"{log_name!r} holds '/'", "put folders in log_dir")
    job_name = check.text("job_name", directive=True)
    log_dir = _path(check, "log_dir", check.text("log_dir", directive=False))
    if log_dir is not None:  # it ends up in the --output directive
        check.text_value("log_dir", str(log_dir), directive=True)
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
        image=_path(check, "image", image_text),
        binds=binds,
        env=env,
        log_dir=log_dir,
        log_name=log_name,
        job_name=job_name,
        runs_per_task=check.integer("runs_per_task", 1, 1, 10_000),
        agents_per_task=agents,
        nodes=nodes,
        wandb_api_key_file=_path(check, "wandb_api_key_file", key_file)
        or Path(os.path.expanduser(Profile.wandb_api_key_file)),
        sbatch_extra=extra,
    )


def read_profiles(path: str | Path | None = None) -> dict[str, Any]:
    """The raw ``profiles:`` mapping of a cluster config file (not yet validated)."""
    import yaml

    source = Path(path) if path is not None else default_cluster_config()
    try:
        text = source.read_text()
    except FileNotFoundError:
        raise UserError(
            f"cluster config {source} not found; pass --cluster-config PATH or copy "
            "config/cluster.yaml from the sweepkit checkout"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"{source}{where}: not valid YAML ({err}); fix the syntax") from None
    if not isinstance(data, dict) or not isinstance(data.get("profiles"), dict):
        raise UserError(f"{source}: needs a top-level `profiles:` mapping of named profiles")
    return data["profiles"]


def default_cluster_config() -> Path:
    """``$SWEEPKIT_CLUSTER_CONFIG``, else ``config/cluster.yaml`` here, else the checkout's."""
    env = os.environ.get("SWEEPKIT_CLUSTER_CONFIG")
    if env:
        return Path(env)
    if DEFAULT_CLUSTER_CONFIG.exists():
        return DEFAULT_CLUSTER_CONFIG
    return Path(__file__).resolve().parents[2] / DEFAULT_CLUSTER_CONFIG


def load_profile(name: str, path: str | Path | None = None) -> Profile:
    """The validated profile ``name`` from the cluster config (``--profile`` / ``--cluster-config``)."""
    source = Path(path) if path is not None else default_cluster_config()
    profiles = read_profiles(source)
    if name not in profiles:
        known = ", ".join(sorted(str(p) for p in profiles)) or "none"
        raise UserError(
            f"{source}: no profile {name!r} (profiles: {known}); fix --profile or add it"
        )
    return _check_profile(source, str(name), profiles[name])


def load_all(path: str | Path | None = None) -> dict[str, Profile]:
    """Every profile of a cluster config, validated (used by the tests and `--profile` help)."""
    source = Path(path) if path is not None else default_cluster_config()
    return {
        str(name): _check_profile(source, str(name), raw)
        for name, raw in read_profiles(source).items()
    }
