"""Faults on real filesystems: every write path on a full disk (a small tmpfs filled up) and on a
read-only one (a read-only bind mount) fails in one line, exit 2, naming the path, with no lock,
temp file or half-made folder left, an intact journal, and finished runs still finished.

The mounts are real (CI runs as root); where mount is not allowed the tests skip and say why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sweep_fixtures import REPO, grid, sweepkit, write_program
from wandb_program import PROGRAM

from sweepkit.jobs.sweeps.store.journal import Journal, encode

# After its W&B run has finished (exit record written), the program fills the disk: what a full
# scratch quota does between the program's end and the agent's end record.
FILLS_THE_DISK = (
    PROGRAM
    + r"""
ballast = os.environ.get("FAULT_BALLAST")
if ballast:
    try:
        with open(ballast, "wb") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    except OSError:
        pass
"""
)


def _mount(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *argv], capture_output=True, text=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MB tmpfs: real ENOSPC once filled."""
    where = tmp_path / "disk"
    where.mkdir()
    made = _mount("-t", "tmpfs", "-o", "size=24m", "tmpfs", str(where))
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {made.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte; returns the ballast file (remove it to free the space)."""
    ballast = disk / f"ballast-{uuid.uuid4().hex[:6]}"
    try:
        with open(ballast, "wb") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    except OSError:
        pass  # full
    return ballast


@pytest.fixture
def read_only() -> Iterator[list[Path]]:
    """Call ``.append(path)``-style: each folder handed to ``make_read_only`` is bind-mounted
    read-only over itself (EROFS on every write) until the test ends."""
    mounted: list[Path] = []
    yield mounted
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def make_read_only(path: Path, mounted: list[Path]) -> None:
    bound = _mount("--bind", str(path), str(path))
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here (needs root): {bound.stderr.strip()}")
    mounted.append(path)
    ro = _mount("-o", "remount,bind,ro", str(path))
    if ro.returncode != 0:
        pytest.skip(f"cannot remount read-only here: {ro.stderr.strip()}")


def one_line_exit_2(result: subprocess.CompletedProcess[str], *words: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def leftovers(root: Path) -> list[str]:
    """Temp files, half-made folders and lock files under ``root``."""
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.name.endswith((".tmp", ".creating"))
        or ".creating" in p.name
        or p.name == "lock"
        or p.name.startswith("lock|")
    )


def journal_intact(sweep: Path) -> list[dict]:
    data = (sweep / "journal.jsonl").read_bytes()
    assert data == b"" or data.endswith(b"\n"), "no torn last line"
    records = Journal(sweep / "journal.jsonl").read_new()
    assert len(records) == data.count(b"\n"), "every line is a whole record"
    return records


def definition(tmp_path: Path, program: Path, values: list[float], **extra: object) -> Path:
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({**grid({"lr": values}, program), **extra}))
    return spec


# ----- sweep create ----------------------------------------------------------------------------
@pytest.mark.system  # starts processes
def test_create_on_a_full_disk_and_a_read_only_one(
    tmp_path: Path, small_disk: Path, read_only: list[Path]
) -> None:
    spec = definition(tmp_path, write_program(tmp_path), [0.1])
    (small_disk / "sweeps").mkdir()
    fill(small_disk)
    full = sweepkit(
        "sweep", "create", str(spec), "--root", str(small_disk / "sweeps"), cwd=tmp_path
    )
    one_line_exit_2(full, "no space left on the device", str(small_disk / "sweeps"))
    assert list((small_disk / "sweeps").iterdir()) == [], "no half-made sweep folder"

    ro = tmp_path / "ro"
    (ro / "sweeps").mkdir(parents=True)
    make_read_only(ro, read_only)
    refused = sweepkit("sweep", "create", str(spec), "--root", str(ro / "sweeps"), cwd=tmp_path)
    line = one_line_exit_2(refused, str(ro / "sweeps"), "read-only")
    assert "free space" not in line, "freeing space does not help a read-only folder"
    assert list((ro / "sweeps").iterdir()) == []


# ----- the agent: claim, heartbeat, end record ---------------------------------------------------
def _sweep_on(disk: Path, tmp_path: Path, values: list[float], lease: str = "2") -> Path:
    program = tmp_path / "prog.py"
    program.write_text(FILLS_THE_DISK)
    spec = definition(
        tmp_path, program, values, parameters={"lr": {"values": values}, "epochs": {"value": 2}}
    )
    made = sweepkit(
        "sweep", "create", str(spec), "--root", str(disk / "sweeps"), "--lease", lease, cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    return Path(made.stdout.strip())


@pytest.mark.system  # starts processes
def test_a_full_disk_before_the_end_record_loses_no_finished_run(
    tmp_path: Path, small_disk: Path
) -> None:
    """The program finishes (its W&B run complete), then the disk fills before the agent writes
    the end record. The agent says so in one line and exits 2; once space is back, status shows
    the run finished (from its W&B exit record) with one warning, and the next agent does not run
    it again."""
    sweep = _sweep_on(small_disk, tmp_path, [0.5])
    ballast = small_disk / "ballast"
    env = {"FAULT_BALLAST": str(ballast), "WANDB_SILENT": "true"}
    agent = sweepkit("agent", "--count", "1", str(sweep), cwd=tmp_path, env=env, timeout=300)
    line = one_line_exit_2(agent, "end record could not be written", "no space left on the device")
    assert str(sweep) in line
    assert leftovers(sweep) == [], "no lock or temp file left behind"
    records = journal_intact(sweep)
    assert [r["t"] for r in records] == ["claim"], "the end record is not half-written"

    ballast.unlink()  # space is back
    status = sweepkit("status", str(sweep), "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    (run,) = json.loads(status.stdout)["runs"]
    assert run["state"] == "finished" and run["metric"] == pytest.approx(45.0)
    warnings = [w for w in status.stderr.splitlines() if "warning" in w]
    assert len(warnings) == 1 and "W&B exit record says finished" in warnings[0], status.stderr

    again = sweepkit("agent", str(sweep), cwd=tmp_path, env=env, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "sweep complete: 1 of 1 runs done (1 finished)" in again.stdout, again.stdout
    assert "starting run" not in again.stdout and "resuming run" not in again.stdout
    ends = [r for r in journal_intact(sweep) if r["t"] == "end"]
    assert [(e["state"], e.get("reconciled_from")) for e in ends] == [
        ("finished", "its W&B exit record")
    ]
    assert len([r for r in journal_intact(sweep) if r["t"] == "claim"]) == 1, "never run twice"


@pytest.mark.system  # starts processes
def test_an_agent_on_a_full_or_read_only_sweep_claims_nothing(
    tmp_path: Path, small_disk: Path, read_only: list[Path]
) -> None:
    sweep = _sweep_on(small_disk, tmp_path, [0.1, 0.2])
    ballast = fill(small_disk)
    full = sweepkit("agent", str(sweep), cwd=tmp_path, timeout=120)
    one_line_exit_2(full, "no space left on the device")
    assert leftovers(sweep) == [] and journal_intact(sweep) == []
    assert list((sweep / "runs").iterdir()) == [] and list((sweep / "claims").iterdir()) == []
    ballast.unlink()

    make_read_only(sweep, read_only)
    refused = sweepkit("agent", str(sweep), cwd=tmp_path, timeout=120)
    one_line_exit_2(refused, str(sweep))
    assert journal_intact(sweep) == []


def free_one_page(ballast: Path) -> None:
    """Give back exactly one page (4 KiB) of a filled tmpfs: room for one small file's data."""
    os.truncate(ballast, ballast.stat().st_size - 4096)


@pytest.mark.system  # starts processes
def test_a_claim_with_no_room_for_its_record_takes_back_its_run_folder(
    tmp_path: Path, small_disk: Path
) -> None:
    """One page free: the lock is taken (its claim file uses the page), then the claim record
    does not fit. The claim takes back the run folder it made and lets the lock go."""
    sweep = _sweep_on(small_disk, tmp_path, [0.1])
    ballast = fill(small_disk)
    free_one_page(ballast)
    full = sweepkit("agent", str(sweep), cwd=tmp_path, timeout=120)
    one_line_exit_2(full, "no space left on the device", str(sweep / "journal.jsonl"))
    assert leftovers(sweep) == [] and journal_intact(sweep) == []
    assert list((sweep / "runs").iterdir()) == [], "no half-made run folder"


@pytest.mark.system  # starts processes
def test_a_journal_append_that_only_partly_fits_is_taken_back(small_disk: Path) -> None:
    path = small_disk / "journal.jsonl"
    first = {"t": "claim", "run": "a", "k": 0}
    path.write_bytes(encode(first))
    ballast = fill(small_disk)
    free_one_page(ballast)
    journal = Journal(path)
    with pytest.raises(OSError) as err:
        journal.append_and_read([{"t": "end", "run": "a", "k": 0, "pad": "x" * 20000}])  # > a page
    assert err.value.errno == 28 and err.value.filename == str(path)
    assert path.read_bytes() == encode(first), "what part of the record fitted is taken back"


# ----- a torn end record ---------------------------------------------------------------------------
@pytest.mark.system  # starts processes
def test_a_torn_end_record_leaves_a_finished_run_finished(tmp_path: Path) -> None:
    """A node dies while appending the end record: the journal's last line is cut mid-line."""
    program = tmp_path / "prog.py"
    program.write_text(PROGRAM)
    spec = definition(
        tmp_path, program, [0.5], parameters={"lr": {"values": [0.5]}, "epochs": {"value": 2}}
    )
    made = sweepkit("sweep", "create", str(spec), "--root", str(tmp_path / "sweeps"), cwd=tmp_path)
    sweep = Path(made.stdout.strip())
    done = sweepkit("agent", str(sweep), cwd=tmp_path, env={"WANDB_SILENT": "true"}, timeout=300)
    assert done.returncode == 0 and "1 finished" in done.stdout, done.stdout + done.stderr
    journal = sweep / "journal.jsonl"
    data = journal.read_bytes()
    last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    assert b'"t":"end"' in last
    journal.write_bytes(data[: len(data) - len(last) // 2 - 1])  # cut mid-line, no newline

    status = sweepkit("status", str(sweep), "--json", cwd=tmp_path)
    (run,) = json.loads(status.stdout)["runs"]
    assert run["state"] == "finished" and run["metric"] == pytest.approx(45.0)
    warnings = [w for w in status.stderr.splitlines() if "warning" in w]
    assert len(warnings) == 1 and "says finished" in warnings[0], status.stderr
    again = sweepkit("agent", str(sweep), cwd=tmp_path, timeout=300)
    assert again.returncode == 0 and "sweep complete: 1 of 1 runs done (1 finished)" in again.stdout
    assert "starting run" not in again.stdout and "resuming run" not in again.stdout


# ----- submit, report, sync ---------------------------------------------------------------------
def _finished_sweep(tmp_path: Path, root: Path) -> Path:
    """Two finished runs of the plain W&B script (W&B offline runs, for sync to upload)."""
    program = tmp_path / "prog.py"
    program.write_text(PROGRAM)
    values = [0.1, 0.2]
    spec = definition(
        tmp_path, program, values, parameters={"lr": {"values": values}, "epochs": {"value": 1}}
    )
    made = sweepkit("sweep", "create", str(spec), "--root", str(root), cwd=tmp_path)
    sweep = Path(made.stdout.strip())
    done = sweepkit("agent", str(sweep), cwd=tmp_path, env={"WANDB_SILENT": "true"}, timeout=300)
    assert done.returncode == 0 and "2 finished" in done.stdout, done.stdout + done.stderr
    return sweep


def _cluster(tmp_path: Path) -> str:
    path = tmp_path / "cluster.yaml"
    profile = {"partition": "debug", "time": "00:10:00", "concurrency": 1, "runtime": "none"}
    path.write_text(yaml.safe_dump({"profiles": {"t": profile}}))
    return str(path)


@pytest.mark.system  # starts processes
def test_submit_report_and_sync_on_a_full_disk(tmp_path: Path, small_disk: Path) -> None:
    sweep = _finished_sweep(tmp_path, small_disk / "sweeps")
    before = (sweep / "journal.jsonl").read_bytes()
    ballast = fill(small_disk)

    submit = sweepkit(
        "submit", str(sweep), "--profile", "t", "--cluster-config", _cluster(tmp_path),
        "--launcher", "local", "--array", "1-1", cwd=tmp_path,
    )  # fmt: skip
    one_line_exit_2(submit, "no space left on the device", "nothing was submitted")
    assert not (sweep / "slurm").exists(), "no half-made slurm/ folder"

    out = small_disk / "report" / "r.html"
    report = sweepkit("report", str(sweep), "--out", str(out), cwd=tmp_path)
    one_line_exit_2(report, str(out))
    assert not out.exists()

    # W&B's cloud is unreachable here: a well-formed key passes sync's login check, and the copy
    # that sync makes of each run (without the local sweep id) is what meets the full disk
    sync = sweepkit(
        "sync", str(sweep), "--project", "p", cwd=tmp_path, env={"WANDB_API_KEY": "k" * 40}
    )
    one_line_exit_2(sync, "no space left on the device", "rerun sync")
    assert not (sweep / ".sync").exists() or not any((sweep / ".sync").rglob("*.wandb"))
    assert not (sweep / "synced.json").exists()

    ballast.unlink()
    assert leftovers(small_disk) == []
    assert (sweep / "journal.jsonl").read_bytes() == before
    status = json.loads(sweepkit("status", str(sweep), "--json", cwd=tmp_path).stdout)
    assert status["counts"]["finished"] == 2, "finished runs are still finished"


@pytest.mark.system  # starts processes
def test_submit_and_report_on_a_read_only_sweep(tmp_path: Path, read_only: list[Path]) -> None:
    sweep = _finished_sweep(tmp_path, tmp_path / "sweeps")
    make_read_only(sweep, read_only)
    submit = sweepkit(
        "submit", str(sweep), "--profile", "t", "--cluster-config", _cluster(tmp_path),
        "--launcher", "local", "--array", "1-1", cwd=tmp_path,
    )  # fmt: skip
    line = one_line_exit_2(submit, "read-only", str(sweep / "slurm"), "nothing was submitted")
    assert "free space" not in line, "freeing space does not help a read-only folder"
    report = sweepkit("report", str(sweep), "--out", str(sweep / "r.html"), cwd=tmp_path)
    one_line_exit_2(report, str(sweep / "r.html"))
    status = json.loads(sweepkit("status", str(sweep), "--json", cwd=tmp_path).stdout)
    assert status["counts"]["finished"] == 2


# ----- the trainer's checkpoint ----------------------------------------------------------------
@pytest.mark.system  # starts processes
def test_a_checkpoint_on_a_full_disk_is_one_line_and_leaves_no_temp_file(
    tmp_path: Path, small_disk: Path
) -> None:
    """ResNet-18's checkpoint (134 MB with Adam state) does not fit in the 24 MB disk."""
    run_dir = small_disk / "run"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "SLURM_", "SWEEPKIT_"))
    }
    sets = ["wandb.mode=disabled", "num_epochs=1", "limit_train_batches=2"]
    result = subprocess.run(
        [sys.executable, "-m", "sweepkit.train", "--config", "config/presets/digits.yaml",
         "--run-dir", str(run_dir), *sum((["--set", s] for s in sets), [])],
        cwd=REPO, env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    line = one_line_exit_2(result, "no space left on the device", "rerun to resume")
    assert str(run_dir / "checkpoints") in line, line
    assert leftovers(small_disk) == [] and not list(run_dir.rglob("*.pt"))
