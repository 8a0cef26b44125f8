"""Huge grids and arrays (issue 28): ``sweep create`` warns above a size it states, ``submit``
keeps ``--array`` within the cluster's ``MaxArraySize`` (``scontrol show config``): ``auto`` is
split into arrays chained with ``--dependency=afterany``, an explicit spec above it is refused in
one line; and an ``--array`` with more tasks than a sweep has runs left is trimmed with one note.

golden/scontrol_show_config.txt is the real output of ``scontrol show config`` of the tests'
one-node SLURM (SLURM 23, Debian's slurm-wlm, December 2026); the SLURM test below checks that the
live output still reads the same way.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from slurm_fixture import (
    BASE,
    FAST_PROGRAM,
    Slurm,
    cluster,
    make_sweep,
    submitted_job,
    sweepkit,
)

from sweepkit.jobs.cli import main as sweepkit_main
from sweepkit.jobs.slurm import array
from sweepkit.jobs.slurm.cluster_limits import (
    DEFAULT_MAX_ARRAY_SIZE,
    parse_max_array_size,
    read_array_limit,
)
from sweepkit.jobs.sweeps.create import LARGE_GRID
from sweepkit.jobs.sweeps.store import open_sweep

GOLDEN = Path(__file__).resolve().parent / "golden" / "scontrol_show_config.txt"


def grid(tmp_path: Path, values_per_parameter: int, parameters: int) -> Path:
    values = list(range(values_per_parameter))
    definition = {
        "method": "grid",
        "metric": {"name": "acc", "goal": "maximize"},
        "program": "train.py",
        "parameters": {f"p{i}": {"values": values} for i in range(parameters)},
    }
    (tmp_path / "train.py").write_text("import wandb\n")
    path = tmp_path / f"grid-{values_per_parameter}x{parameters}.yaml"
    path.write_text(yaml.safe_dump(definition))
    return path


def create(
    tmp_path: Path, definition: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, str]:
    root = tmp_path / "sweeps"
    before = set(root.iterdir()) if root.exists() else set()
    assert sweepkit_main(["sweep", "create", str(definition), "--root", str(root)]) == 0
    (folder,) = set(root.iterdir()) - before
    return folder, capsys.readouterr().err


def dry_run(tmp_path: Path, folder: Path, *extra: str) -> int:
    config = tmp_path / "cluster.yaml"
    config.write_text(yaml.safe_dump({"profiles": {"t": {**BASE, "concurrency": 4}}}))
    argv = ["submit", str(folder), "--profile", "t", "--cluster-config", str(config)]
    return sweepkit_main([*argv, "--dry-run", *extra])


@pytest.fixture(scope="module")
def ten_million(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10^7-point grid's sweep folder (the issue's)."""
    tmp_path = tmp_path_factory.mktemp("huge")
    root = tmp_path / "sweeps"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)  # where the sweep's program is
        definition = str(grid(tmp_path, 10, 7))
        assert sweepkit_main(["sweep", "create", definition, "--root", str(root)]) == 0
    (folder,) = root.iterdir()
    return folder


# ----- sweep create ---------------------------------------------------------------------------
def test_create_warns_above_the_stated_grid_size_once(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, err = create(tmp_path, grid(tmp_path, 10, 5), capsys)  # 100,000 points
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "100,000 points, above 10,000" in warnings[0], err
    assert "MaxArraySize" in warnings[0] and "method: random with run_cap" in warnings[0]
    _, err = create(tmp_path, grid(tmp_path, 10, 4), capsys)  # 10,000: at the size, no warning
    assert LARGE_GRID == 10_000 and "warning:" not in err, err


def test_create_says_one_run_not_one_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, err = create(tmp_path, grid(tmp_path, 1, 1), capsys)
    assert "(grid, 1 run)" in err, err
    _, err = create(tmp_path, grid(tmp_path, 2, 1), capsys)
    assert "(grid, 2 runs)" in err, err


# ----- MaxArraySize ---------------------------------------------------------------------------
def test_max_array_size_is_read_from_scontrols_real_output():
    text = GOLDEN.read_text()
    assert parse_max_array_size(text) == 1001
    assert parse_max_array_size(text.replace("= 1001", "= 40001")) == 40001
    # MaxArraySize alone: not MaxJobCount, nor a value that only contains the name
    assert parse_max_array_size("MaxJobCount             = 10000\n") is None


def test_without_scontrol_slurms_default_stands_in_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no scontrol
    limit = read_array_limit()
    assert limit.max_array_size == DEFAULT_MAX_ARRAY_SIZE == 1001 and limit.highest_index == 1000
    assert "no scontrol" in limit.source


def test_auto_arrays_split_within_max_array_size_and_ranges_are_never_listed():
    # 2,500 tasks under MaxArraySize 1001 (ids 1-1000): two full arrays and the rest
    assert array.auto_arrays(2500, 1, 1, 4, max_tasks=1000) == ["1-1000%4", "1-1000%4", "1-500%4"]
    assert array.auto_arrays(2000, 1, 1, 4, max_tasks=1000) == ["1-1000%4"] * 2  # no empty one
    assert array.auto_arrays(3, 1, 1, 4, max_tasks=1000) == ["1-3%3"]
    assert array.auto_arrays(9, 1, 1, 4, max_tasks=2) == ["1-2%2"] * 4 + ["1-1%1"]
    assert array.auto_arrays(7, 2, 2, 4, max_tasks=1) == ["1-1%1"] * 2  # 4 runs a task
    # a sweep far above the arrays one submit chains: never listed past MAX_ARRAYS + 1
    assert len(array.auto_arrays(10**12, 1, 1, 4, max_tasks=1000)) == array.MAX_ARRAYS + 1
    ranges = array._parts("1-10000000:3,2,5")
    assert array._compact(array._first_ids(ranges, 4)) == "1-2,4-5"
    assert array._compact([1, 2, 3, 7, 9, 10]) == "1-3,7,9-10"


@given(
    remaining=st.integers(1, 10**9),
    runs_per_task=st.integers(1, 50),
    agents_per_task=st.integers(1, 8),
    concurrency=st.integers(1, 64),
    max_array_size=st.integers(2, 4_000_001),  # SLURM's own bounds on MaxArraySize
)
def test_split_arrays_cover_every_run_within_the_limit_and_the_throttle(
    remaining, runs_per_task, agents_per_task, concurrency, max_array_size
):
    highest = max_array_size - 1
    arrays = array.auto_arrays(remaining, runs_per_task, agents_per_task, concurrency, highest)
    tasks = -(-remaining // (runs_per_task * agents_per_task))
    if len(arrays) > array.MAX_ARRAYS:  # refused by submit: never listed past one more
        assert len(arrays) == array.MAX_ARRAYS + 1 and tasks > array.MAX_ARRAYS * highest
        return
    sizes = []
    for spec in arrays:  # read as sbatch reads it, without listing up to 4 million ids
        match = re.fullmatch(r"1-(\d+)%(\d+)", spec)
        assert match, spec
        size, limit = int(match.group(1)), int(match.group(2))
        assert 1 <= size < max_array_size and limit == min(concurrency, size)
        sizes.append(size)
    assert sum(sizes) == tasks  # every run has a task, and no task is one too many
    assert all(size == highest for size in sizes[:-1])  # only the last is short


@pytest.mark.system  # submit runs git for the script's revision
def test_ten_million_points_are_refused_in_one_line_that_names_the_runs_per_task_that_fits(
    tmp_path, ten_million, capsys, monkeypatch
):
    monkeypatch.chdir(ten_million.parent.parent)  # where the sweep's program is
    limit = read_array_limit()  # this machine's: its scontrol, else SLURM's default
    assert dry_run(tmp_path, ten_million) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.strip().count("\n") == 0 and "Traceback" not in err, err
    fits = -(-(10**7) // (array.MAX_ARRAYS * limit.highest_index))
    assert "10000000 runs left need 10000000 array tasks" in err
    assert f"MaxArraySize {limit.max_array_size}" in err and f"--runs-per-task {fits} " in err
    assert dry_run(tmp_path, ten_million, "--runs-per-task", str(fits)) == 0  # and it does fit
    out = capsys.readouterr().out
    assert out.count("# sbatch command ") <= array.MAX_ARRAYS
    assert "--array=1-10000000" not in out


def fake_scontrol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_array_size: int) -> None:
    """A cluster whose MaxArraySize is ``max_array_size``: an ``scontrol`` first on PATH that
    prints the golden ``scontrol show config`` with that value. (The tests' real SLURM keeps
    SLURM's default, which the other tests read: lowering it there would change theirs.)"""
    folder = tmp_path / "bin"
    folder.mkdir(parents=True)
    text = GOLDEN.read_text().replace("= 1001", f"= {max_array_size}")
    (folder / "config.txt").write_text(text)
    scontrol = folder / "scontrol"
    scontrol.write_text(f"#!/bin/sh\ncat {folder / 'config.txt'}\n")
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")


@pytest.mark.system  # submit runs git for the script's revision, and scontrol
def test_a_sweep_above_max_array_size_is_split_into_chained_arrays(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_scontrol(tmp_path, monkeypatch, 4)  # ids 1-3
    folder, _ = create(tmp_path, grid(tmp_path, 8, 1), capsys)  # 8 runs: 3 + 3 + 2 tasks
    assert dry_run(tmp_path, folder) == 0
    out, err = capsys.readouterr()
    assert "note:" not in err and "warning:" not in err, err
    script = [line for line in out.splitlines() if line.startswith("#SBATCH --array=")]
    assert script == ["#SBATCH --array=1-3%3"]  # the first array's script
    commands = [line for line in out.splitlines() if line.startswith("# sbatch command ")]
    assert commands == [
        "# sbatch command 1/3: sbatch --parsable SCRIPT_1  (#SBATCH --array=1-3%3; JOBID_1 from it)",
        "# sbatch command 2/3: sbatch --parsable --dependency=afterany:JOBID_1 SCRIPT_2  "
        "(#SBATCH --array=1-3%3; JOBID_2 from it)",
        "# sbatch command 3/3: sbatch --parsable --dependency=afterany:JOBID_2 SCRIPT_3  "
        "(#SBATCH --array=1-2%2; JOBID_3 from it)",
    ]
    assert "MaxArraySize 4 (scontrol show config) allows at most 3 tasks an array" in out
    # each array's %N bounds it, and the chain keeps one array at a time
    assert "at most 3 tasks run at once" in out
    # an explicit --array above the limit: refused in one line, not split
    assert dry_run(tmp_path, folder, "--array", "1-8") == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "index 8 is above this cluster's MaxArraySize 4" in err
    assert "use indices up to 3, or --array auto" in err
    fake_scontrol(tmp_path / "none", monkeypatch, 0)  # a cluster that takes no arrays
    assert dry_run(tmp_path, folder) == 2
    assert "MaxArraySize is 0" in capsys.readouterr().err


@pytest.mark.system  # submit runs git for the script's revision
def test_a_spec_above_max_array_size_is_refused_in_one_line(
    tmp_path, ten_million, capsys, monkeypatch
):
    monkeypatch.chdir(ten_million.parent.parent)
    limit = read_array_limit()
    spec = f"1-{limit.max_array_size}"
    assert dry_run(tmp_path, ten_million, "--array", spec) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "Traceback" not in err, err
    assert f"index {limit.max_array_size} is above this cluster's MaxArraySize" in err


@pytest.mark.system  # submit runs git for the script's revision
def test_an_array_larger_than_the_runs_left_is_trimmed_with_one_note(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder, _ = create(tmp_path, grid(tmp_path, 2, 1), capsys)
    assert dry_run(tmp_path, folder, "--array", "1-2000") == 0
    out, err = capsys.readouterr()
    assert "#SBATCH --array=1-2%4\n" in out, err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "2 runs left" in notes[0] and "submitting 1-2" in notes[0]
    assert dry_run(tmp_path, folder, "--array", "3,1-4:2%1") == 0  # ids 1, 3: nothing to trim
    out, err = capsys.readouterr()
    assert "#SBATCH --array=3,1-4:2%1\n" in out and "note:" not in err, err


@pytest.mark.slurm
def test_max_array_size_comes_from_the_live_clusters_scontrol(slurm: Slurm, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", slurm.conf)
    live = slurm.run("scontrol", "show", "config").stdout
    limit = read_array_limit()
    assert limit.source == "scontrol show config"
    assert limit.max_array_size == parse_max_array_size(live) == 1001  # slurm-up.sh sets none
    assert os.environ["SLURM_CONF"] == slurm.conf


def task_times(slurm: Slurm, job_id: str) -> list[tuple[datetime, datetime]]:
    """(StartTime, EndTime) of every task of an ended array (`scontrol -o show job`)."""
    out = slurm.run("scontrol", "-o", "show", "job", job_id).stdout
    times = []
    for line in out.splitlines():
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        assert fields["JobState"] == "COMPLETED", line
        times.append(
            (datetime.fromisoformat(fields["StartTime"]), datetime.fromisoformat(fields["EndTime"]))
        )
    return times


@pytest.mark.slurm
def test_a_split_sweep_runs_its_arrays_one_after_another_on_real_slurm(
    slurm: Slurm, tmp_path: Path
) -> None:
    """Real sbatch takes the chain, and afterany on an array's job id holds the next array until
    every task of it has ended: the first array's runs are 4 s and 0.25 s long, and the second
    starts after the longer. Only MaxArraySize is a stand-in: an scontrol first on PATH that
    prints the live cluster's config with MaxArraySize = 3 (ids 1-2)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    real = shutil.which("scontrol", path=os.environ["PATH"])
    fake = folder / "scontrol"
    fake.write_text(f"#!/bin/sh\n{real} \"$@\" | sed 's/^MaxArraySize *=.*/MaxArraySize = 3/'\n")
    fake.chmod(0o755)
    program = tmp_path / "fast_program.py"
    program.write_text(FAST_PROGRAM)
    ref = make_sweep(
        tmp_path,
        {
            "program": str(program),
            "command": ["${env}", "${interpreter}", "${program}", "${args}"],
            "method": "grid",
            "metric": {"name": "Validation Accuracy", "goal": "maximize"},
            "parameters": {"steps": {"values": [16, 1, 2, 3, 4]}, "step_s": {"value": 0.25}},
        },
    )
    env = {**slurm.env(), "PATH": f"{folder}:{os.environ['PATH']}"}
    config = cluster(tmp_path, t=BASE)
    result = sweepkit("submit", ref, "--profile", "t", "--cluster-config", config, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = (Path(ref) / "slurm" / "submissions.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    ids = [str(entry["job_id"]) for entry in entries]
    assert [entry["array"] for entry in entries] == ["1-2%2", "1-2%2", "1-1%1"]
    assert (
        result.stdout.startswith("Submitted 3 array jobs ")
        and f"scancel {' '.join(ids)}" in result.stdout
    )
    assert "--dependency" not in " ".join(entries[0]["sbatch_command"])
    for before, entry in zip(ids, entries[1:], strict=False):
        assert f"--dependency=afterany:{before}" in entry["sbatch_command"]
    assert submitted_job(ref)["job_id"] == ids[-1]
    for job in ids:
        slurm.wait_done(job, timeout=180)
    spans = [task_times(slurm, job) for job in ids]
    assert [len(tasks) for tasks in spans] == [2, 2, 1]
    for earlier, later in zip(spans, spans[1:], strict=False):
        assert min(start for start, _ in later) >= max(end for _, end in earlier), spans
    runs = open_sweep(Path(ref)).runs()
    assert sorted(r.state for r in runs) == ["finished"] * 5
    assert sorted(r.slurm["array_job_id"] for r in runs) == sorted(
        [ids[0]] * 2 + [ids[1]] * 2 + [ids[2]]
    )
