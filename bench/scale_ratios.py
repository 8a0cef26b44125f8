"""bench/scale.py's ratio table: each view and fresh claim at the largest size against two
baselines at the smallest, a plain sweep (every run finished) and one that also has ``--running``
running runs (whose records status reads at every size, which flattens the ratios).

Every figure is the CPU time (user + system) and the wall time of a fresh process (``python -m
sweepkit.jobs.cli status ...``, or one that opens the sweep and claims one run, imports included),
each the median of ``--repeats``, the sweeps measured in turn within each repetition (sizes
interleaved, their order rotated), the machine's load average read before each process. A fresh claim is measured on a grid, a random
and a bayes sweep with the same runs (the grid's runs are distinct grid points), each with a
journal snapshot as its agents would have written one; the claim is undone after each process (the
journal cut back to its length, the new run's folder removed), so every repetition claims from
the same sweep.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from scale_sweeps import REPO, SWEEPKIT

CLAIMS = ("grid", "random", "bayes")
MEASURES = (
    *(f"fresh claim, {m}" for m in CLAIMS),
    "status",
    "status --json",
    "report",
)
# a process that opens a sweep and claims one run (the run's id on stdout, to undo the claim)
CLAIM_WORKER = """
import json, sys
from sweepkit.jobs.sweeps import store
got = store.open_sweep(sys.argv[1]).claim(store.AgentIdentity())
print(json.dumps({"run": getattr(got, "run_id", None)}))
"""
# runs a command and says its wall time, its CPU time (user + system, its children included: on a
# machine shared at a load of many times its cores, the steadier figure) and its peak RSS; a
# launcher, as a child forked from a (large) bench process would count that process's pages
LAUNCHER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
rc = subprocess.call(sys.argv[1:])
wall = time.perf_counter() - start
use = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = use.ru_utime + use.ru_stime
print(json.dumps({"rc": rc, "wall": wall, "cpu": cpu, "rss_kb": use.ru_maxrss}), file=sys.stderr)
"""
Times = tuple[float, float]  # (wall s, CPU s)


def launched(argv: list[str], cwd: Path, stdout: Any = subprocess.DEVNULL) -> dict[str, Any]:
    """What LAUNCHER says of ``argv`` run in a fresh process (rc, wall, cpu, rss_kb)."""
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *argv], cwd=cwd, stdout=stdout, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {"rc": proc.returncode}
    if result["rc"] != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result['rc']}):\n{proc.stderr}")
    return dict(result)


def timed(argv: list[str], cwd: Path, stdout: Any = subprocess.DEVNULL) -> Times:
    """(wall s, CPU s) of a fresh process."""
    result = launched(argv, cwd, stdout)
    return result["wall"], result["cpu"]


def _claim_once(path: Path, out: Path) -> Times:
    """One fresh process's claim on the sweep at ``path``, then the claim undone."""
    journal = path / "journal.jsonl"
    size = journal.stat().st_size
    with open(out, "w") as f:
        took = timed([sys.executable, "-c", CLAIM_WORKER, str(path)], cwd=path.parent, stdout=f)
    run_id = json.loads(out.read_text().strip().splitlines()[-1])["run"]
    os.truncate(journal, size)
    if run_id:
        (path / "runs" / run_id).rmdir()
    return took


def _view_once(measure: str, path: Path, work: Path) -> Times:
    if measure == "status":
        return timed([*SWEEPKIT, "status", str(path)], cwd=work)
    if measure == "status --json":
        with open(work / "status.json", "wb") as f:
            return timed([*SWEEPKIT, "status", "--json", str(path)], cwd=work, stdout=f)
    page = work / "report" / "report.html"
    return timed([*SWEEPKIT, "report", str(path), "--out", str(page)], cwd=work)


Medians = dict[str, dict[str, Times]]


def measure_all(
    sweeps: dict[str, dict[str, Path]], repeats: int, work: Path
) -> tuple[Medians, list[float]]:
    """The median (wall s, CPU s) of each measure on each sweep (by label), and the load
    averages read."""
    times: dict[str, dict[str, list[Times]]] = {s: {m: [] for m in MEASURES} for s in sweeps}
    loads: list[float] = []
    labels = list(sweeps)
    for r in range(repeats):
        for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
            stores = sweeps[label]
            for measure in MEASURES:
                loads.append(os.getloadavg()[0])
                if measure.startswith("fresh claim, "):
                    path = stores[measure.removeprefix("fresh claim, ")]
                    took = _claim_once(path, work / "claim.out")
                else:
                    took = _view_once(measure, stores["random"], work)
                times[label][measure].append(took)
                print(
                    f"repeat {r + 1}, {label}, {measure}: {took[0]:.2f} s wall, {took[1]:.2f} s "
                    f"CPU (load {loads[-1]:.1f})",
                    file=sys.stderr,
                    flush=True,
                )
    medians = {
        s: {
            m: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v))
            for m, v in ms.items()
        }
        for s, ms in times.items()
    }
    return medians, loads


def table(medians: Medians, small: int, large: int, running: int, loads: list[float]) -> str:
    """Both baselines, the largest size's sweeps, and the ratios (the issue's targets are against
    the plain baseline), of CPU time and of wall time."""
    plain_s, busy_s = label(small, 0), label(small, running)
    plain_l, busy_l = label(large, 0), label(large, running)
    head = (
        f"| measure (fresh process, median s: CPU / wall) | {plain_s} | {busy_s} | {plain_l} | "
        f"{busy_l} | ratio {large:,} / {small:,}, plain: CPU (wall) | ratio {large:,} / "
        f"{small:,}, {running} running: CPU (wall) |"
    )
    rows = [head, "| --- |" + " --- |" * 6]
    for m in MEASURES:
        cells = [medians[s][m] for s in (plain_s, busy_s, plain_l, busy_l)]
        ratios = [(cells[i + 2][1] / cells[i][1], cells[i + 2][0] / cells[i][0]) for i in (0, 1)]
        rows.append(
            f"| {m} | "
            + " | ".join(f"{cpu:.2f} / {wall:.2f}" for wall, cpu in cells)
            + "".join(f" | {cpu:.2f}x ({wall:.2f}x)" for cpu, wall in ratios)
            + " |"
        )
    rows.append("")
    rows.append(
        f"load average (1 min) before each process: min {min(loads):.1f}, median "
        f"{statistics.median(loads):.1f}, max {max(loads):.1f} ({len(loads)} processes, "
        f"{os.cpu_count()} cores)"
    )
    return "\n".join(rows)


def label(n: int, running: int) -> str:
    return f"{n:,} plain" if not running else f"{n:,} + {running} running"


def write_snapshots(paths: list[Path]) -> None:
    """A journal snapshot in each sweep, as its agents would have written one by then."""
    from sweepkit.jobs.sweeps import store

    for path in paths:
        sweep = store.open_sweep(path)
        sweep.refresh()
        if not sweep.write_snapshot(force=True):
            raise SystemExit(f"could not write the journal snapshot in {path}")


def found_sweeps(root: Path) -> dict[str, Path]:
    """The random, bayes and grid sweeps an earlier run built under ``root`` (``--reuse``)."""
    from sweepkit.jobs.sweeps.store import open_sweep

    found = {}
    for path in sorted(p for p in root.iterdir() if (p / "sweep.yaml").is_file()):
        found[str(open_sweep(path).definition["method"])] = path
    if sorted(found) != ["bayes", "grid", "random"]:
        raise SystemExit(f"--reuse: {root} does not hold the benchmark's three sweeps")
    return found
