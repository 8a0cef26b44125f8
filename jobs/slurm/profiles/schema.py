"""What a cluster profile is: its keys with their meaning, and the typed ``Profile`` they make."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

RUNTIMES = ("apptainer", "singularity", "podman", "none")
# Characters that break or inject into an ``#SBATCH --opt=VALUE`` line.
DIRECTIVE_BAD = re.compile(r"[\s;`$'\"\\#]")
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


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


# Every key a profile may hold, with what it means (an error for a missing key quotes it).
KEYS: dict[str, str] = {
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
    "nodes": "nodes per task; one run spans them (its command uses python -m sweepkit.train.launch)",
    "wandb_api_key_file": "file holding the W&B API key, mode 0600",
    "sbatch_extra": "further #SBATCH options, e.g. [--mail-type=FAIL]",
}
