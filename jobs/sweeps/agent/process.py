"""The process runner: the sweep's program as ``wandb agent`` launches it, in a process group of its own.

The program starts in a new session (so its process group is its own, and the agent's terminal
or SLURM step signals reach it only through the agent) and gets SIGTERM if the agent dies (Linux
parent-death signal, ``launch.die_with_parent``). Its output goes to ``RUN_DIR/output.log`` and is
echoed to the agent's stdout.

A stop (hyperband, a lost lease, SIGTERM or SIGINT to the agent) is SIGTERM to the program, which
the kit's trainer answers by checkpointing; SIGUSR1 (SLURM's warning before the time limit) is
passed on as SIGUSR1. Both go to the program alone, as ``wandb agent`` sends them: the program
stops its own children its own way, and a signal from outside its group would kill a PyTorch
DataLoader worker mid-batch (a worker exits quietly only on its parent's SIGTERM), so that the
trainer raises instead of checkpointing. After the grace period the whole group gets SIGKILL.
When the program has exited, whatever it left in its group (a loader worker, a rank, a server)
gets SIGTERM and then, ``LEFTOVER_GRACE_S`` later, SIGKILL: no process of a run outlives it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sweepkit.jobs.sweeps.agent.launch import die_with_parent

STOP_GRACE_S = 60.0  # SIGTERM, then SIGKILL after this long (wandb agent's kill delay is similar)
LEFTOVER_GRACE_S = 5.0  # what the program left in its group: SIGTERM, then SIGKILL after this long


class ProcessRunner:
    """Runs the sweep's program for one claimed run at a time."""

    runs_program = True
    stop_grace_s = STOP_GRACE_S
    # the program's umask (-1: this process's); a lab-shared sweep's agent clears its group bits
    # (lab_group.program_umask), so that another member can resume what the program writes
    umask = -1

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._echoed = 0

    def describe(self, argv: list[str]) -> str:
        """The line under the attempt's header in ``output.log``."""
        return "$ " + " ".join(argv)

    def start(self, argv: list[str], env: dict[str, str], log_path: Path) -> int:
        """Launch the program, its output appended to ``log_path``; returns its pid."""
        with open(log_path, "ab") as log:
            self._log_path, self._echoed = log_path, log.tell()
            self.proc = subprocess.Popen(
                argv,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped as one (see above)
                preexec_fn=die_with_parent,
                umask=self.umask,
            )
        return self.proc.pid

    def wait(self, timeout: float) -> int | None:
        """The program's exit code once it has exited, else None after ``timeout`` seconds;
        echoes what it wrote meanwhile."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        finally:
            self._echo()

    def signal(self, signum: int) -> None:
        """Pass a signal the agent got on to the program: SIGUSR1 as itself, the rest as SIGTERM."""
        self._send(signal.SIGUSR1 if signum == signal.SIGUSR1 else signal.SIGTERM)

    def stop(self) -> None:
        self._send(signal.SIGTERM)

    def kill(self) -> None:
        """The grace period is over: SIGKILL to the program's whole group."""
        if self.proc is not None:
            _signal_group(self.proc.pid, signal.SIGKILL)

    def end(self) -> None:
        """After the program exited (or the agent's watch failed): end what it left in its
        group, echo its last output."""
        # a program still running here means the agent itself is failing: its death will send
        # the program SIGTERM (die_with_parent), which the program hands on as it does any stop
        if self.proc is not None and self.proc.poll() is not None:
            end_group(self.proc.pid, LEFTOVER_GRACE_S)
        self._echo()
        self.proc = None

    def exit_code(self, rc: int) -> int:
        return rc

    def _send(self, signum: int) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signum)

    def _echo(self) -> None:
        """Copy what the program wrote since the last echo to the agent's stdout."""
        if self._log_path is None:
            return
        try:
            with open(self._log_path, "rb") as f:
                f.seek(self._echoed)
                data = f.read()
        except OSError:
            return
        if data:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        self._echoed += len(data)


def end_group(pgid: int, grace_s: float) -> None:
    """SIGTERM to every process left in the group ``pgid``, SIGKILL to those still there after
    ``grace_s`` seconds."""
    if not _signal_group(pgid, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return
        time.sleep(0.05)
    _signal_group(pgid, signal.SIGKILL)


def group_alive(pgid: int) -> bool:
    """Whether a process of the group ``pgid`` still runs. An exited process that nobody has
    reaped yet (a zombie, once PID 1 inherits it) runs nothing, so on Linux it does not count."""
    if not _signal_group(pgid, 0):
        return False
    try:
        stats = os.listdir("/proc")
    except OSError:  # no /proc (not Linux): the group has a process, perhaps a zombie
        return True
    for pid in filter(str.isdigit, stats):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after it
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


def _signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to the group (0: only ask whether it has a process); whether it had one."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:  # only a process of another user left in it: not ours to end
        return False
    return True
