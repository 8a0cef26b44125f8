"""The local twin's runner: the array tasks of one rendered script, as processes on this machine.

One process per array task (bash running the very script sbatch would get), at most ``%N`` at
once, with the environment SLURM gives a task: ``SLURM_JOB_ID`` (one per task),
``SLURM_ARRAY_JOB_ID``, ``SLURM_ARRAY_TASK_ID``, ``SLURM_ARRAY_TASK_{COUNT,MIN,MAX,STEP}``,
``SLURM_JOB_NAME``, ``SLURM_CPUS_PER_TASK``, ``SLURM_SUBMIT_DIR``, ``SLURM_PROCID`` ... and
``SLURM_RESTART_COUNT`` after a requeue. It honours the script's ``#SBATCH`` lines that matter on
one machine: ``--chdir``, ``--output`` (with %x %A %a %j %N %u, appended), ``--time`` (SIGTERM to
the task's processes at the limit, SIGKILL 30 s later), ``--signal=B:SIG@lead`` (the signal to the
batch shell ``lead`` seconds before the limit) and ``--requeue`` (a task that asks for a requeue
is run again, as SLURM would). GPUs, when the launcher's environment lists them in
``CUDA_VISIBLE_DEVICES``: each task gets the ``--gres=gpu:N`` count of them as its own
``CUDA_VISIBLE_DEVICES`` and ``SLURM_JOB_GPUS``, as SLURM hands them out, and a task waits until
that many are free. Other resource requests (partition, memory) are not enforced. Ctrl-C or
SIGTERM to the launcher is ``scancel``: every task gets SIGTERM, and the runs checkpoint.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from sweepkit.jobs.slurm.launcher.base import job_environment
from sweepkit.jobs.slurm.launcher.directives import (
    expand_array,
    expand_output,
    gres_gpus,
    read_directives,
    signal_option,
)
from sweepkit.jobs.slurm.profiles import parse_time_s
from sweepkit.train.errors import UserError

KILL_WAIT_S = 30.0  # SLURM's default KillWait: SIGTERM, then SIGKILL this much later
POLL_S = 0.2


@dataclass
class Task:
    task_id: int
    job_id: str
    restarts: int = 0
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    signalled: bool = False
    terminated_at: float | None = None
    requeue_file: Path | None = None
    gpus: list[str] = field(default_factory=list)


class LocalArray:
    """Runs the tasks of one array job, ``limit`` at a time, like slurmctld with one big node."""

    def __init__(self, script: Path, job_id: str, array: str | None = None) -> None:
        self.script = script.resolve()
        text = self.script.read_text()
        self.directives = read_directives(text)
        spec = array or self.directives.get("--array")
        if not spec:
            raise UserError(f"{script}: no #SBATCH --array line and no --array given")
        self.spec = spec
        self.ids, limit = expand_array(spec)
        self.limit = limit or len(self.ids)
        self.job_id = job_id
        self.job_name = self.directives.get("--job-name") or self.script.name
        self.workdir = Path(self.directives.get("--chdir") or os.getcwd())
        self.output = self.directives.get("--output") or "slurm-%A_%a.out"
        time_text = self.directives.get("--time")
        self.time_s = parse_time_s(time_text) if time_text else None
        self.signal_name, self.signal_lead = signal_option(
            self.directives.get("--signal"), str(self.script)
        )
        self.requeue = "--requeue" in self.directives.options
        self.gpus_per_task = gres_gpus(self.directives.get("--gres"))
        listed = os.environ.get("CUDA_VISIBLE_DEVICES")
        # None: no GPUs listed here, so none are handed out (tasks see this environment as is)
        self.free_gpus: list[str] | None = (
            [d for d in listed.split(",") if d.strip()] if listed is not None else None
        )
        if self.free_gpus is not None and self.gpus_per_task > len(self.free_gpus):
            raise UserError(
                f"{script}: each task asks for {self.gpus_per_task} GPU(s) (--gres) but "
                f"CUDA_VISIBLE_DEVICES lists {len(self.free_gpus)} here; list more, or lower "
                "gpus in the profile"
            )
        self.tmp = Path(tempfile.mkdtemp(prefix=f"sweepkit-local-{job_id}-"))
        self.cancelled = False

    # ----- environment ------------------------------------------------------------------------
    def task_env(self, task: Task) -> dict[str, str]:
        env = job_environment()
        host = socket.gethostname().split(".")[0]
        cpus = self.directives.get("--cpus-per-task")
        ids = self.ids
        env.update(
            {
                "SLURM_JOB_ID": task.job_id,
                "SLURM_JOBID": task.job_id,
                "SLURM_ARRAY_JOB_ID": self.job_id,
                "SLURM_ARRAY_TASK_ID": str(task.task_id),
                "SLURM_ARRAY_TASK_COUNT": str(len(ids)),
                "SLURM_ARRAY_TASK_MIN": str(ids[0]),
                "SLURM_ARRAY_TASK_MAX": str(ids[-1]),
                "SLURM_JOB_NAME": self.job_name,
                "SLURM_SUBMIT_DIR": os.getcwd(),
                "SLURM_SUBMIT_HOST": host,
                "SLURM_CLUSTER_NAME": "local",
                "SLURM_JOB_PARTITION": self.directives.get("--partition") or "local",
                "SLURM_JOB_NODELIST": host,
                "SLURM_NODELIST": host,
                "SLURMD_NODENAME": host,
                "SLURM_JOB_NUM_NODES": "1",
                "SLURM_NNODES": "1",
                "SLURM_NTASKS": "1",
                "SLURM_PROCID": "0",
                "SLURM_LOCALID": "0",
                "SLURM_NODEID": "0",
                "SWEEPKIT_LAUNCHER": "local",
                "SWEEPKIT_LOCAL_REQUEUE_FILE": str(task.requeue_file),
            }
        )
        steps = {b - a for a, b in zip(ids, ids[1:], strict=False)}
        env["SLURM_ARRAY_TASK_STEP"] = str(steps.pop() if len(steps) == 1 else 1)
        if cpus:
            env["SLURM_CPUS_PER_TASK"] = cpus
            env["SLURM_CPUS_ON_NODE"] = cpus
        if task.gpus:
            env["CUDA_VISIBLE_DEVICES"] = env["SLURM_JOB_GPUS"] = ",".join(task.gpus)
        if task.restarts:
            env["SLURM_RESTART_COUNT"] = str(task.restarts)
        else:
            env.pop("SLURM_RESTART_COUNT", None)
        return env

    # ----- running ----------------------------------------------------------------------------
    def gpus_free(self) -> bool:
        return self.free_gpus is None or len(self.free_gpus) >= self.gpus_per_task

    def start(self, task: Task) -> None:
        if self.free_gpus is not None and self.gpus_per_task:
            task.gpus = self.free_gpus[: self.gpus_per_task]
            del self.free_gpus[: self.gpus_per_task]
        task.requeue_file = self.tmp / f"requeue-{task.job_id}-{task.restarts}"
        values = {
            "x": self.job_name,
            "A": self.job_id,
            "a": str(task.task_id),
            "j": task.job_id,
            "N": socket.gethostname().split(".")[0],
            "u": getpass.getuser(),
        }
        log = Path(expand_output(self.output, values))
        if not log.is_absolute():
            log = self.workdir / log
        with open(log, "ab") as handle:  # --open-mode=append: a requeue keeps the first lines
            task.proc = subprocess.Popen(
                ["bash", str(self.script)],
                cwd=self.workdir,
                env=self.task_env(task),
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a job's processes, as in SLURM
            )
        task.started = time.monotonic()
        task.signalled = False
        task.terminated_at = None
        again = f" (restart {task.restarts})" if task.restarts else ""
        print(f"[local {self.job_id}] task {task.task_id} started{again}, log {log}", flush=True)

    def watch_time(self, task: Task, now: float) -> None:
        """The time limit: the lead signal to the batch shell, then SIGTERM, then SIGKILL."""
        if task.proc is None or self.time_s is None:
            return
        elapsed = now - task.started
        if self.signal_name and not task.signalled and elapsed >= self.time_s - self.signal_lead:
            task.signalled = True
            _send(task.proc.pid, _signum(self.signal_name), group=False)
        if task.terminated_at is None and elapsed >= self.time_s:
            print(f"[local {self.job_id}] task {task.task_id}: time limit reached", flush=True)
            self.terminate(task, now)
        elif task.terminated_at is not None and now - task.terminated_at >= KILL_WAIT_S:
            _send(task.proc.pid, signal.SIGKILL, group=True)

    def terminate(self, task: Task, now: float) -> None:
        if task.proc is not None and task.terminated_at is None:
            task.terminated_at = now
            _send(task.proc.pid, signal.SIGTERM, group=True)

    def run(self) -> int:
        queue = deque(
            Task(
                task_id,
                str(int(self.job_id) + n) if self.job_id.isdigit() else f"{self.job_id}_{task_id}",
            )
            for n, task_id in enumerate(self.ids)
        )
        running: list[Task] = []
        failures = 0
        previous = _install_cancel(self)
        try:
            while queue or running:
                while (
                    queue and len(running) < self.limit and self.gpus_free() and not self.cancelled
                ):
                    task = queue.popleft()
                    self.start(task)
                    running.append(task)
                if self.cancelled and not running:
                    break
                time.sleep(POLL_S)
                now = time.monotonic()
                for task in list(running):
                    assert task.proc is not None
                    if self.cancelled:
                        self.terminate(task, now)
                    self.watch_time(task, now)
                    code = task.proc.poll()
                    if code is None:
                        continue
                    running.remove(task)
                    if self.free_gpus is not None:
                        self.free_gpus = sorted([*self.free_gpus, *task.gpus], key=_device_order)
                        task.gpus = []
                    took = now - task.started
                    asked = task.requeue_file is not None and task.requeue_file.exists()
                    if asked and self.requeue and not self.cancelled:
                        print(
                            f"[local {self.job_id}] task {task.task_id} requeued after {took:.1f} s",
                            flush=True,
                        )
                        task.restarts += 1
                        queue.appendleft(task)
                        continue
                    print(
                        f"[local {self.job_id}] task {task.task_id} exited {code} after {took:.1f} s",
                        flush=True,
                    )
                    failures += code != 0
        finally:
            _restore(previous)
            for path in self.tmp.iterdir():
                path.unlink()
            self.tmp.rmdir()
        if self.cancelled:
            return 128 + signal.SIGTERM
        return 1 if failures else 0


def _device_order(device: str) -> tuple[int, str]:
    return (int(device), "") if device.isdigit() else (1 << 30, device)


def _signum(name: str) -> int:
    return int(name) if name.isdigit() else int(signal.Signals[name])


def _send(pid: int, signum: int, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _install_cancel(array: LocalArray) -> dict[int, object]:
    """SIGINT/SIGTERM to the launcher cancel the array, as scancel would."""

    def cancel(signum: int, frame: FrameType | None) -> None:
        if not array.cancelled:
            print(f"[local {array.job_id}] cancelled: SIGTERM to every task", flush=True)
        array.cancelled = True

    previous: dict[int, object] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            previous[sig] = signal.signal(sig, cancel)
    return previous


def _restore(previous: dict[int, object]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)  # type: ignore[arg-type]


def run_array(script: Path, job_id: str, array: str | None = None) -> int:
    """Run every array task of ``script`` here; 0 when all exit 0."""
    return LocalArray(script, job_id, array).run()
