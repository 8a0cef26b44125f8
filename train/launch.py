"""``python -m sweepkit.train.launch [--nproc-per-node N] -m sweepkit.train ARGS``: one run on every GPU of a task,
on one node or on every node of a SLURM task.

A sweep's command names it in place of ``python -m sweepkit.train``; the agent (one per task, on the
task's first node) claims the run and starts this, which starts the ranks:
- one node (``SLURM_NTASKS`` unset or 1): ``torchrun --standalone --nproc-per-node N -m sweepkit.train``;
- several (``SLURM_NTASKS`` > 1, one task per node as ``nodes:`` renders): ``srun`` starts one
  torchrun per task, which meet through torchrun's c10d rendezvous on this node (a free port
  picked here), so every rank trains this one run's config. No other process starts an agent.

Stop signals (SIGTERM, SIGUSR1, SIGINT) are passed to the launched process (srun and torchrun
pass them on to the ranks). torchrun reports ranks that exit 75 as a failure, so the exit code
is taken from the run's record instead (run.json, written by rank 0): 0 finished, 75
preempted, the recorded code when it failed; the launched process's own code without a record.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from sweepkit.train.errors import EXIT_PREEMPTED, EXIT_USAGE
from sweepkit.train.runrecord import read_run_json

TORCHRUN_SIGNALS = "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1"
USAGE = "usage: python -m sweepkit.train.launch [--nproc-per-node N] -m sweepkit.train [trainer arguments]"


def split_argv(argv: list[str]) -> tuple[int | None, list[str]] | str:
    """(--nproc-per-node or None, the trainer's arguments), or the one-line reason it is wrong."""
    nproc: int | None = None
    i = 0
    while i < len(argv) and argv[i : i + 2] != ["-m", "sweepkit.train"]:
        item = argv[i]
        value = item.split("=", 1)[1] if "=" in item else None
        if item.split("=")[0] not in ("--nproc-per-node", "--nproc_per_node"):
            return f"unknown launcher argument {item!r}; {USAGE}"
        if value is None:
            i += 1
            value = argv[i] if i < len(argv) else ""
        if not value.isdigit() or int(value) < 1:
            return f"--nproc-per-node {value!r} is not a number of processes (1 or more)"
        nproc = int(value)
        i += 1
    if argv[i : i + 2] != ["-m", "sweepkit.train"]:
        return f"no '-m sweepkit.train' in the command; {USAGE}"
    return nproc, argv[i + 2 :]


def visible_gpus() -> int:
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return len([d for d in listed.split(",") if d.strip()])
    import torch

    return torch.cuda.device_count()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def launch_command(nproc: int, trainer_args: list[str]) -> list[str]:
    # torchrun passes on only the signals it is told to; by default it would die of SIGUSR1
    # (SLURM's lead signal) and leave its ranks running.
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={nproc}",
        f"--signals-to-handle={TORCHRUN_SIGNALS}",
    ]
    tasks = int(os.environ.get("SLURM_NTASKS", "1") or 1)
    if tasks <= 1:
        return [*torchrun, "--standalone", "-m", "sweepkit.train", *trainer_args]
    endpoint = f"{socket.gethostname()}:{free_port()}"
    return [
        "srun",
        f"--ntasks={tasks}",
        "--kill-on-bad-exit=0",
        *torchrun,
        f"--nnodes={tasks}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={endpoint}",
        f"--rdzv-id=sweepkit-{os.environ.get('SLURM_JOB_ID', 'job')}-{os.getpid()}",
        "-m",
        "sweepkit.train",
        *trainer_args,
    ]


def run_dir_of(trainer_args: list[str]) -> Path | None:
    for i, item in enumerate(trainer_args):
        if item == "--run-dir" and i + 1 < len(trainer_args):
            return Path(trainer_args[i + 1])
        if item.startswith("--run-dir="):
            return Path(item.split("=", 1)[1])
    chosen = os.environ.get("SWEEPKIT_RUN_DIR")
    return Path(chosen) if chosen else None


def exit_code(run_dir: Path | None, launched: int, started: float) -> int:
    """The run's outcome from its record, when this launch wrote one (a record from an earlier
    attempt says nothing about this one)."""
    record = read_run_json(run_dir) if run_dir else None
    if not record or run_dir is None or (run_dir / "run.json").stat().st_mtime < started:
        return launched
    if record.get("state") == "finished":
        return 0
    if record.get("state") == "preempted":
        return EXIT_PREEMPTED
    code = record.get("exit_code")
    return int(code) if isinstance(code, int) and code else (launched or 1)


def main(argv: list[str] | None = None) -> int:
    parsed = split_argv(list(sys.argv[1:] if argv is None else argv))
    if isinstance(parsed, str):
        print(f"sweepkit launch: error: {parsed}", file=sys.stderr)
        return EXIT_USAGE
    nproc, trainer_args = parsed
    nproc = nproc or max(1, visible_gpus())
    command = launch_command(nproc, trainer_args)
    started = time.time()
    print(f"sweepkit launch: {' '.join(command)}", flush=True)
    child = subprocess.Popen(command)

    def forward(signum: int, frame: FrameType | None) -> None:
        child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT):
        signal.signal(sig, forward)
    launched = child.wait()
    return exit_code(run_dir_of(trainer_args), launched, started)


if __name__ == "__main__":
    sys.exit(main())
