"""Finding a run's W&B data by its id (sweepkit.jobs.sweeps.wandb_run.location): live from the open files of the
program's processes, after the fact by name, never another sweep's run of the same id."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from wandb.proto.wandb_internal_pb2 import Record

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
