"""How sweepkit's local store scales with the number of runs: status, report and claims at N runs.

    python bench/scale.py                                  # N = 100, 1,000, 5,000, 20,000
    python bench/scale.py --sizes 100,1000 --no-record     # quicker; nothing appended to RESULTS.md

For each N this builds a sweep of N finished runs and ``--running`` (default 200) running ones:
the journal is written through the store's own record shapes (``claim`` and ``end`` records as an
agent appends them, the end record being what the agent recorded for a real run), and every run
folder is a copy (hard links) of a real agent run of the plain W&B script tests/support/wandb_program.py
(``--epochs`` logged epochs). Templates with a few learning rates give runs different metrics.
The running runs were claimed ``2 x lease_s`` ago by agents on other hosts that keep their leases
fresh, as long runs on a cluster do. Then it measures:

* status, status --json, report: ``sweepkit`` in a fresh process, wall time and peak RSS;
* fresh claim (random): a fresh process opens the sweep and claims one run (imports untimed),
  once replaying the whole journal (no snapshot, none written), then from the journal's snapshot
  (written through ``LocalSweep.write_snapshot``, jobs/sweeps/store/snapshot.py) and its tail;
  Optuna's JournalStorage + JournalFileBackend holding N finished trials: load_study + ask +
  suggest, the same way;
* warm claim p50 (bayes): the same journal under a bayes definition, claims by one warm agent;
* hyperband check: what an agent does at each new epoch of its run (refresh, the runs' live
  histories, ``sweeps.stop_runs``), p50 of ``--checks`` calls;
* lock hold per claim (random, with the running runs): how long a claim holds the sweep lock.

Figures are wall clock on whatever machine runs it; tests run it at a small N and check answers
(tests/bench/test_scale_bench.py), never times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
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

SWEEPKIT = [sys.executable, "-m", "jobs.cli"]
METRIC = "Validation Accuracy"
TEMPLATE_LRS = (0.3, 0.6, 0.9)
LEASE_S = 3600.0  # long, so that the running runs' heartbeats stay fresh for the whole benchmark


def definition(method: str, program: Path, epochs: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "method": method,
        "metric": {"name": METRIC, "goal": "maximize"},
        "command": ["${env}", "${interpreter}", str(program), "${args}"],
        "parameters": {
            "lr": {"values": list(TEMPLATE_LRS)},
            "hidden_units": {"distribution": "int_uniform", "min": 16, "max": 256},
            "epochs": {"value": epochs},
        },
    }
    if method == "random":
        out["early_terminate"] = {"type": "hyperband", "min_iter": 3}
    return out


def sweepkit(*args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(
        [*SWEEPKIT, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"sweepkit {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")


def make_templates(work: Path, epochs: int) -> list[dict[str, Any]]:
    """Real agent runs of tests/support/wandb_program.py, one per learning rate: their run folders and
    the claim and end records the agent wrote for them."""
    from jobs.sweeps import store

    sys.path.insert(0, str(REPO / "tests" / "support"))
    from wandb_program import write_wandb_program

    program = write_wandb_program(work)
    templates = []
    for lr in TEMPLATE_LRS:
        d = definition("grid", program, epochs)
        d["parameters"] = {"lr": {"value": lr}, "epochs": {"value": epochs}}
        sweep = store.create_sweep(d, work / "templates", source="bench")
        sweepkit("agent", "--count", "1", str(sweep.path), cwd=work)
        ((run_id, folded),) = sweep.refresh().items()
        templates.append(
            {"run_id": run_id, "dir": sweep.run_dir(run_id), "end": folded.last_end, "lr": lr}
        )
    return templates


def copy_run(template: dict[str, Any], dest: Path) -> None:
    shutil.copytree(template["dir"], dest, copy_function=os.link)


def build(
    root: Path, n: int, running: int, templates: list[dict[str, Any]], program: Path, epochs: int
) -> dict[str, Path]:
    """The random (hyperband) sweep with its run folders, and a bayes sweep with the same journal."""
    from jobs.sweeps import store

    sweep = store.create_sweep(
        definition("random", program, epochs), root, source="bench", lease_s=LEASE_S
    )
    rng = random.Random(n)
    me = store.AgentIdentity()
    now = time.time()
    records: list[dict[str, Any]] = []
    for i in range(n + running):
        template = templates[i % len(templates)]
        run_id = f"r{i:07d}"
        params = {
            "lr": {"value": template["lr"]},
            "hidden_units": {"value": rng.randint(16, 256)},
            "epochs": {"value": epochs},
        }
        claim = store.claim_record(run_id, 0, params, me, now)
        copy_run(template, sweep.run_dir(run_id))
        if i < n:
            claim["at"] = now - 600 + i * 0.01
            end = {**template["end"], "run": run_id, "k": 0, "at": claim["at"] + 10}
            records += [claim, end]
        else:  # running on another host for long, heartbeat fresh
            other = store.AgentIdentity(host=f"node{i % 50:03d}", pid=1000 + i, pid_ns=None)
            claim = store.claim_record(run_id, 0, params, other, now)
            claim["at"] = now - 2 * LEASE_S
            records.append(claim)
            sweep.heartbeat(store.Claim(run_id, 0, params, sweep.run_dir(run_id), False), other)
    sweep.append(records)
    bayes = store.create_sweep(
        definition("bayes", program, epochs), root, source="bench", lease_s=LEASE_S
    )
    shutil.copyfile(sweep.path / "journal.jsonl", bayes.path / "journal.jsonl")
    for lease in (sweep.path / "leases").iterdir():
        shutil.copyfile(lease, bayes.path / "leases" / lease.name)
    return {"random": sweep.path, "bayes": bayes.path}


# A small launcher runs each measured command: a child forked from this (large) process would count
# this process's pages in its peak RSS.
LAUNCHER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
rc = subprocess.call(sys.argv[1:])
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"rc": rc, "wall": wall, "rss_kb": peak}), file=sys.stderr)
"""


def timed_process(
    argv: list[str], cwd: Path, stdout: Any = subprocess.DEVNULL
) -> tuple[float, float]:
    """(wall s, peak RSS MB) of a fresh process."""
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *argv], cwd=cwd, stdout=stdout, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {"rc": proc.returncode}
    if result["rc"] != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result['rc']}):\n{proc.stderr}")
    return result["wall"], result["rss_kb"] / 1024


# ----- workers (fresh processes) ----------------------------------------------------------------
def worker(args: argparse.Namespace) -> None:
    if args.worker in ("ours", "ours-journal"):
        from jobs.sweeps import store
        from jobs.sweeps.store import snapshot

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


def setup_optuna(root: Path, n: int, epochs: int) -> Path:
    import optuna
    from optuna.distributions import CategoricalDistribution, IntDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = root / "optuna.log"
    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(study_name="bench", storage=storage, direction="maximize")
    dists = {
        "lr": CategoricalDistribution(list(TEMPLATE_LRS)),
        "hidden_units": IntDistribution(16, 256),
    }
    rng = random.Random(n)
    trials = []
    for i in range(n):
        lr = TEMPLATE_LRS[i % len(TEMPLATE_LRS)]
        values = [90.0 * lr * e / epochs for e in range(1, epochs + 1)]
        trials.append(
            optuna.trial.create_trial(
                params={"lr": lr, "hidden_units": rng.randint(16, 256)},
                distributions=dists,
                value=values[-1],
                intermediate_values=dict(enumerate(values, 1)),
            )
        )
    study.add_trials(trials)
    return path


# ----- in-process measures ----------------------------------------------------------------------
def warm_bayes_claims(path: Path, claims: int) -> float:
    from jobs.sweeps import store

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
    from jobs.sweeps import store
    from jobs.sweeps.agent.local import LocalAgent

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
    from jobs.sweeps import store

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


# ----- answers: the fast paths against a full replay ----------------------------------------------
def check_answers(stores: dict[str, Path]) -> str:
    """Compare what the fast paths say with a full replay (a fresh reader of the whole journal that
    reads every run's own W&B records): the same runs, states, metrics, epochs and best run, and the
    same GP data for bayes. Raises SystemExit naming the first difference."""
    import io

    from sweeps.bayes_search import _construct_gp_data, bayes_baseline_validate_and_fill

    from jobs.sweeps import status, store

    fast, full = store.open_sweep(stores["random"]), store.open_sweep(stores["random"])
    light, read = fast.runs(read_ended=False), full.runs()

    def facts(v: store.RunView) -> tuple[Any, ...]:
        return (v.run_id, v.state, v.metric, v.epoch_count, v.attempts, v.params, v.error)

    for a, b in zip(light, read, strict=True):
        if facts(a) != facts(b):
            raise SystemExit(f"fast path differs from a full replay:\n  {facts(a)}\n  {facts(b)}")
    best_fast, best_full = status.best_run(fast, light), status.best_run(full, read)
    assert best_fast is not None and best_full is not None
    if best_fast.run_id != best_full.run_id:
        raise SystemExit(f"best run: {best_fast.run_id} (fast) against {best_full.run_id}")
    streamed = io.StringIO()
    status.write_json(fast, streamed)
    documents = [json.loads(streamed.getvalue()), json.loads(json.dumps(status.snapshot(full)))]
    for document in documents:  # a running run's duration is "until now": read at two moments
        for run in document["runs"]:
            if run["state"] == "running":
                run["duration_s"] = None
    if documents[0] != documents[1]:
        diff = (
            next(
                (a, b)
                for a, b in zip(documents[0]["runs"], documents[1]["runs"], strict=False)
                if a != b
            )
            if documents[0]["runs"] != documents[1]["runs"]
            else (documents[0], documents[1])
        )
        raise SystemExit(
            f"status --json (streamed) differs from the document of a full read: {diff}"
        )
    bayes = store.open_sweep(stores["bayes"])
    bayes.refresh()
    config = bayes_baseline_validate_and_fill(bayes.definition)
    cut, whole = (
        _construct_gp_data(bayes.bayes_runs(), config),
        _construct_gp_data(bayes.engine_runs(), config),
    )
    for a, b in zip(cut[1:], whole[1:], strict=True):
        if repr(a.tolist() if hasattr(a, "tolist") else a) != repr(
            b.tolist() if hasattr(b, "tolist") else b
        ):
            raise SystemExit("bayes: the GP data from cut histories differs from full histories")
    return (
        f"fast paths agree with a full replay: {len(read)} runs (states, metrics, epochs, "
        f"attempts), best run {best_full.run_id}, status --json, bayes GP data"
    )


# ----- the table ---------------------------------------------------------------------------------
def measure(
    root: Path, stores: dict[str, Path], optuna_log: Path, args: argparse.Namespace
) -> dict[str, Any]:
    sweep = stores["random"]
    out: dict[str, Any] = {}
    if args.measures == "all":
        out["status"] = timed_process([*SWEEPKIT, "status", str(sweep)], cwd=root)
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
    from jobs.sweeps import store

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


def table(results: dict[int, dict[str, Any]], running: int) -> str:
    sizes = sorted(results)
    head = "| measure | " + " | ".join(f"{n:,}" for n in sizes) + " |"
    rows = [head, "| --- |" + " --- |" * len(sizes)]

    def row(name: str, cell: Any, key: str) -> None:
        if all(key in results[n] for n in sizes):
            rows.append(f"| {name} | " + " | ".join(cell(results[n]) for n in sizes) + " |")

    row(
        "`status`: wall s / peak RSS MB",
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="100,1000,5000,20000", help="finished runs, comma-separated"
    )
    parser.add_argument("--running", type=int, default=200, help="running runs in every sweep")
    parser.add_argument("--epochs", type=int, default=20, help="epochs the template runs log")
    parser.add_argument(
        "--fresh", type=int, default=3, help="fresh-process claims per size (median)"
    )
    parser.add_argument("--claims", type=int, default=10, help="warm claims per size (p50)")
    parser.add_argument("--checks", type=int, default=10, help="hyperband checks per size (p50)")
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to build (default: a temp folder)"
    )
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
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--store", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    base = Path(tempfile.mkdtemp(prefix="sweepkit-scale-", dir=args.dir))
    os.environ.setdefault("WANDB_SILENT", "true")
    try:
        templates = make_templates(base, args.epochs)
        program = base / "wandb_prog.py"
        results: dict[int, dict[str, Any]] = {}
        for n in sizes:
            root = base / f"n{n}"
            root.mkdir()
            started = time.perf_counter()
            stores = build(root, n, args.running, templates, program, args.epochs)
            optuna_log = setup_optuna(root, n, args.epochs)
            built = time.perf_counter() - started
            if args.check:
                print(check_answers(stores), flush=True)
            results[n] = measure(root, stores, optuna_log, args)
            print(
                f"N={n}: built in {built:.0f} s, measured; random sweep {stores['random']}, "
                f"bayes sweep {stores['bayes']}",
                file=sys.stderr,
                flush=True,
            )
            if not args.keep:
                shutil.rmtree(root)
        text = table(results, args.running)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(text)
    if not args.no_record:
        record(text, args)


def record(text: str, args: argparse.Namespace) -> None:
    cpu = platform.processor() or platform.machine()
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "python " + " ".join(sys.argv)
    entry = f"\n### {when}, {os.cpu_count()} cores ({cpu}), {platform.node()}\n\n    {command}\n\n{text}\n"
    with open(REPO / "bench" / "RESULTS.md", "a") as f:
        f.write(entry)


if __name__ == "__main__":
    main()
