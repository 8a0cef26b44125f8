"""The reader of a run's W&B records against W&B's own reader (``wandb leet inspect``, in the
wandb-core binary) on the same files, written by a real wandb 0.31 offline run of a plain script;
and the reader's incremental reads: a log read as it grows, a torn tail, a corrupt chunk; the
writer (the reader's inverse) and the copy ``sweepkit sync`` uploads of a run that names the local
sweep id, read by W&B's own reader."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from wandb_program import expected, write_wandb_program

from sweepkit.jobs.sweeps.sync_copy import write_copy
from sweepkit.jobs.sweeps.wandb_run.log import (
    BLOCK,
    CHUNK_HEADER,
    FIRST,
    HEADER,
    LAST,
    MIDDLE,
    TransactionLog,
    decode,
    encode,
    write_log,
)
from sweepkit.jobs.sweeps.wandb_run.metrics import summary_number
from sweepkit.jobs.sweeps.wandb_run.records import RunRecords, Segment, segment_folders

WANDB_CLI = str(Path(sys.executable).parent / "wandb")


def run_program(folder: Path, sweep_id: str = "", **values: Any) -> Path:
    """Run the plain W&B script offline in ``folder`` with ``values`` in its wandb.config (and
    ``sweep_id`` as WANDB_SWEEP_ID, if any), as an agent starts it; returns the run folder
    (WANDB_DIR)."""
    program = write_wandb_program(folder)
    params = folder / "params.yaml"
    params.write_text(yaml.safe_dump({k: {"value": v} for k, v in values.items()}))
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(folder),
        "WANDB_SILENT": "true",
        "WANDB_SWEEP_PARAM_PATH": str(params),
        "WANDB_RUN_ID": "testrun1",
    }
    env.pop("WANDB_SWEEP_ID", None)
    env.update({"WANDB_SWEEP_ID": sweep_id} if sweep_id else {})
    result = subprocess.run(
        [sys.executable, str(program)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return folder


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run with nested keys, a define_metric summary and 400 epochs (the log spans blocks)."""
    folder = tmp_path_factory.mktemp("wandb-run")
    return run_program(folder, lr=0.5, epochs=400, shape="peak", summary_max=1, hidden_units=64)


def leet(*args: str) -> str:
    result = subprocess.run(
        [WANDB_CLI, "leet", "inspect", *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.system  # starts processes
def test_reader_agrees_with_wandb_leet_inspect(logged_run: Path) -> None:
    (folder,) = segment_folders(logged_run)
    (log,) = folder.glob("run-*.wandb")
    assert log.stat().st_size > 3 * BLOCK, "the log spans several 32 KiB blocks"
    records = RunRecords(logged_run)
    records.refresh()
    theirs = json.loads(leet("--summary", "--json", str(log)))
    assert theirs["state"] == "finished" and records.exit_code == theirs["exit_code"] == 0
    assert records.run["run_id"] == theirs["run_id"] == "testrun1"
    assert records.config == theirs["config"]
    assert records.config["hidden_units"] == 64 and records.config["lr"] == 0.5
    ours = records.summary
    ours.pop("_wandb", None)
    assert ours == theirs["summary"]
    assert theirs["summary"]["Validation Accuracy"] == {"max": 50.0}
    assert records.rows[-1]["_step"] == theirs["step"] == 400

    history = [json.loads(line) for line in leet("--json", str(log)).splitlines()]
    rows = [h["history"] for h in history if h.get("type") == "history"]
    assert [r["step"]["num"] for r in rows] == [r["_step"] for r in records.rows]
    assert [r["item"] for r in rows] == records.rows
    assert [v for _, v in records.history("Validation Accuracy")] == expected(0.5, 400, "peak")


@pytest.mark.system  # starts processes
def test_a_log_read_as_it_grows_gives_each_record_once(logged_run: Path, tmp_path: Path) -> None:
    """Appended in pieces that cut chunks, records and block trailers: each poll reads only the
    new bytes and stops at the last complete record; the end result is the full read's."""
    (source,) = segment_folders(logged_run)
    (log,) = source.glob("run-*.wandb")
    data = log.read_bytes()
    growing = tmp_path / "wandb" / source.name / log.name
    growing.parent.mkdir(parents=True)
    growing.write_bytes(b"")
    records = RunRecords(tmp_path)
    seen_steps: list[int] = []
    for cut in [3, 7, 100, 5000, BLOCK - 3, BLOCK + 1, 2 * BLOCK + 5, 70000, len(data) - 10]:
        with open(growing, "r+b") as f:
            f.seek(0, 2)
            f.write(data[f.tell() : cut])
        records.refresh()
        segment = records.segments[0] if records.segments else None
        if segment is not None:
            assert segment.log.offset <= cut
            seen_steps = list(segment.history)
    assert seen_steps and seen_steps == sorted(set(seen_steps)), "no step twice, in order"
    assert records.exit_code is None, "the exit record is in the last 10 bytes, not read yet"
    with open(growing, "ab") as f:
        f.write(data[len(data) - 10 :])
    assert records.refresh() is True and records.refresh() is False, "a poll with nothing new"
    full = RunRecords(logged_run)
    full.refresh()
    assert records.rows == full.rows and records.summary == full.summary
    assert records.exit_code == 0


@pytest.mark.system  # starts processes
def test_a_corrupt_chunk_stops_a_live_read_and_is_skipped_by_a_final_one(
    logged_run: Path, tmp_path: Path
) -> None:
    (source,) = segment_folders(logged_run)
    copy = tmp_path / "wandb" / source.name
    shutil.copytree(source, copy)
    (log,) = copy.glob("run-*.wandb")
    data = bytearray(log.read_bytes())
    data[BLOCK + 100] ^= 0xFF  # a byte inside the second block
    log.write_bytes(bytes(data))
    live = Segment(log)
    live.refresh()
    assert live.log.offset < BLOCK + 100 and live.exit_code is None, "stopped before it"
    final = Segment(log)
    final.refresh(final=True)
    assert final.log.skipped_corrupt == 1 and final.exit_code == 0, "read on past the block"
    assert len(final.history) < 400 and max(final.history) == 400


@pytest.mark.system  # starts processes
def test_write_log_of_the_records_read_is_the_same_file(logged_run: Path, tmp_path: Path) -> None:
    """A multi-block log written by wandb-core, read and written again: the same bytes (records
    as read; as protos the same records, since a proto encodes its fields in another order)."""
    (source,) = segment_folders(logged_run)
    (log,) = source.glob("run-*.wandb")
    original = log.read_bytes()
    assert len(original) > 3 * BLOCK
    write_log(tmp_path / "again.wandb", TransactionLog(log).read_payloads(final=True))
    assert (tmp_path / "again.wandb").read_bytes() == original
    records = TransactionLog(log).read_new(final=True)
    write_log(tmp_path / "protos.wandb", records)
    assert TransactionLog(tmp_path / "protos.wandb").read_new(final=True) == records


def test_write_log_chunks_and_pads_blocks_as_leveldb(tmp_path: Path) -> None:
    """A record that ends 7 bytes before a block's end leaves an empty FIRST chunk there; one
    that ends 3 bytes before leaves zero padding; one larger than a block spans three."""

    fill = BLOCK - len(HEADER) - 2 * CHUNK_HEADER  # leaves exactly one chunk header of block 0
    records = [b"a" * fill, b"b" * 100, b"c" * (BLOCK - 100 - 2 * CHUNK_HEADER - 3), b"d" * 70000]
    data = encode(records)
    assert data[BLOCK - CHUNK_HEADER : BLOCK][4:] == struct.pack("<HB", 0, FIRST)
    assert data[2 * BLOCK - 3 : 2 * BLOCK] == bytes(3)
    kinds = [data[b * BLOCK + CHUNK_HEADER - 1] for b in (2, 3, 4)]
    assert kinds == [FIRST, MIDDLE, LAST], "the large record: a chunk in each of three blocks"
    assert len(data) == 4 * BLOCK + CHUNK_HEADER + 70000 - 2 * (BLOCK - CHUNK_HEADER)
    write_log(tmp_path / "chunks.wandb", records)
    assert (tmp_path / "chunks.wandb").read_bytes() == data
    assert TransactionLog(tmp_path / "chunks.wandb").read_payloads(final=True) == records


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.system  # starts processes
def test_a_sync_copy_drops_the_local_sweep_id_and_keeps_everything_else(tmp_path: Path) -> None:
    """A plain script run as the agent runs it (WANDB_SWEEP_ID = the local sweep's id); its copy,
    read by wandb's own reader: the run record has no sweep id and the tag sweep:<id>, and every
    other record, the config, summary, history and exit code are the original's. The original
    folder is not changed and the copy holds every other file as it is."""
    (tmp_path / "run").mkdir()
    run = run_program(tmp_path / "run", sweep_id="abcd1234", lr=0.5, epochs=400, shape="peak")
    (source,) = segment_folders(run)
    (log,) = source.glob("run-*.wandb")
    assert log.stat().st_size > 3 * BLOCK
    before = _digests(source)
    copy = tmp_path / "copies" / source.name
    write_copy(source, copy, "abcd1234")
    assert _digests(source) == before, "the original is untouched"
    after = _digests(copy)
    assert set(after) == set(before) and len(before) > 1
    assert {k: v for k, v in after.items() if k != log.name} == {
        k: v for k, v in before.items() if k != log.name
    }
    theirs = [json.loads(line) for line in leet("--json", str(log)).splitlines()]
    ours = [json.loads(line) for line in leet("--json", str(copy / log.name)).splitlines()]
    (their_run,) = [r["run"] for r in theirs if r["type"] == "run"]
    (our_run,) = [r["run"] for r in ours if r["type"] == "run"]
    assert their_run["sweep_id"] == "abcd1234" and "tags" not in their_run
    assert "sweep_id" not in our_run and our_run["tags"] == ["sweep:abcd1234"]
    assert {**our_run, "sweep_id": "abcd1234", "tags": None} == {**their_run, "tags": None}
    assert [r for r in ours if r["type"] != "run"] == [r for r in theirs if r["type"] != "run"]
    assert len([r for r in ours if r["type"] == "history"]) == 400
    summary = json.loads(leet("--summary", "--json", str(copy / log.name)))
    original = json.loads(leet("--summary", "--json", str(log)))
    assert summary["tags"] == ["sweep:abcd1234"] and original["tags"] == []
    for key in ("config", "summary", "exit_code", "state", "step", "run_id"):
        assert summary[key] == original[key], key
    assert summary["exit_code"] == 0 and summary["step"] == 400


def test_values_decode_as_json_does() -> None:
    for text in ["1", "-2", "1.5e+09", '"txt"', "true", "null", '{"max": 1}', "[1, 2]", '"12"']:
        assert decode(text) == json.loads(text)
    assert decode("NaN") != decode("NaN") and decode("Infinity") == float("inf")


def test_a_summary_ranks_by_the_aggregate_that_matches_the_goal() -> None:
    both = {"min": 1.0, "max": 3.0, "last": 2.0}
    assert summary_number(both, "maximize") == 3.0 and summary_number(both, "minimize") == 1.0
    assert summary_number({"last": 2}, "maximize") == 2.0 and summary_number(4, "minimize") == 4.0
    assert summary_number({"mean": "x"}, "maximize") is None and summary_number(True, "x") is None
