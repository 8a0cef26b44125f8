"""Stopping a run stops everything its program started: a real program that starts a child of its
own (as a DataLoader worker or a rank is), the real agent, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sweep_fixtures import create, grid, start_agent, wait_for, write_definition

from sweepkit.jobs.sweeps.agent.process import ProcessRunner

# starts a child that sleeps (in the program's process group, as a loader worker is), writes the
# child's pid, then waits; with --ignore_term=1 both ignore SIGTERM. The child notes a SIGUSR1.
PARENT = r"""
import os, signal, subprocess, sys, time
ignore = "--ignore_term=1" in sys.argv
child_code = (
    "import signal, sys, time\n"
    f"if {ignore}: signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "signal.signal(signal.SIGUSR1, lambda *a: open(sys.argv[1], 'w').write('USR1'))\n"
    "time.sleep(600)\n"
)
folder = os.environ.get("SWEEPKIT_RUN_DIR") or sys.argv[-1]
child = subprocess.Popen([sys.executable, "-c", child_code, os.path.join(folder, "child-signal")])
if ignore:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
usr1 = []
signal.signal(signal.SIGUSR1, lambda *a: usr1.append(1))
open(os.path.join(folder, "child.pid.tmp"), "w").write(str(child.pid))
os.replace(os.path.join(folder, "child.pid.tmp"), os.path.join(folder, "child.pid"))
while not usr1:
    time.sleep(0.05)
sys.exit(75)  # checkpointed, as the trainer does on SIGUSR1
"""


def running(pid: int) -> bool:
    """Whether ``pid`` runs (an exited, unreaped process does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def child_pid(folder: Path) -> int:
    pid_files = list(folder.rglob("child.pid"))
    return int(pid_files[0].read_text()) if pid_files else 0


def start_sweep_agent(tmp_path: Path) -> tuple[Path, subprocess.Popen[bytes]]:
    program = tmp_path / "parent.py"
    program.write_text(PARENT)
    sweep = create(tmp_path, write_definition(tmp_path, grid({"lr": [0.5]}, program)))
    proc = start_agent(sweep, tmp_path, tmp_path / "agent.log")
    wait_for(lambda: child_pid(tmp_path / sweep) > 0, 60, "the program's child")
    return tmp_path / sweep, proc


@pytest.mark.system
def test_sigterm_to_the_agent_leaves_no_process_of_the_program_running(tmp_path: Path) -> None:
    sweep, proc = start_sweep_agent(tmp_path)
    child = child_pid(sweep)
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert not running(child), (tmp_path / "agent.log").read_text()
    finally:
        if running(child):
            os.kill(child, signal.SIGKILL)


@pytest.mark.system
def test_sigusr1_reaches_the_program_alone_which_checkpoints(tmp_path: Path) -> None:
    """SIGUSR1 (SLURM's warning before the time limit) goes to the program, as wandb agent's
    forwarding does; its children are the program's to stop, and end with the run."""
    sweep, proc = start_sweep_agent(tmp_path)
    child = child_pid(sweep)
    try:
        proc.send_signal(signal.SIGUSR1)
        assert proc.wait(timeout=60) == 75, (tmp_path / "agent.log").read_text()
        assert not list(sweep.rglob("child-signal")), "the child got SIGUSR1"
        assert not running(child)
    finally:
        if running(child):
            os.kill(child, signal.SIGKILL)


@pytest.mark.system
def test_a_program_that_ignores_sigterm_is_killed_with_its_group_after_the_grace(
    tmp_path: Path,
) -> None:
    runner = ProcessRunner()
    program = tmp_path / "parent.py"
    program.write_text(PARENT)
    argv = [sys.executable, str(program), "--ignore_term=1", str(tmp_path)]
    leader = runner.start(argv, dict(os.environ), tmp_path / "output.log")
    wait_for(lambda: child_pid(tmp_path) > 0, 60, "the program's child")
    child = child_pid(tmp_path)
    try:
        runner.stop()
        assert runner.wait(0.5) is None and running(child), "SIGTERM is ignored by both"
        runner.kill()  # what the agent does when the grace period is over
        assert runner.wait(30) == -signal.SIGKILL
        runner.end()
        assert not running(child) and not running(leader)
    finally:
        if running(child):
            os.kill(child, signal.SIGKILL)
