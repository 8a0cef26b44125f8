"""Sweep overhead: sweepkit's local store against Optuna's JournalStorage + JournalFileBackend.

    python bench/sweep_overhead.py                    # everything, results appended to bench/RESULTS.md
    python bench/sweep_overhead.py --methods grid --fresh 5 --agents 8 --claims 5 --no-record

Both stores live on the same disk (``--dir``, default a temp folder) and hold 1,000 finished runs
(trials) before anything is timed, for each method: grid (2,048 points), random and bayes. Optuna
uses its counterpart of each: GridSampler over the same grid, RandomSampler, and for bayes both its
default TPESampler and, as the like-for-like row ``bayes-gp``, its GPSampler (W&B's bayes is a
Gaussian process; Optuna's takes seconds per ask at 1,000 trials, so that row makes fewer claims).

* fresh: a new Python process opens the store and makes one claim (ours: ``open_sweep`` +
  ``claim``; Optuna: ``load_study`` + ``ask`` + one ``suggest_*`` per parameter, where its sampling
  happens). Imports are done before the clock starts and reported separately.
* concurrent: 16 processes, started together after their imports and opens, each claim 10 runs
  (reporting each as finished, untimed, before the next). Repeated ``--repeats`` times, the side
  that goes first alternating; p50 and p95 of all the claim latencies pooled (3 x 160), and the
  range of the repetitions' p50 and p95, since one repetition's p95 on a shared machine varies ~2x.
  The engine's proposal inside those claims is timed by wall clock and by the process's CPU time:
  the gap is time spent waiting for a CPU (16 processes on a 2-core machine), not for the lock.
* agent: ``sweepkit agent --count 1`` from process start to the first line of the program it
  launches (the program's own interpreter start-up, measured alone, is subtracted).

Sides alternate within each repetition so that both see the same load on a shared machine.
The stores are filled in bench/sweep_overhead_stores.py; the claiming processes are
bench/sweep_overhead_claims.py.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Beside this file (the script's folder is on sys.path when it runs): the two stores, filled, and
# the claiming processes.
from sweep_overhead_claims import concurrent, fresh  # noqa: E402
from sweep_overhead_stores import N_FINISHED, definition, setup_optuna, setup_ours  # noqa: E402

AGENT_PROGRAM = "import sys, time\nopen(sys.argv[1], 'w').write(repr(time.time()))\n"


def agent_overhead(root: Path, repeats: int) -> dict[str, float]:
    """sweepkit agent process start -> the launched program's first line, less that program's own start-up."""
    from sweepkit.jobs.sweeps import store

    prog = root / "agent_prog.py"
    prog.write_text(AGENT_PROGRAM)
    mark = root / "started"
    definition_ = definition("grid")
    definition_["command"] = ["${env}", "${interpreter}", str(prog), str(mark)]
    sweep = store.create_sweep(definition_, root / "agent", source="bench")
    # ${interpreter} is python from PATH: this environment's
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    totals, bare = [], []
    for _ in range(repeats):
        t0 = time.time()
        subprocess.run([sys.executable, str(prog), str(mark)], env=env, check=True)
        bare.append(float(mark.read_text()) - t0)
        t0 = time.time()
        subprocess.run(
            [sys.executable, "-m", "sweepkit.jobs.cli", "agent", "--count", "1", str(sweep.path)],
            env=env,
            check=True,
            capture_output=True,
            cwd=REPO,
        )
        totals.append(float(mark.read_text()) - t0)
    program_start = statistics.median(bare)
    return {
        "start_to_launch_s": statistics.median(totals) - program_start,
        "program_startup_s": program_start,
    }


def engine_cost(stores: dict[str, Path]) -> float:
    from sweepkit.jobs.sweeps import store

    sweep = store.open_sweep(stores["ours"])
    sweep.refresh()
    sweep._propose(1)
    t0 = time.perf_counter()
    for _ in range(3):
        sweep._propose(1)
    return 1000 * (time.perf_counter() - t0) / 3


def ms(value: float) -> str:
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"  # a p50 of a few ms: tenths matter


def span(values: tuple[float, float]) -> str:
    low, high = ms(values[0]), ms(values[1])
    return low if low == high else f"{low}-{high}"


def record(text: str) -> None:
    path = REPO / "bench" / "RESULTS.md"
    current = path.read_text() if path.exists() else "# Benchmark results\n"
    heading = "## Sweep overhead"
    if heading not in current:
        current = (
            current.rstrip("\n") + f"\n\n{heading}\n\n(bench/sweep_overhead.py; newest run last.)\n"
        )
    head, rest = current.split(heading, 1)
    body, sep, after = rest.partition("\n## ")
    path.write_text(
        head
        + heading
        + body.rstrip("\n")
        + "\n\n"
        + text.rstrip("\n")
        + "\n"
        + (sep + after if sep else "")
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="grid,random,bayes,bayes-gp")
    parser.add_argument(
        "--fresh", type=int, default=7, help="fresh-process repetitions per side and method"
    )
    parser.add_argument("--agents", type=int, default=16)
    parser.add_argument("--claims", type=int, default=10, help="claims per concurrent agent")
    parser.add_argument(
        "--repeats", type=int, default=3, help="repetitions of the concurrent phase per side"
    )
    parser.add_argument(
        "--gp-claims",
        type=int,
        default=2,
        help="claims per agent, and fresh repetitions, in the bayes-gp row (GPSampler: seconds per ask)",
    )
    parser.add_argument(
        "--finished", type=int, default=N_FINISHED, help="finished runs in each store"
    )
    parser.add_argument("--agent-repeats", type=int, default=5)
    parser.add_argument(
        "--dir", help="where the stores go (default: a temp folder); put it on the disk to measure"
    )
    parser.add_argument(
        "--no-record", action="store_true", help="print only; do not append to bench/RESULTS.md"
    )
    return parser.parse_args()


def measure_methods(args: argparse.Namespace, base: Path) -> list[tuple[str, Any, Any, float]]:
    """(method, fresh figures, concurrent figures, engine ms) for each of --methods."""
    rows = []
    for method in args.methods.split(","):
        root = base / method
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)
        stores = {
            "ours": setup_ours(root, method, args.finished),
            "optuna": setup_optuna(root, method, args.finished),
        }
        gp = method == "bayes-gp"
        f = fresh(stores, method, min(args.fresh, args.gp_claims) if gp else args.fresh)
        c = concurrent(
            stores,
            method,
            args.agents,
            args.gp_claims if gp else args.claims,
            1 if gp else args.repeats,
            root,
        )
        engine_ms = engine_cost(stores)
        rows.append((method, f, c, engine_ms))
        print(f"{method}: fresh {f}  concurrent {c}  engine {engine_ms:.1f} ms", flush=True)
    return rows


def results_text(
    args: argparse.Namespace,
    base: Path,
    rows: list[tuple[str, Any, Any, float]],
    agent: dict[str, float],
    loads: tuple[float, float],
    optuna_version: str,
) -> str:
    """The section appended to bench/RESULTS.md: a heading, the table and how it was measured."""
    load0, load1 = loads
    lines = [
        f"### {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, {platform.node()}, {os.cpu_count()} CPUs, stores in {base} "
        f"(load average {load0:.1f} at start, {load1:.1f} at end; optuna {optuna_version})",
        "",
        f"{args.finished:,} finished runs in each store. Claim = ours `claim` (engine proposal included) / Optuna `ask` + `suggest`.",
        "",
        "| method | fresh first claim, ours / Optuna | concurrent p50, ours / Optuna | concurrent p95, ours / Optuna | p50 of each repetition, ours / Optuna | p95 of each repetition, ours / Optuna | ours less the engine's proposal, p50 / p95 | engine proposal within the concurrent claims, wall / CPU p50 | engine proposal alone (ours) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method, f, c, engine_ms in rows:
        lines.append(
            f"| {method} | {f['ours']['first_claim_ms']:.0f} / {f['optuna']['first_claim_ms']:.0f} ms | "
            f"{ms(c['ours']['p50_ms'])} / {ms(c['optuna']['p50_ms'])} ms | {c['ours']['p95_ms']:.0f} / {c['optuna']['p95_ms']:.0f} ms | "
            f"{span(c['ours']['p50_range_ms'])} / {span(c['optuna']['p50_range_ms'])} ms | "
            f"{span(c['ours']['p95_range_ms'])} / {span(c['optuna']['p95_range_ms'])} ms | "
            f"{c['ours']['store_p50_ms']:.0f} / {c['ours']['store_p95_ms']:.0f} ms | "
            f"{c['ours']['engine_wall_p50_ms']:.0f} / {c['ours']['engine_cpu_p50_ms']:.0f} ms | {engine_ms:.0f} ms |"
        )
    lines += [
        "",
        "Optuna's samplers: GridSampler, RandomSampler, TPESampler for bayes (its default), GPSampler for bayes-gp "
        "(a Gaussian process, as W&B's bayes is; ours is the same W&B bayes in both rows).",
        f"Fresh = median of {args.fresh} new processes ({min(args.fresh, args.gp_claims)} for bayes-gp), imports excluded "
        f"(imports: ours {rows[0][1]['ours']['imports_s']:.2f} s, Optuna {rows[0][1]['optuna']['imports_s']:.2f} s). "
        f"Concurrent = {args.agents} processes x {args.claims} claims, {args.repeats} repetitions pooled "
        f"(bayes-gp: {args.agents} x {args.gp_claims}, once).",
        f"Agent start to program launch: {agent['start_to_launch_s']:.2f} s (median of {args.agent_repeats}; "
        f"the program's own start-up, {agent['program_startup_s'] * 1000:.0f} ms, subtracted).",
    ]
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    import optuna

    from sweepkit.jobs.sweeps.definition import quiet_sweeps_import

    quiet_sweeps_import()
    base = Path(args.dir or tempfile.mkdtemp(prefix="sweep-overhead-"))
    load0 = os.getloadavg()[0]
    rows = measure_methods(args, base)
    agent = agent_overhead(base, args.agent_repeats)
    loads = (load0, os.getloadavg()[0])
    text = results_text(args, base, rows, agent, loads, optuna.__version__)
    print(text)
    if not args.no_record:
        record(text)


if __name__ == "__main__":
    main()
