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
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import random
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

N_FINISHED = 1000
GRID = {"a": list(range(16)), "b": list(range(16)), "c": list(range(8))}  # 2,048 points
CONTINUOUS = {"lr": (1e-5, 1e-1), "wd": (1e-6, 1e-2)}
BATCH = [32, 64, 128, 256]


def definition(method: str) -> dict[str, Any]:
    base: dict[str, Any] = {
        "method": "bayes" if method == "bayes-gp" else method,
        "metric": {"name": "acc", "goal": "maximize"},
        "command": ["${env}", "${interpreter}", "prog.py", "${args}"],
    }
    if method == "grid":
        base["parameters"] = {k: {"values": v} for k, v in GRID.items()}
    else:
        base["parameters"] = {
            **{
                k: {"distribution": "log_uniform_values", "min": lo, "max": hi}
                for k, (lo, hi) in CONTINUOUS.items()
            },
            "batch_size": {"values": BATCH},
        }
    return base


def fake_metric(params: dict[str, Any]) -> float:
    if "a" in params:
        return float(params["a"] + params["b"] / 16 + params["c"] / 128)
    return float(
        -abs(params["lr"] - 3e-3) * 100
        - abs(params["wd"] - 1e-4) * 10
        + params["batch_size"] / 1000
    )


# ----- set-up: 1,000 finished runs in each store -----------------------------------------------
def setup_ours(root: Path, method: str) -> Path:
    from jobs.sweeps import store
    from jobs.sweeps.definition import quiet_sweeps_import

    quiet_sweeps_import()
    next_runs = importlib.import_module("sweeps.run").next_runs
    sweep = store.create_sweep(definition(method), root / "ours", source="bench")
    if method == "grid":
        configs = [r.config for r in next_runs(sweep.definition, [], n=N_FINISHED) if r is not None]
    else:
        rng = random.Random(0)
        configs = [
            {k: {"value": v} for k, v in random_params(rng).items()} for _ in range(N_FINISHED)
        ]
    me = store.AgentIdentity()
    records = []
    now = time.time()
    for i, config in enumerate(configs):
        run_id = f"r{i:07d}"
        value = fake_metric({k: v["value"] for k, v in config.items()})
        records.append(store.claim_record(run_id, 0, store.plain(config), me, now))
        records.append(
            {
                "t": "end",
                "run": run_id,
                "k": 0,
                "state": "finished",
                "metric": value,
                "history": [value],
                "epochs": 1,
                "at": now,
            }
        )
    sweep.append(records)
    return sweep.path


def random_params(rng: random.Random) -> dict[str, Any]:
    import math

    out: dict[str, Any] = {
        k: math.exp(rng.uniform(math.log(lo), math.log(hi))) for k, (lo, hi) in CONTINUOUS.items()
    }
    out["batch_size"] = rng.choice(BATCH)
    return out


def optuna_sampler(method: str) -> Any:
    import optuna

    if method == "grid":
        return optuna.samplers.GridSampler({k: list(v) for k, v in GRID.items()}, seed=0)
    if method == "random":
        return optuna.samplers.RandomSampler()
    if method == "bayes-gp":
        return optuna.samplers.GPSampler()
    return optuna.samplers.TPESampler()


def optuna_distributions(method: str) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    if method == "grid":
        return {k: CategoricalDistribution(v) for k, v in GRID.items()}
    return {
        **{k: FloatDistribution(lo, hi, log=True) for k, (lo, hi) in CONTINUOUS.items()},
        "batch_size": CategoricalDistribution(BATCH),
    }


def setup_optuna(root: Path, method: str) -> Path:
    import itertools

    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = root / "optuna.log"
    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(
        study_name="bench", storage=storage, direction="maximize", sampler=optuna_sampler(method)
    )
    dists = optuna_distributions(method)
    trials = []
    if method == "grid":
        space = {k: list(v) for k, v in sorted(GRID.items())}
        points = list(itertools.product(*space.values()))[:N_FINISHED]
        for grid_id, point in enumerate(points):
            params = dict(zip(space, point, strict=True))
            trials.append(
                optuna.trial.create_trial(
                    params=params,
                    distributions=dists,
                    value=fake_metric(params),
                    system_attrs={"grid_id": grid_id, "search_space": space},
                )
            )
    else:
        rng = random.Random(0)
        for _ in range(N_FINISHED):
            params = random_params(rng)
            trials.append(
                optuna.trial.create_trial(
                    params=params, distributions=dists, value=fake_metric(params)
                )
            )
    study.add_trials(trials)
    return path


# ----- workers (run in fresh processes) --------------------------------------------------------
def worker(args: argparse.Namespace) -> None:
    t_start = time.perf_counter()
    if args.worker == "ours":
        from jobs.sweeps import store

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
        sweep = store.open_sweep(args.store)
        me = store.AgentIdentity()
        propose = sweep._propose

        def timed_propose(n: int) -> list[dict[str, Any]]:  # the engine's share of a claim
            t, c = time.perf_counter(), time.process_time()
            try:
                return propose(n)
            finally:
                engine[-1] += time.perf_counter() - t
                engine_cpu[-1] += time.process_time() - c

        sweep._propose = timed_propose  # type: ignore[method-assign]
    else:
        study = optuna.load_study(
            study_name="bench",
            storage=JournalStorage(JournalFileBackend(args.store)),
            sampler=optuna_sampler(args.method),
        )
    open_s = time.perf_counter() - t0
    if args.go:
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
    print(
        json.dumps(
            {
                "imports_s": imports_s,
                "open_s": open_s,
                "latencies": latencies,
                "engine": engine,
                "engine_cpu": engine_cpu,
            }
        )
    )


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


AGENT_PROGRAM = "import sys, time\nopen(sys.argv[1], 'w').write(repr(time.time()))\n"


def agent_overhead(root: Path, repeats: int) -> dict[str, float]:
    """sweepkit agent process start -> the launched program's first line, less that program's own start-up."""
    from jobs.sweeps import store

    prog = root / "agent_prog.py"
    prog.write_text(AGENT_PROGRAM)
    mark = root / "started"
    definition_ = definition("grid")
    definition_["command"] = ["${env}", "${interpreter}", str(prog), str(mark)]
    sweep = store.create_sweep(definition_, root / "agent", source="bench")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    totals, bare = [], []
    for _ in range(repeats):
        t0 = time.time()
        subprocess.run([sys.executable, str(prog), str(mark)], env=env, check=True)
        bare.append(float(mark.read_text()) - t0)
        t0 = time.time()
        subprocess.run(
            [sys.executable, "-m", "jobs.cli", "agent", "--count", "1", str(sweep.path)],
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
    from jobs.sweeps import store

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
    parser.add_argument("--worker", choices=("ours", "optuna"), help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--go", help=argparse.SUPPRESS)
    return parser.parse_args()


def measure_methods(args: argparse.Namespace, base: Path) -> list[tuple[str, Any, Any, float]]:
    """(method, fresh figures, concurrent figures, engine ms) for each of --methods."""
    rows = []
    for method in args.methods.split(","):
        root = base / method
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)
        stores = {"ours": setup_ours(root, method), "optuna": setup_optuna(root, method)}
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
        f"{N_FINISHED:,} finished runs in each store. Claim = ours `claim` (engine proposal included) / Optuna `ask` + `suggest`.",
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
    global N_FINISHED
    args = parse_args()
    if args.worker:
        worker(args)
        return
    import optuna

    from jobs.sweeps.definition import quiet_sweeps_import

    quiet_sweeps_import()
    N_FINISHED = args.finished
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
