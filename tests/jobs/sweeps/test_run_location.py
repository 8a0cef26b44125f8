"""Finding a run's W&B data by its id (sweepkit.jobs.sweeps.wandb_run.location): where W&B's own
variables put it (every platform), live from the open files of the program's processes (Linux's
/proc), after the fact by name, never another sweep's run of the same id."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from wandb.proto.wandb_internal_pb2 import Record

from sweepkit.jobs.sweeps.wandb_run import location
from sweepkit.jobs.sweeps.wandb_run.location import RunLocator, link_into, open_logs, search
from sweepkit.jobs.sweeps.wandb_run.log import write_log
from sweepkit.jobs.sweeps.wandb_run.records import RunRecords


def fake_run(root: Path, run_id: str, sweep_id: str, acc: float) -> Path:
    """A W&B offline run folder with a run record and one history row (written with the
    transaction log writer that the sync tests check against wandb's own logs)."""

    folder = root / "wandb" / f"offline-run-20261204_120000-{run_id}"
    folder.mkdir(parents=True)
    run, row = Record(), Record()
    run.run.run_id, run.run.sweep_id = run_id, sweep_id
    item = row.history.item.add()
    item.key, item.value_json = "acc", str(acc)
    row.history.step.num = 1
    write_log(folder / f"run-{run_id}.wandb", [run, row])
    return folder


def test_search_by_name_takes_only_this_sweeps_run(tmp_path: Path) -> None:
    fake_run(tmp_path / "a", "r1", "other-sweep", 1.0)
    mine = fake_run(tmp_path / "b", "r1", "my-sweep", 2.0)
    fake_run(tmp_path / "b", "r2", "my-sweep", 3.0)
    found = search({tmp_path / "a", tmp_path / "b"}, "r1", "my-sweep")
    assert found == [mine / "run-r1.wandb"]


def test_a_linked_run_is_read_as_the_run_folders_own(tmp_path: Path) -> None:
    elsewhere = fake_run(tmp_path / "cwd", "r1", "s", 2.5)
    run_dir = tmp_path / "sweep" / "runs" / "r1"
    assert link_into(run_dir, elsewhere) and link_into(run_dir, elsewhere)  # idempotent
    records = RunRecords(run_dir)
    records.refresh(final=True)
    assert records.history("acc") == [(1, 2.5)]
    # a link to another run's folder is not this run's data
    other = fake_run(tmp_path / "cwd", "r2", "s", 9.0)
    (run_dir / "wandb" / other.name).symlink_to(other)
    records = RunRecords(run_dir)
    records.refresh(final=True)
    assert records.history("acc") == [(1, 2.5)]


@pytest.mark.system
def test_open_logs_are_found_in_the_programs_process_tree(tmp_path: Path) -> None:
    folder = fake_run(tmp_path, "r9", "s", 1.0)
    log = folder / "run-r9.wandb"
    # a child of the program holds the log open, as wandb-core does
    (tmp_path / "core.py").write_text(
        f"import time\nf = open({str(log)!r}, 'rb')\ntime.sleep(30)\n"
    )
    (tmp_path / "program.py").write_text(
        f"import subprocess, sys\nsubprocess.run([sys.executable, {str(tmp_path / 'core.py')!r}])\n"
    )
    program = subprocess.Popen([sys.executable, str(tmp_path / "program.py")])
    try:
        deadline = time.monotonic() + 20
        while not open_logs(program.pid, "r9") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert open_logs(program.pid, "r9") == [log]
        assert open_logs(program.pid, "r8") == []
        run_dir = tmp_path / "run"
        locator = RunLocator(run_dir, "r9", "s", program.pid, tmp_path)
        assert locator.poll()
        assert (run_dir / "wandb" / folder.name).resolve() == folder.resolve()
    finally:
        program.kill()
        program.wait()


@pytest.fixture
def no_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    """A platform without /proc (macOS): the scan off, and any look at /proc a failure."""

    def proc(*_: object) -> None:
        raise AssertionError("looked at /proc")

    monkeypatch.setattr(location, "PROC_SCAN", False)
    monkeypatch.setattr(location, "open_logs", proc)
    monkeypatch.setattr(location, "working_folders", proc)


@pytest.mark.usefixtures("no_proc")
def test_a_run_under_wandb_dir_is_found_without_proc(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "r1"
    earlier = fake_run(run_dir, "r1", "s", 1.0)  # a first attempt's run, before this one
    earlier.rename(earlier.with_name("offline-run-20261204_110000-r1"))
    locator = RunLocator(run_dir, "r1", "s", os.getpid(), tmp_path)
    assert not locator.poll(), "an earlier attempt's run is not this attempt's"
    fake_run(run_dir, "r1", "s", 2.0)  # where wandb puts it under WANDB_DIR=run_dir
    assert locator.poll()
    assert locator.linked == {run_dir / "wandb" / "offline-run-20261204_120000-r1"}
    locator.finish()


@pytest.mark.usefixtures("no_proc")
def test_without_proc_a_run_written_elsewhere_is_found_after_it_ends(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "r1"
    locator = RunLocator(run_dir, "r1", "s", os.getpid(), tmp_path / "cwd")
    elsewhere = fake_run(tmp_path / "cwd", "r1", "s", 2.5)  # wandb.init(dir=".")
    assert not locator.poll()
    locator.finish()
    assert (run_dir / "wandb" / elsewhere.name).resolve() == elsewhere.resolve()


WANDB_PROGRAM = """import wandb
run = wandb.init(config={"lr": 0.1})
run.log({"acc": 0.5})
run.finish()
"""


@pytest.mark.system
@pytest.mark.usefixtures("no_proc")
def test_a_real_wandb_run_is_found_from_wandb_dir_and_run_id_alone(tmp_path: Path) -> None:
    """What the agent sets (sweepkit.jobs.sweeps.agent.launch): wandb's own variables."""
    run_dir = tmp_path / "runs" / "r7"
    run_dir.mkdir(parents=True)
    (tmp_path / "program.py").write_text(WANDB_PROGRAM)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(WANDB_DIR=str(run_dir), WANDB_RUN_ID="r7", WANDB_MODE="offline", WANDB_SILENT="true")
    program = subprocess.Popen(
        [sys.executable, str(tmp_path / "program.py")], cwd=tmp_path, env=env
    )
    locator = RunLocator(run_dir, "r7", "", program.pid, tmp_path)
    seen = False
    while program.poll() is None:
        seen = seen or locator.poll()
        time.sleep(0.1)
    assert program.returncode == 0
    assert seen or locator.poll(), "found while it ran (or at once after)"
    records = RunRecords(run_dir)
    records.refresh(final=True)
    assert records.history("acc") == [(0, 0.5)]
