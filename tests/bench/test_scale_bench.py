"""bench/scale.py at a small N: its sweeps are real agent runs of the plain W&B script copied N
times, the fast paths give a full replay's answers (same runs, states, metrics, epochs, best run,
status --json, bayes GP data), it prints the ratio table (both baselines, the ratios, the load)
and the per-size table, and status shows a big sweep readably. Figures are never asserted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bench_runs import run_bench
from sweep_fixtures import sweepkit


@pytest.mark.system  # starts processes
def test_scale_benchmark_fast_paths_agree_with_a_full_replay(tmp_path: Path) -> None:
    proc = run_bench(
        "scale.py",
        "--sizes",
        "45",
        "--running",
        "4",
        "--epochs",
        "3",
        "--fresh",
        "1",
        "--repeats",
        "1",
        "--claims",
        "2",
        "--checks",
        "2",
        "--check",
        "--detail",
        "--keep",
        "--dir",
        str(tmp_path),
        "--no-record",
    )
    for runs in (45, 49):  # the plain sweep, and the one with 4 running runs
        assert re.search(
            rf"fast paths agree with a full replay: {runs} runs .*, best run r\d{{7}}, "
            r"status --json, bayes GP data",
            proc.stdout,
        ), proc.stdout
    # the ratio table: both baselines, the largest size (here the same), the ratios, the load
    ratios = re.findall(
        r"^\| (fresh claim, \w+|status|status --json|report) \| (.+) \|$", proc.stdout, re.M
    )
    assert [name for name, _ in ratios] == [
        "fresh claim, grid",
        "fresh claim, random",
        "fresh claim, bayes",
        "status",
        "status --json",
        "report",
    ], proc.stdout
    for _, cells in ratios:  # CPU / wall s of each sweep, then the ratios: CPU (wall)
        *times, plain, busy = cells.split(" | ")
        assert len(times) == 4 and all(re.fullmatch(r"[\d.]+ / [\d.]+", t) for t in times)
        assert all(re.fullmatch(r"[\d.]+x \([\d.]+x\)", ratio) for ratio in (plain, busy))
    head = "| measure (fresh process, median s: CPU / wall) | 45 plain | 45 + 4 running |"
    assert head in proc.stdout, proc.stdout
    assert re.search(r"^load average \(1 min\) before each process: min [\d.]+", proc.stdout, re.M)
    # the per-size table (--detail)
    rows = re.findall(r"^\| (.+?) \| (.+?) \|$", proc.stdout, re.M)
    start = [name for name, _ in rows].index("`status`: wall s (median of 3) / peak RSS MB")
    assert [name for name, _ in rows][start:] == [
        "`status`: wall s (median of 3) / peak RSS MB",
        "`status --json`: output MB / RSS MB / wall s",
        "`report`: wall s / RSS MB / page MB (with files beside it)",
        "fresh claim, random, whole journal, ms (Optuna's journal store, same N)",
        "fresh claim, random, from the journal's snapshot, ms (writing it, s)",
        "warm claim p50, bayes (ms)",
        "hyperband check at each new epoch, per agent (ms)",
        "lock hold per claim, 4 running (ms)",
    ], proc.stdout
    assert all(re.fullmatch(r"[\d.]+( / [\d.]+)*( \([\d.]+\))?", cell) for _, cell in rows[start:])

    # the sweep it built, now with the runs the benchmark's claims added: 45 finished, and running
    sweep = re.search(r"N=45\+4: .* random sweep (\S+),", proc.stderr)
    assert sweep, proc.stderr
    table = sweepkit("status", sweep.group(1), cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    text = table.stdout
    assert "best 10 of 45 scored runs:" in text and "running or queued: " in text
    assert re.search(r"\(--all lists all \d+ runs\)", text)
    listed = set(re.findall(r"^\s+(r\d{7}|[a-z0-9]{8})\s", text, re.M))
    every = sweepkit("status", "--all", sweep.group(1), cwd=tmp_path).stdout
    everyone = set(re.findall(r"^(r\d{7}|[a-z0-9]{8})\s", every, re.M))
    assert {f"r{i:07d}" for i in range(49)} <= everyone and listed < everyone
    assert "--all lists" not in every
