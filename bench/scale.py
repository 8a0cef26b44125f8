"""How sweepkit's local store scales with the number of runs: views and claims at N runs.

    python bench/scale.py                          # 100 and 20,000 runs: baselines and ratios
    python bench/scale.py --sizes 100,1000,20000 --detail --no-record   # and per size; unrecorded

For each sweep it builds, N finished runs and R running ones (``--running``, 200): the journal is
written through the store's own record shapes (``claim`` and ``end`` records as an agent appends
them, the end record being what the agent recorded for a real run), and every run folder is a
copy (hard links) of a real agent run of the plain W&B script tests/support/wandb_program.py
(``--epochs`` logged epochs), with a bayes and a grid sweep of the same runs beside it. Running
runs were claimed ``2 x lease_s`` ago by agents on other hosts that keep their leases fresh.

The ratio table (bench/scale_ratios.py, always): a fresh claim (grid, random, bayes), status,
status --json and report, each a fresh process (median of ``--repeats``, sizes interleaved, the
load average read before each), on the smallest size plain and with R running (the two
baselines) and the largest size likewise, and the largest size's ratios to each baseline.

``--detail`` adds the per-size table, on the sweeps with R running runs: status (median of 3),
status --json, report (wall time, peak RSS); a fresh random claim replaying the whole journal
and from its snapshot against Optuna's JournalStorage holding N finished trials (load_study +
ask + suggest); warm bayes claims (p50); the hyperband check an agent makes at each new epoch;
the lock hold per claim.

Figures are wall clock on this machine; tests run it at a small N and check answers, never times
(tests/bench/test_scale_bench.py). bench/scale_sweeps.py builds the sweeps (``--keep`` keeps
them, ``--reuse`` measures them again); ``--check`` compares fast paths with a full replay.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
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

# Beside this file (the script's folder is on sys.path when it runs): building the sweeps, and
# --check's comparison of the fast paths with a full replay.
from scale_check import check_answers  # noqa: E402
from scale_ratios import found_sweeps, label, launched, measure_all, table, write_snapshots  # noqa: E402
from scale_sweeps import SWEEPKIT, TEMPLATE_LRS, build, make_templates, setup_optuna  # noqa: E402


def timed_process(
    argv: list[str], cwd: Path, stdout: Any = subprocess.DEVNULL
) -> tuple[float, float]:
    """(wall s, peak RSS MB) of a fresh process."""
    result = launched(argv, cwd, stdout)
    return result["wall"], result["rss_kb"] / 1024


# ----- workers (fresh processes) ----------------------------------------------------------------
def worker(args: argparse.Namespace) -> None:
    if args.worker in ("ours", "ours-journal"):
        from sweepkit.jobs.sweeps import store
        from sweepkit.jobs.sweeps.store import snapshot

        if args.worker == "ours-journal":  # the whole journal replayed, no snapshot written
            snapshot.WRITE_AFTER_BYTES = sys.maxsize

        store.quiet_sweeps_import()
        import sweeps.random_search  # noqa: F401  (what an agent has imported before it claims)

        start = time.perf_counter()
        sweep = store.open_sweep(args.store)
        sweep.claim(store.AgentIdentity())
        print(json.dumps({"s": time.perf_counter() - start}))
    else:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        start = time.perf_counter()
        storage = JournalStorage(JournalFileBackend(args.store))
        study = optuna.load_study(
            study_name="bench", storage=storage, sampler=optuna.samplers.RandomSampler()
        )
        trial = study.ask()
        trial.suggest_categorical("lr", list(TEMPLATE_LRS))
        trial.suggest_int("hidden_units", 16, 256)
        print(json.dumps({"s": time.perf_counter() - start}))


def fresh_claim(which: str, store_path: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, __file__, "--worker", which, "--store", str(store_path)],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        if out.returncode != 0:
            raise SystemExit(f"{which} worker failed:\n{out.stderr}")
        times.append(json.loads(out.stdout.strip().splitlines()[-1])["s"])
    return statistics.median(times)


# ----- in-process measures ----------------------------------------------------------------------
def warm_bayes_claims(path: Path, claims: int) -> float:
    from sweepkit.jobs.sweeps import store

    sweep = store.open_sweep(path)
    me = store.AgentIdentity()
    sweep.claim(me)  # warm: imports, the fold, the engine's runs
    times = []
    for _ in range(claims):
        start = time.perf_counter()
        sweep.claim(me)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def hyperband_checks(path: Path, checks: int) -> float:
    from sweepkit.jobs.sweeps import store
    from sweepkit.jobs.sweeps.agent.local import LocalAgent

    sweep = store.open_sweep(path)
    folded = sweep.refresh()
    running = next(r for r in folded.values() if r.state == "running")
    claim = store.Claim(
        running.run_id, running.k, running.params, sweep.run_dir(running.run_id), False
    )
    agent = LocalAgent(sweep)
    agent._hyperband_says_stop(claim)  # warm
    times = []
    for _ in range(checks):
        start = time.perf_counter()
        agent._hyperband_says_stop(claim)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def lock_holds(path: Path, claims: int) -> float:
    from sweepkit.jobs.sweeps import store

    sweep = store.open_sweep(path)
    me = store.AgentIdentity()
    lock = sweep.lock()
    held: list[float] = []
    enter, leave = type(lock).__enter__, type(lock).__exit__

    class TimedLock(type(lock)):  # type: ignore[misc]
        def __enter__(self) -> Any:
            out = enter(self)
            self.t0 = time.perf_counter()
            return out

        def __exit__(self, *exc: object) -> None:
            held.append(time.perf_counter() - self.t0)
            leave(self, *exc)

    lock.__class__ = TimedLock
    sweep.claim(me)  # warm
    held.clear()
    for _ in range(claims):
        sweep.claim(me)
    return statistics.median(held)


# ----- the table ---------------------------------------------------------------------------------
def measure(
    root: Path, stores: dict[str, Path], optuna_log: Path, args: argparse.Namespace
) -> dict[str, Any]:
    sweep = stores["random"]
    out: dict[str, Any] = {}
    if args.measures == "all":
        # the median of three fresh processes: one process's wall time on a shared machine moved
        # by half between two runs of this benchmark
        tries = [timed_process([*SWEEPKIT, "status", str(sweep)], cwd=root) for _ in range(3)]
        out["status"] = (statistics.median(t[0] for t in tries), max(t[1] for t in tries))
        json_out = root / "status.json"
        with open(json_out, "wb") as f:
            wall, rss = timed_process(
                [*SWEEPKIT, "status", "--json", str(sweep)], cwd=root, stdout=f
            )
        out["status_json"] = (json_out.stat().st_size / 1e6, rss, wall)
        page = root / "report" / "report.html"
        wall, rss = timed_process([*SWEEPKIT, "report", str(sweep), "--out", str(page)], cwd=root)
        out["report"] = (wall, rss, sum(p.stat().st_size for p in page.parent.iterdir()) / 1e6)
    out["fresh"] = (
        fresh_claim("ours-journal", sweep, args.fresh) * 1000,
        fresh_claim("optuna", optuna_log, args.fresh) * 1000,
    )
    from sweepkit.jobs.sweeps import store

    written = store.open_sweep(sweep)
    written.refresh()
    started = time.perf_counter()
    if not written.write_snapshot(force=True):
        raise SystemExit(f"could not write the journal snapshot in {sweep}")
    out["snapshot_write"] = time.perf_counter() - started
    out["fresh_snapshot"] = fresh_claim("ours", sweep, args.fresh) * 1000
    if args.measures == "fresh":
        return out
    out["bayes"] = warm_bayes_claims(stores["bayes"], args.claims) * 1000
    out["hyperband"] = hyperband_checks(sweep, args.checks) * 1000
    out["lock"] = lock_holds(sweep, args.claims) * 1000
    return out


def detail_table(results: dict[int, dict[str, Any]], running: int) -> str:
    sizes = sorted(results)
    head = "| measure | " + " | ".join(f"{n:,}" for n in sizes) + " |"
    rows = [head, "| --- |" + " --- |" * len(sizes)]

    def row(name: str, cell: Any, key: str) -> None:
        if all(key in results[n] for n in sizes):
            rows.append(f"| {name} | " + " | ".join(cell(results[n]) for n in sizes) + " |")

    row(
        "`status`: wall s (median of 3) / peak RSS MB",
        lambda r: f"{r['status'][0]:.2f} / {r['status'][1]:.0f}",
        "status",
    )
    row(
        "`status --json`: output MB / RSS MB / wall s",
        lambda r: (
            f"{r['status_json'][0]:.2f} / {r['status_json'][1]:.0f} / {r['status_json'][2]:.2f}"
        ),
        "status_json",
    )
    row(
        "`report`: wall s / RSS MB / page MB (with files beside it)",
        lambda r: f"{r['report'][0]:.1f} / {r['report'][1]:.0f} / {r['report'][2]:.2f}",
        "report",
    )
    row(
        "fresh claim, random, whole journal, ms (Optuna's journal store, same N)",
        lambda r: f"{r['fresh'][0]:.1f} ({r['fresh'][1]:.1f})",
        "fresh",
    )
    row(
        "fresh claim, random, from the journal's snapshot, ms (writing it, s)",
        lambda r: f"{r['fresh_snapshot']:.1f} ({r['snapshot_write']:.2f})",
        "fresh_snapshot",
    )
    row("warm claim p50, bayes (ms)", lambda r: f"{r['bayes']:.1f}", "bayes")
    row(
        "hyperband check at each new epoch, per agent (ms)",
        lambda r: f"{r['hyperband']:.1f}",
        "hyperband",
    )
    row(f"lock hold per claim, {running} running (ms)", lambda r: f"{r['lock']:.2f}", "lock")
    return "\n".join(rows)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="100,20000",
        help="finished runs, comma-separated: the ratio table compares the largest with the "
        "smallest (the baselines); --detail measures each",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="fresh processes per measure and sweep (median)"
    )
    parser.add_argument(
        "--detail",
        action="store_true",
        help="also the per-size table (with --running runs): Optuna, snapshot, warm bayes "
        "claims, hyperband checks, lock hold",
    )
    parser.add_argument("--running", type=int, default=200, help="running runs in every sweep")
    parser.add_argument("--epochs", type=int, default=20, help="epochs the template runs log")
    parser.add_argument("--fresh", type=int, default=3, help="--detail's fresh claims (median)")
    parser.add_argument("--claims", type=int, default=10, help="warm claims per size (p50)")
    parser.add_argument("--checks", type=int, default=10, help="hyperband checks per size (p50)")
    parser.add_argument("--dir", type=Path, default=None, help="where to build (default: /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the sweeps built (under --dir)")
    parser.add_argument(
        "--no-record", action="store_true", help="do not append to bench/RESULTS.md"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="check that the fast paths give a full replay's answers at each size",
    )
    parser.add_argument(
        "--measures",
        choices=("all", "fresh"),
        default="all",
        help="fresh: only the fresh claims (no status, report, warm claims)",
    )
    parser.add_argument(
        "--reuse", type=Path, default=None, help="the folder of a --keep run: its sweeps, not built"
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--store", default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args)
        return
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    base = Path(tempfile.mkdtemp(prefix="sweepkit-scale-", dir=args.dir))
    os.environ.setdefault("WANDB_SILENT", "true")
    started = datetime.now(timezone.utc)
    try:
        templates = [] if args.reuse else make_templates(base, args.epochs)
        # the ratio table's sweeps: the smallest and largest size, plain and with running runs
        ratio_sweeps = {
            label(n, r): found_sweeps(args.reuse / f"n{n}-r{r}")
            if args.reuse
            else build_sweeps(base / f"n{n}-r{r}", n, r, templates, args)
            for n in sorted({sizes[0], sizes[-1]})
            for r in sorted({0, args.running})
        }
        write_snapshots([p for stores in ratio_sweeps.values() for p in stores.values()])
        medians, loads = measure_all(ratio_sweeps, args.repeats, base)
        text = table(medians, sizes[0], sizes[-1], args.running, loads)
        if args.detail:
            detail = {n: measure_size(base, n, templates, args) for n in sizes}
            text += "\n\n" + detail_table(detail, args.running)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(text)
    if not args.no_record:
        record(text, args, started)


def build_sweeps(
    root: Path, n: int, running: int, templates: list[dict[str, Any]], args: argparse.Namespace
) -> dict[str, Path]:
    """The random, bayes and grid sweeps of n finished and ``running`` running runs under root,
    checked against a full replay with --check."""
    root.mkdir()
    started = time.perf_counter()
    stores = build(root, n, running, templates, root.parent / "wandb_prog.py", args.epochs)
    if args.check:
        print(check_answers(stores), flush=True)
    print(
        f"N={n}+{running}: built in {time.perf_counter() - started:.0f} s; random sweep "
        f"{stores['random']}, bayes sweep {stores['bayes']}, grid sweep {stores['grid']}",
        file=sys.stderr,
        flush=True,
    )
    return stores


def measure_size(
    base: Path, n: int, templates: list[dict[str, Any]], args: argparse.Namespace
) -> dict[str, Any]:
    """The detail table's column for n finished runs and ``--running`` running ones."""
    root = base / f"detail-n{n}"
    stores = build_sweeps(root, n, args.running, templates, args)
    optuna_log = setup_optuna(root, n, args.epochs)
    return measure(root, stores, optuna_log, args)


def record(text: str, args: argparse.Namespace, started: datetime) -> None:
    cpu = platform.processor() or platform.machine()
    when = f"{started:%Y-%m-%d %H:%M}-{datetime.now(timezone.utc):%H:%M} UTC"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    command = "python " + " ".join(sys.argv)
    entry = (
        f"\n### {when}, {os.cpu_count()} cores ({cpu}), {platform.node()}, load average at the "
        f"end {load}\n\n    {command}\n\n{text}\n"
    )
    with open(REPO / "bench" / "RESULTS.md", "a") as f:
        f.write(entry)


if __name__ == "__main__":
    main()
