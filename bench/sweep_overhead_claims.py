"""The claiming processes of bench/sweep_overhead.py and the latencies they report.

``spawn`` starts this file as a worker: a fresh Python process that opens one store (ours or
Optuna's), waits for the go file when it runs with others, makes its claims (reporting each run
finished, untimed, before the next) and prints its figures as one JSON line. ``fresh`` and
``concurrent`` run them and pool what they report.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sweep_overhead_stores import fake_metric, optuna_distributions, optuna_sampler  # noqa: E402


def worker(args: argparse.Namespace) -> None:
    t_start = time.perf_counter()
    if args.worker == "ours":
        from sweepkit.jobs.sweeps import store

        # what an agent has imported before it claims (imports are reported, not timed, as Optuna's)
        for module in ("sweeps", "sweeps.grid_search", "sweeps.bayes_search", "flufl.lock"):
            importlib.import_module(module)
    else:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        dists = optuna_distributions(args.method)
    imports_s = time.perf_counter() - t_start
    latencies: list[float] = []
    engine: list[float] = []
    engine_cpu: list[float] = []
    t0 = time.perf_counter()
    if args.worker == "ours":
        sweep, me = open_timed(args.store, engine, engine_cpu)
    else:
        study = optuna.load_study(
            study_name="bench",
            storage=JournalStorage(JournalFileBackend(args.store)),
            sampler=optuna_sampler(args.method),
        )
    open_s = time.perf_counter() - t0
    if args.go:  # all workers claim at once
        Path(args.go + f".ready.{os.getpid()}").touch()
        while not Path(args.go).exists():
            time.sleep(0.002)
    for i in range(args.claims):
        engine.append(0.0)
        engine_cpu.append(0.0)
        t0 = time.perf_counter()
        if args.worker == "ours":
            claim = sweep.claim(me)
            assert isinstance(claim, store.Claim), claim
            params = {k: v["value"] for k, v in claim.params.items()}
        else:
            trial = study.ask()
            params = {name: trial._suggest(name, dist) for name, dist in dists.items()}
        latencies.append(time.perf_counter() - t0 + (open_s if i == 0 and not args.go else 0.0))
        value = fake_metric(params)
        if args.worker == "ours":
            assert isinstance(claim, store.Claim)
            sweep.finish(claim, me, "finished", metric=value, history=[value], epochs=1)
        else:
            study.tell(trial, value)
    times = {"imports_s": imports_s, "open_s": open_s, "latencies": latencies}
    print(json.dumps({**times, "engine": engine, "engine_cpu": engine_cpu}))


def open_timed(path: str, engine: list[float], engine_cpu: list[float]) -> tuple[Any, Any]:
    """Our sweep at path, whose engine's share of each claim (wall, CPU) adds to the last entry of
    engine and engine_cpu; and this agent's identity."""
    from sweepkit.jobs.sweeps import store

    sweep = store.open_sweep(path)
    propose = sweep._propose

    def timed_propose(n: int) -> list[dict[str, Any]]:
        t, c = time.perf_counter(), time.process_time()
        try:
            return propose(n)
        finally:
            engine[-1] += time.perf_counter() - t
            engine_cpu[-1] += time.process_time() - c

    sweep._propose = timed_propose  # type: ignore[method-assign]
    return sweep, store.AgentIdentity()


def spawn(
    side: str, method: str, store_path: Path, claims: int, go: str | None = None
) -> subprocess.Popen[str]:
    argv = [
        sys.executable,
        __file__,
        "--worker",
        side,
        "--method",
        method,
        "--store",
        str(store_path),
        "--claims",
        str(claims),
    ]
    if go:
        argv += ["--go", go]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "PYTHONWARNINGS": "ignore",
    }
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)


def collect(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    return dict(json.loads(out.strip().splitlines()[-1]))


def fresh(stores: dict[str, Path], method: str, repeats: int) -> dict[str, dict[str, float]]:
    samples: dict[str, list[dict[str, Any]]] = {s: [] for s in stores}
    for _ in range(repeats):
        for side, path in stores.items():
            samples[side].append(collect(spawn(side, method, path, 1)))
    return {
        side: {
            "first_claim_ms": 1000 * statistics.median(s["latencies"][0] for s in runs),
            "imports_s": statistics.median(s["imports_s"] for s in runs),
        }
        for side, runs in samples.items()
    }


def concurrent(
    stores: dict[str, Path], method: str, agents: int, claims: int, repeats: int, tmp: Path
) -> dict[str, dict[str, Any]]:
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in stores}
    p50s: dict[str, list[float]] = {side: [] for side in stores}
    p95s: dict[str, list[float]] = {side: [] for side in stores}
    for rep in range(repeats):
        sides = list(stores) if rep % 2 == 0 else list(reversed(stores))
        for side in sides:
            go = str(tmp / f"go-{side}-{method}-{rep}")
            procs = [spawn(side, method, stores[side], claims, go) for _ in range(agents)]
            deadline = time.time() + 600
            while (
                len(list(tmp.glob(Path(go).name + ".ready.*"))) < agents and time.time() < deadline
            ):
                time.sleep(0.05)
            Path(go).touch()
            these = [collect(p) for p in procs]
            runs[side] += these
            lat = sorted(x for r in these for x in r["latencies"])
            p50s[side].append(1000 * pct(lat, 0.5))
            p95s[side].append(1000 * pct(lat, 0.95))
    result = {}
    for side, side_runs in runs.items():
        lat = sorted(x for r in side_runs for x in r["latencies"])
        store_only = sorted(
            x - e for r in side_runs for x, e in zip(r["latencies"], r["engine"], strict=True)
        )
        result[side] = {
            "p50_ms": 1000 * pct(lat, 0.5),
            "p95_ms": 1000 * pct(lat, 0.95),
            "p50_range_ms": (min(p50s[side]), max(p50s[side])),
            "p95_range_ms": (min(p95s[side]), max(p95s[side])),
            "store_p50_ms": 1000 * pct(store_only, 0.5),
            "store_p95_ms": 1000 * pct(store_only, 0.95),
            "engine_wall_p50_ms": 1000
            * pct(sorted(x for r in side_runs for x in r.get("engine", [])), 0.5),
            "engine_cpu_p50_ms": 1000
            * pct(sorted(x for r in side_runs for x in r.get("engine_cpu", [])), 0.5),
            "n": len(lat),
        }
    return result


def pct(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description="one claiming process of bench/sweep_overhead.py")
    parser.add_argument("--worker", choices=("ours", "optuna"), required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--claims", type=int, required=True)
    parser.add_argument("--go", help="wait for this file after opening the store, then claim")
    worker(parser.parse_args())


if __name__ == "__main__":
    main()
