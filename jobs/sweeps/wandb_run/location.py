"""Where a run's program writes its W&B run, found by the run's id wherever that is, live.

First where W&B's own variables put it: the agent sets ``WANDB_DIR`` to the run folder and
``WANDB_RUN_ID`` to the run's id, so a program that leaves them alone writes its W&B run to
``RUN_DIR/wandb/offline-run-<time>-<id>/``, which is looked for by name on every platform. Then,
on Linux, the ``/proc`` scan below, for the programs that write elsewhere. Many real programs do: ``wandb.init(dir=...)`` wins over the
environment (wandb's settings take init arguments over ``WANDB_DIR``), PyTorch Lightning's
``WandbLogger`` passes ``dir=save_dir`` with ``save_dir="."``, some programs set ``WANDB_DIR``
themselves, and Hydra changes the working folder before ``wandb.init`` runs.

How wandb 0.31 lays a run out (``wandb/sdk/wandb_settings.py``): ``wandb_dir`` is
``<root_dir>/wandb`` (or ``<root_dir>/.wandb`` when that exists), the run folder (``sync_dir``)
``<wandb_dir>/<offline-run|run>-<time>-<run_id>[-<x_sync_dir_suffix>]``, and in it the transaction
log (``sync_file``) ``run-<run_id>.wandb``: the one name that always holds the run's id. The agent
sets ``WANDB_RUN_ID``, which wandb takes as the run's id whatever folder the program picks.

Why the open file of the program's wandb-core: the SDK starts its service (``wandb-core``, see
``wandb/sdk/lib/service/service_process.py``) as a child of the program, and wandb-core holds the
run's ``run-<id>.wandb`` open from ``wandb.init`` to ``run.finish``. So while the run trains, the
log is among the open files of the program's process tree, under its own name. That finds it
wherever it is, as soon as the run starts (hyperband and ``status --watch`` need it then), and it
cannot be another run's data: many runs may share one working folder, and their ``latest-run``
links and newest folders race, but no other run's wandb-core is a child of this program. The
alternatives are weaker: ``latest-run`` points at whichever run in that folder started last; a
search of folders by name needs to know the folders (``dir=`` can be anywhere).

Once found, the run's folder is linked into ``RUN_DIR/wandb/`` under its own name, so that every
reader (status in another process, the report, sync, an agent that resumes the run) finds it as if
the program had written it there. Without ``/proc`` (macOS) a run written elsewhere is found only
after the fact, as below. A program that ended before a poll saw its files is found after
the fact by name (``run-<id>.wandb``, its run record naming the sweep) under the working folders
it was seen in and the one it started in. So a program whose W&B run opens and closes between two
polls (0.25 s apart) outside those folders is not found; a training run stays open far longer.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sweepkit.jobs.sweeps.wandb_run.records import run_record

# a look at the open files costs a readlink per open file of the program's processes (a trainer
# with data loader workers holds hundreds): every poll while the program starts (a short one may
# live a second), then once a second, soon enough for hyperband, which acts per epoch. Working
# folders (one readlink per process) are noted at every poll, for the search after the fact.
EVERY_POLL_FOR_S = 30.0
SCAN_INTERVAL_S = 1.0
# Linux shows a process's open files and working folder under /proc; elsewhere there is no scan
PROC_SCAN = Path("/proc/self/fd").is_dir()


def log_name(run_id: str) -> str:
    return f"run-{run_id}.wandb"


def process_tree(root_pid: int) -> list[int]:
    """``root_pid`` and its descendants (Linux ``/proc/<pid>/task/<tid>/children``)."""
    found, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    todo += [int(c) for c in f.read().split()]
            except (OSError, ValueError):
                continue
    return found


def open_logs(root_pid: int, run_id: str) -> list[Path]:
    """The run's transaction logs held open by ``root_pid``'s process tree."""
    name = log_name(run_id)
    logs: list[Path] = []
    for pid in process_tree(root_pid):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.endswith("/" + name) and Path(target) not in logs:
                logs.append(Path(target))
    return logs


def working_folders(root_pid: int) -> set[Path]:
    """The working folders of ``root_pid``'s process tree now (where a ``dir="."`` run goes)."""
    folders = set()
    for pid in process_tree(root_pid):
        try:
            folders.add(Path(os.readlink(f"/proc/{pid}/cwd")))
        except OSError:
            continue
    return folders


def logs_in_run_dir(run_dir: Path, run_id: str) -> set[Path]:
    """The run's transaction logs under ``RUN_DIR/wandb`` (or ``.wandb``), where wandb writes a
    run whose program left ``WANDB_DIR`` and ``WANDB_RUN_ID`` as the agent set them, and where
    earlier attempts' runs (written there or linked) are."""
    name = log_name(run_id)
    return {
        log
        for wandb_dir in (run_dir / "wandb", run_dir / ".wandb")
        for log in wandb_dir.glob(f"*-{run_id}*/{name}")
    }


def search(roots: set[Path], run_id: str, sweep_id: str) -> list[Path]:
    """Transaction logs named for ``run_id`` under ``<root>/wandb`` or ``<root>/.wandb``, whose
    run record names ``sweep_id`` (two sweeps' runs in one folder could share an id)."""
    found = []
    for root in roots:
        for wandb_dir in (root / "wandb", root / ".wandb"):
            for log in sorted(wandb_dir.glob(f"*-{run_id}*/{log_name(run_id)}")):
                record = run_record(log)
                if record.get("run_id") == run_id and record.get("sweep_id") in ("", sweep_id):
                    found.append(log)
    return found


def link_into(run_dir: Path, folder: Path) -> bool:
    """Link the W&B run ``folder`` into ``RUN_DIR/wandb/`` under its own name (nothing to do
    when it is there already); True if it is there now."""
    wandb_dir = run_dir / "wandb"
    link = wandb_dir / folder.name
    try:
        if folder.resolve().parent == wandb_dir.resolve():
            return True
        if link.is_symlink() or link.exists():
            return link.resolve() == folder.resolve()
        wandb_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        link.symlink_to(folder.resolve(), target_is_directory=True)
    except OSError:
        return False
    return True


class RunLocator:
    """Finds one attempt of a run (its program started as ``pid``) and links it into the run
    folder: ``poll()`` while the program runs, ``finish()`` once it has exited."""

    def __init__(self, run_dir: Path, run_id: str, sweep_id: str, pid: int, start_cwd: Path):
        self.run_dir = run_dir
        self.run_id = run_id
        self.sweep_id = sweep_id
        self.pid = pid
        self.cwds = {start_cwd.absolute()}
        self.linked: set[Path] = set()  # this attempt's W&B run folders, in RUN_DIR/wandb now
        self._earlier = logs_in_run_dir(run_dir, run_id)  # earlier attempts' runs
        self._started = time.monotonic()
        self._scanned_at = 0.0

    def poll(self) -> bool:
        """Look where W&B's variables put the run, then (Linux) at the program's open files, once;
        True when this attempt's run is found (the caller stops polling then)."""
        if self.linked:
            return True
        for log in logs_in_run_dir(self.run_dir, self.run_id) - self._earlier:
            self.linked.add(log.parent)
        if self.linked or not PROC_SCAN:
            return bool(self.linked)
        self.cwds |= working_folders(self.pid)
        now = time.monotonic()
        if now - self._started > EVERY_POLL_FOR_S and now - self._scanned_at < SCAN_INTERVAL_S:
            return False
        self._scanned_at = now
        for log in open_logs(self.pid, self.run_id):
            if link_into(self.run_dir, log.parent):
                self.linked.add(log.parent)
        return bool(self.linked)

    def finish(self) -> None:
        """After the program exited: if no poll saw its run, look for it by name where the
        program worked."""
        if self.linked:
            return
        for log in search(self.cwds, self.run_id, self.sweep_id):
            if link_into(self.run_dir, log.parent):
                self.linked.add(log.parent)
