"""The local sweep store: a folder on the shared filesystem that replaces W&B's sweep server.

Layout of a sweep folder (the sweep reference is its path)::

    sweep.yaml        the validated W&B sweep definition, written once at creation
    sweep.json        {schema, sweep_id, created_at, lease_s, max_retries, ...}, written once
    journal.jsonl     append-only records, one per line: "<crc32> <json>" (see jobs/sweeps/journal.py)
    journal.snapshot  the journal's fold up to a byte offset, rewritten by agents (jobs/sweeps/snapshot.py)
    lock              the flufl.lock taken for every append (claims, results)
    claims/           one empty token per hand-out of a run: <run_id>.<attempt>, made O_EXCL
    leases/           <run_id>.<attempt>.json heartbeats, rewritten by atomic rename
    runs/<run_id>/    run folders: run.json, checkpoints, logs, wandb/ (the trainer's)
    synced.json       what `sweepkit sync` uploaded;  slurm/  what `sweepkit submit` submitted

Journal records: ``claim`` {run, k, params (only when k = 0), at, agent, host, pid, slurm} hands
attempt k of a run to an agent; ``end`` {run, k, state, metric, history, epochs, metric_source,
summary, exit_code, error, at} closes it with finished, failed, stopped, preempted or crashed; metric,
history, epochs (a count) and summary (its numbers) are what the agent read of the run's W&B records (or run.json, metric_source
says which: jobs/sweeps/wandb_run/metrics.py). A run's state is that of its
last attempt (running if that has no end). Preempted runs, and crashed ones with retries left, go
back to the queue under the same run id and folder, and are handed out before new runs.

A claim reads the journal without the lock, asks the ``sweeps`` engine for proposals (pure: no
I/O), then takes the lock, reads what was appended meanwhile, marks runs whose lease expired as
crashed, and appends the claim, after an exclusive create of the claim token. Grid proposals are
re-checked against claims appended meanwhile, so no grid point is handed out twice. A random or
bayes proposal is committed as made, from the runs as they were before the lock (possibly missing
the few claims and results appended meanwhile); run_cap, the metric target and the queue are
checked under the lock, so a proposal never exceeds run_cap nor takes a queued run's place.

A lease expires when its heartbeat is older than ``lease_s``; also at once when the holder was on
this host and its process is gone, or when the same SLURM array task has been restarted.
Clocks of the nodes are assumed synchronised (NTP), as flufl.lock also assumes. The records and
the rules folding them into run states are in jobs/sweeps/state.py; the file primitives (lock,
journal, atomic writes) in jobs/sweeps/journal.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from jobs.sweeps import lab_group, snapshot
from jobs.sweeps.definition import planned_runs, quiet_sweeps_import
from jobs.sweeps.definition.parameters import flat_params
from jobs.sweeps.engine_view import bayes_history, bayes_run_class, limited_threads
from jobs.sweeps.journal import (
    LOCK_LIFETIME_S,
    SHARED_FILE_MODE,
    Journal,
    SweepLock,
    create_exclusive,
)
from jobs.sweeps.reconcile import Reconciled, reconcile
from jobs.sweeps.reconcile import warning as reconcile_warning
from jobs.sweeps.ref import DEFAULT_ROOT, no_sweep_at  # noqa: F401  (re-exported)
from jobs.sweeps.state import (  # noqa: F401  (re-exported: the store API of the BRIEF)
    ENGINE_STATE,
    FINAL_STATES,
    HOST,
    RUN_STATES,
    AgentIdentity,
    Claim,
    FoldedRun,
    NoClaim,
    RunView,
    alive,
    iso,
    lease_expired,
    new_id,
    pids_comparable,
    plain,
    same_slurm_task,
    slurm_ids,
)
from jobs.sweeps.wandb_run.metrics import RunMetricsReader
from train.atomic import write_atomic
from train.errors import UserError
from train.write_errors import as_user_error

SCHEMA = 1
DEFAULT_LEASE_S = 120.0
DEFAULT_MAX_RETRIES = 2
# Proposals drawn ahead, outside the lock, for the methods whose proposals do not depend on results
# (grid: the next points in order; random: i.i.d. draws). An agent uses them one claim after
# another; grid points are re-checked under the lock against claims appended meanwhile.
# Grid: every agent draws the same next points, so a batch lasts about GRID_DRAWN_AHEAD / agents of
# its own claims; the engine enumerates the whole grid on every call anyway, so 256 costs about
# what 32 does (8.7 against 6.4 ms at 1,000 runs) and 16 agents redraw 8x less often.
# Random: draws cost ~0.3 ms each, so an agent's first claim draws 4, later ones 32 at a time.
GRID_DRAWN_AHEAD = 256
RANDOM_FIRST_DRAW = 4
DRAWN_AHEAD = 32
# Bayes proposals (a Gaussian process: ~50 ms of CPU at 1,000 runs) are made outside the lock. If a
# claim planned to resume a queued run and another agent took it first, it lets the lock go and
# proposes outside it; only its last try proposes under the lock.
OPTIMISTIC_TRIES = 3


def check_permissions(path: Path) -> None:
    """A sweep definition launches programs: refuse a store that other users can write to."""
    shared = lab_group.sweep_group(path)
    for item in (path, path / "sweep.yaml", path / "sweep.json", path / "journal.jsonl"):
        try:
            info = item.stat()
        except FileNotFoundError:
            continue
        why = lab_group.refusal(item, info.st_mode, info.st_gid, shared)
        if why is not None:
            raise UserError(why)


def create_sweep(
    definition: dict[str, Any],
    root: Path,
    source: str,
    lease_s: float = DEFAULT_LEASE_S,
    max_retries: int = DEFAULT_MAX_RETRIES,
    extra: dict[str, Any] | None = None,
    group: str | None = None,
) -> LocalSweep:
    """Make a new sweep folder under ``root`` (built in a temp folder and renamed into place);
    ``group``: shared with that Unix group (jobs/sweeps/lab_group.py)."""
    gid = lab_group.group_id(group) if group is not None else None
    if group is not None:
        extra = {**(extra or {}), "group": group}

    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(
            f"cannot create the sweep root {root}: {err.strerror}; pass --root to a writable folder"
        ) from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise UserError(
            f"sweep root {root} is not writable by you; pass --root to a writable folder"
        )
    for _ in range(10):
        sweep_id = new_id()
        final = root / sweep_id
        if not final.exists():
            break
    tmp = root / f".{sweep_id}.creating"
    try:
        _build_sweep_folder(
            tmp, final, sweep_id, definition, source, lease_s, max_retries, extra, gid
        )
    except OSError as err:
        # a full or read-only disk: no half-made folder is left behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise as_user_error(
            err, err.filename or root, f"free space in {root} or pass --root to another folder"
        ) from None
    return LocalSweep(final)


def _build_sweep_folder(
    tmp: Path,
    final: Path,
    sweep_id: str,
    definition: dict[str, Any],
    source: str,
    lease_s: float,
    max_retries: int,
    extra: dict[str, Any] | None,
    gid: int | None,
) -> None:
    import yaml

    tmp.mkdir(mode=0o755)
    os.chmod(tmp, 0o755)  # whatever the umask: group-writable stores are refused later
    if gid is not None:
        lab_group.share_folder(tmp, gid)
    meta = {
        "schema": SCHEMA,
        "sweep_id": sweep_id,
        "created_at": iso(time.time()),
        "source": source,
        "lease_s": float(lease_s),
        "max_retries": int(max_retries),
        **(extra or {}),
    }
    header = f"# sweep {sweep_id}, created {meta['created_at']} from {source}; the engine reads this file, do not edit\n"
    definition_text = header + yaml.safe_dump(definition, sort_keys=False)
    write_atomic(tmp / "sweep.yaml", definition_text.encode(), SHARED_FILE_MODE)
    write_atomic(tmp / "sweep.json", (json.dumps(meta, indent=2) + "\n").encode(), SHARED_FILE_MODE)
    write_atomic(tmp / "journal.jsonl", b"", SHARED_FILE_MODE)
    if gid is not None:
        lab_group.share_file(tmp / "journal.jsonl", gid)  # every member's agent appends
    for sub in ("claims", "leases", "runs"):
        (tmp / sub).mkdir(mode=0o755)
        os.chmod(tmp / sub, 0o755)
        if gid is not None:
            lab_group.share_folder(tmp / sub, gid)
    os.rename(tmp, final)


def _last_written(run_dir: Path, default: float) -> float:
    """When a run reconciled from its records last wrote them: the end time its records imply."""
    times = []
    for name in ("run.json", "output.log"):
        with contextlib.suppress(OSError):
            times.append((run_dir / name).stat().st_mtime)
    return max(times, default=default)


@contextlib.contextmanager
def _undone_on_failure(undo: Callable[[], None]) -> Iterator[None]:
    """A claim whose journal append failed (a full or read-only disk) takes back what it made
    (its token, its run folder), so that nothing half-made stays behind."""
    try:
        yield
    except OSError:
        with contextlib.suppress(OSError):
            undo()
        raise


def is_local_ref(ref: str) -> bool:
    return Path(ref).is_dir()


def open_sweep(ref: str | Path) -> LocalSweep:
    """The local sweep at ``ref`` (its folder), checked to exist and to be safe to run."""
    path = Path(ref)
    if not path.is_dir():
        raise no_sweep_at(ref)
    if not (path / "sweep.json").is_file() or not (path / "sweep.yaml").is_file():
        raise UserError(
            f"{path} is not a sweep folder (no sweep.json / sweep.yaml); pass the folder printed by sweepkit sweep create"
        )
    return LocalSweep(path)


class LocalSweep:
    """A sweep folder: reading its runs (status, report) and handing them out (agents)."""

    def __init__(self, path: Path):
        import yaml

        self.path = path
        check_permissions(path)
        try:
            meta = json.loads((path / "sweep.json").read_text())
            self.definition: dict[str, Any] = yaml.safe_load((path / "sweep.yaml").read_text())
        except (OSError, ValueError, yaml.YAMLError) as err:
            raise UserError(f"cannot read sweep {path}: {err}; the folder is damaged") from None
        self.meta = meta
        self.sweep_id: str = meta["sweep_id"]
        self.created_at: str = meta["created_at"]
        self.lease_s = float(meta.get("lease_s", DEFAULT_LEASE_S))
        self.max_retries = int(meta.get("max_retries", DEFAULT_MAX_RETRIES))
        self.metric_name: str | None = (self.definition.get("metric") or {}).get("name")
        self.goal: str = (self.definition.get("metric") or {}).get("goal", "minimize")
        self._journal = Journal(path / "journal.jsonl")
        self._runs_root = path / "runs"
        self._snapshot_at = 0  # the journal offset of the last snapshot read or written
        self._runs: dict[str, FoldedRun] = {}
        self._open: dict[str, FoldedRun] = {}
        self._target = (self.definition.get("metric") or {}).get("target")
        self._target_hit = False
        self._ahead: list[tuple[tuple[str, ...], dict[str, Any]]] = []  # (grid key, params)
        self._draw = (
            GRID_DRAWN_AHEAD if self.definition.get("method") == "grid" else RANDOM_FIRST_DRAW
        )
        self._hash_memo: dict[tuple[type, str], str] = {}
        self.group_id = lab_group.sweep_group(path)  # shared with a lab group (or None)
        self._warned: set[str] = set()  # runs reconciled from their own records, warned about
        self._param_names = sorted(self.definition.get("parameters") or {})
        self._lock: SweepLock | None = None
        # what runs logged (their W&B records, else run.json), read incrementally
        self.metrics = RunMetricsReader(self.metric_name, self.goal)

    # ----- reading -------------------------------------------------------------------------
    def planned_runs(self) -> int | None:
        return planned_runs(self.definition)

    def refresh(self) -> dict[str, FoldedRun]:
        if self._journal.offset == 0 and not self._runs:
            self._load_snapshot()
        for record in self._journal.read_new():
            self._apply(record)
        return self._runs

    def _load_snapshot(self) -> None:
        """Start from the journal's snapshot, if there is a sound one (jobs/sweeps/snapshot.py)."""
        found = snapshot.read(self.path, self._journal.path)
        if found is not None:
            self._runs, self._target_hit = found.runs, found.target_hit
            self._open = {
                run_id: run
                for run_id, run in found.runs.items()
                if run.state in ("running", "preempted", "crashed")
                and (run.state == "running" or run.queued(self.max_retries))
            }
            self._journal.offset = self._snapshot_at = found.offset

    def write_snapshot(self, force: bool = False) -> bool:
        """Write a snapshot of the fold as last read, when the journal has grown by
        ``snapshot.WRITE_AFTER_BYTES`` since the last one this reader saw (or ``force``)."""
        offset = self._journal.offset
        if not force and offset - self._snapshot_at < snapshot.WRITE_AFTER_BYTES:
            return False
        self._snapshot_at = offset
        return snapshot.write(self.path, self._journal.path, self._runs, offset, self._target_hit)

    def _apply(self, record: dict[str, Any]) -> None:
        run_id = record.get("run")
        if not isinstance(run_id, str):
            return
        run = self._runs.get(run_id)
        if record["t"] == "claim":
            if run is None:
                if not isinstance(record.get("params"), dict):
                    return
                run = self._runs[run_id] = FoldedRun(run_id, record["params"])
            if record.get("k") == len(run.claims):
                run.claims.append(record)
                run.engine_run = run.bayes_run = None
        elif record["t"] == "end" and run is not None and isinstance(record.get("k"), int):
            run.ends.setdefault(record["k"], record)
            run.engine_run = run.bayes_run = None
            metric, target = record.get("metric"), self._target
            if (
                record.get("state") == "finished"
                and target is not None
                and isinstance(metric, (int, float))
            ):
                self._target_hit |= (
                    metric >= target if self.goal == "maximize" else metric <= target
                )
        else:
            return
        # runs that are running or queued: the only ones a claim has to look at one by one
        if run.state == "running" or run.queued(self.max_retries):
            self._open[run.run_id] = run
        else:
            self._open.pop(run.run_id, None)

    def _grid_key(self, params: dict[str, Any]) -> tuple[str, ...]:
        """A grid point as the engine identifies it: the engine's hash of each value (memoised)."""
        from sweeps.grid_search import yaml_hash

        key = []
        for name in self._param_names:
            value = (params.get(name) or {}).get("value")
            memo = (type(value), repr(value))
            if memo not in self._hash_memo:
                self._hash_memo[memo] = yaml_hash(value)
            key.append(self._hash_memo[memo])
        return tuple(key)

    def _candidates(self) -> list[dict[str, Any]]:
        """Proposals drawn ahead (DRAWN_AHEAD at a time) that are still free, in the engine's order."""
        if self.definition.get("method") == "grid":
            taken = {self._run_grid_key(r) for r in self._runs.values()}
            self._ahead = [(key, p) for key, p in self._ahead if key not in taken]
        if not self._ahead:
            grid = self.definition.get("method") == "grid"
            self._ahead = [
                (self._grid_key(p) if grid else (), p) for p in self._propose(self._draw)
            ]
            self._draw = GRID_DRAWN_AHEAD if grid else DRAWN_AHEAD
        return [p for _, p in self._ahead]

    def _run_grid_key(self, run: FoldedRun) -> tuple[str, ...]:
        if run.grid_key is None:
            run.grid_key = self._grid_key(run.params)
        return run.grid_key

    def run_dir(self, run_id: str) -> Path:
        return self.path / "runs" / run_id

    def runs(self, read_ended: bool = True) -> list[RunView]:
        """Every run with its state, swept values, metric and what its run.json says.
        ``read_ended=False``: an ended run whose end record holds what its agent read of it
        (metric, epoch count, summary) is shown from that record, with no read of its folder
        (its ``epochs`` rows, ``config`` and ``record`` stay empty); only the others are read."""
        now = time.time()
        views = []
        for run in self.refresh().values():
            view = None if read_ended else self._ended_view(run)
            views.append(view if view is not None else self._view(run, now))
        return views

    def run_view(self, run_id: str) -> RunView:
        """One run (as in ``runs()``, its records read), from the journal as last read."""
        return self._view(self._runs[run_id], time.time())

    def _ended_view(self, run: FoldedRun) -> RunView | None:
        """An ended run as its journal records say, or None if they do not say enough."""
        end = run.last_end
        if end is None or not isinstance(end.get("epochs"), int) or "metric_source" not in end:
            return None
        first, last = run.claims[0], run.claims[-1]
        state = str(end["state"])
        metric = end.get("metric")
        # (the folder joined once to the runs' root, the queue rule from the end record read: a
        # status of 20,000 runs spent a third of its time in pathlib and the run state properties)
        queued = state == "preempted" or (state == "crashed" and run.crashes <= self.max_retries)
        return RunView(
            run_id=run.run_id,
            state=state,
            params=flat_params(run.params),
            run_dir=self._runs_root / run.run_id,
            metric=metric if isinstance(metric, (int, float)) else None,
            summary=dict(end.get("summary") or {}),
            host=last.get("host"),
            slurm=last.get("slurm") or {},
            started_at=iso(first.get("at")),
            ended_at=iso(end.get("at")),
            attempts=len(run.claims),
            error=end.get("error") if state in ("failed", "crashed") else None,
            exit_code=end.get("exit_code"),
            queued=queued,
            duration_s=round(end["at"] - first.get("at", end["at"]), 1),
            metric_source=end.get("metric_source") if end.get("metric_source") != "none" else None,
            metric_history=list(end.get("history") or []),
            # values logged under the sweep's metric, as hyperband counts epochs (rows without one)
            epoch_count=len(end.get("history") or []) if self.metric_name else end["epochs"],
        )

    def _view(self, run: FoldedRun, now: float) -> RunView:
        run_dir = self.run_dir(run.run_id)
        end = run.last_end
        state = run.state
        reconciled = None
        if state == "running" and self._lease_expired(run, None, now):
            reconciled = self._reconciled(run)
            state = "crashed" if reconciled is None else reconciled[0].state
            if reconciled is not None:
                end = {
                    **reconciled[1],
                    "at": _last_written(run_dir, now),
                    "exit_code": reconciled[0].exit_code,
                }
        logged = self.metrics.read(run_dir, final=state != "running")
        info = self.metrics.run_json(run_dir)
        # an ended attempt: what the agent read when it ended (it keeps what a killed program's
        # lost writes no longer show); else what the run's records say now
        metric = end.get("metric") if end is not None and state != "running" else None
        if metric is None:
            metric = logged.metric
        first, last = run.claims[0], run.claims[-1]
        error = (end or {}).get("error") or info.get("error")
        history = list(logged.history or (end or {}).get("history") or [])
        return RunView(
            run_id=run.run_id,
            state=state,
            params=flat_params(run.params),
            run_dir=run_dir,
            metric=metric if isinstance(metric, (int, float)) else None,
            epochs=list(logged.epochs),
            summary=logged.summary,
            host=info.get("host") or last.get("host"),
            slurm=info.get("slurm") or last.get("slurm") or {},
            started_at=iso(first.get("at")),
            ended_at=iso(end.get("at")) if end is not None and state != "running" else None,
            attempts=len(run.claims),
            error=error if state in ("failed", "crashed") else None,
            exit_code=(end or {}).get("exit_code"),
            queued=run.queued(self.max_retries),
            duration_s=round(
                (end["at"] if end is not None and state != "running" else now)
                - first.get("at", now),
                1,
            ),
            record=info,
            config=info.get("config") or logged.config,
            metric_source=logged.source if logged.source != "none" else None,
            metric_history=history,
            epoch_count=len(history) if self.metric_name else len(logged.epochs),
        )

    def failing_from_the_start(self, limit: int) -> FoldedRun | None:
        """The last failed run, when ``limit`` or more runs failed before their first epoch and
        no run shows the program works (one finished or stopped by hyperband, or one that logged
        an epoch: a failure after that, or a long run still training, means the sweep is fine):
        the sign of a broken program or environment, which every new run would hit too."""
        runs = list(self.refresh().values())
        if any(r.state in ("finished", "stopped") for r in runs):
            return None
        if any(r.state == "failed" and (r.last_end or {}).get("epochs") for r in runs):
            return None
        failed = [r for r in runs if r.state == "failed"]
        if len(failed) < limit:
            return None
        running = [r for r in runs if r.state == "running"]
        if any(self.metrics.read(self.run_dir(r.run_id)).epochs for r in running):
            return None
        return max(failed, key=lambda r: (r.last_end or {}).get("at", 0))

    def remaining(self) -> tuple[int | None, int | None]:
        """(planned, remaining): the runs the sweep makes in all, and those no agent holds or has
        ended (queued runs, and runs whose agent is gone, remain: they need a task). From the
        journal and the leases, no run.json read."""
        planned = self.planned_runs()
        if planned is None:
            return None, None
        now = time.time()
        taken = sum(
            1
            for r in self.refresh().values()
            if not r.queued(self.max_retries)
            # a run whose agent is gone is handed out again (claim), so it still needs a task
            and not (r.state == "running" and self._lease_expired(r, None, now))
        )
        return planned, max(0, planned - taken)

    def counts(self, views: list[RunView] | None = None) -> dict[str, int]:
        """Runs by state, every state present (0 where none); ``views``: already read runs()."""
        counts = dict.fromkeys(RUN_STATES, 0)
        for view in self.runs() if views is None else views:
            counts[view.state] += 1
        return counts

    # ----- leases --------------------------------------------------------------------------
    def _lease_path(self, run_id: str, k: int) -> Path:
        return self.path / "leases" / f"{run_id}.{k}.json"

    def heartbeat(self, claim: Claim, me: AgentIdentity, child_pid: int | None = None) -> None:
        lease = {
            "run": claim.run_id,
            "k": claim.k,
            "beat_at": time.time(),
            "lease_s": self.lease_s,
            "agent": me.agent,
            "host": me.host,
            "pid": me.pid,
            "pid_ns": me.pid_ns,
            "child_pid": child_pid,
            "slurm": me.slurm,
        }
        write_atomic(
            self._lease_path(claim.run_id, claim.k), json.dumps(lease).encode(), SHARED_FILE_MODE
        )

    def _lease_expired(self, run: FoldedRun, me: AgentIdentity | None, now: float) -> bool:
        claim = run.claims[-1]
        if (
            now - claim.get("at", 0) < self.lease_s
            and not same_slurm_task(claim.get("slurm"), me.slurm if me else None)
            and (not pids_comparable(claim) or alive(claim.get("pid")))
        ):
            return False  # cannot have expired yet: spare the read of its lease file
        try:
            lease = json.loads(self._lease_path(run.run_id, run.k).read_text())
        except (OSError, ValueError):  # no heartbeat yet: the claim record stands for one
            lease = {
                "beat_at": claim.get("at", 0),
                "host": claim.get("host"),
                "pid": claim.get("pid"),
                "pid_ns": claim.get("pid_ns"),
                "slurm": claim.get("slurm"),
            }
        return lease_expired(lease, self.lease_s, me, now)

    def open_runs(self) -> dict[str, FoldedRun]:
        """The running and queued runs by id, as last read (``refresh`` reads on)."""
        return self._open

    def _expired_leases(self, me: AgentIdentity) -> list[str]:
        """The running runs whose lease looks expired now, by their claim and lease file (read
        without the lock)."""
        now = time.time()
        return [
            r.run_id
            for r in list(self._open.values())
            if r.state == "running" and self._lease_expired(r, me, now)
        ]

    # ----- handing out runs ----------------------------------------------------------------
    def _can_add(self) -> bool:
        cap = self.definition.get("run_cap")
        return not (cap and len(self._runs) >= int(cap)) and not self._target_hit

    def engine_runs(self, live: bool = False) -> list[Any]:
        """The runs as the sweeps engine's SweepRun objects (state, config, metric history), cached
        per run until a record changes it. ``live``: take running runs' history of the metric from
        what they logged so far (hyperband needs it; the journal has one only once a run ended)."""
        from sweeps.run import SweepRun

        out = []
        for run in self._runs.values():
            cached = run.engine_run
            if cached is None or (live and run.state == "running"):
                end = run.last_end or {}
                values = end.get("history") or []
                if live and run.state == "running":
                    values = self.metrics.history(self.run_dir(run.run_id))
                history = [{self.metric_name: v} for v in values] if self.metric_name else []
                summary = (
                    {self.metric_name: end["metric"]}
                    if self.metric_name and end.get("metric") is not None
                    else {}
                )
                cached = SweepRun(
                    name=run.run_id,
                    state=ENGINE_STATE[run.state],
                    config=run.params,
                    history=history,
                    summary_metrics=summary,
                )
                if not (live and run.state == "running"):
                    run.engine_run = cached
            out.append(cached)
        return out

    def bayes_runs(self) -> list[Any]:
        """The runs as bayes search reads them (jobs/sweeps/engine_view.py): an ended run's
        history cut to what bayes reads, its extrema memoised; cached per run until a record
        changes it. Running runs go as they are: bayes reads only their swept values."""
        cls = bayes_run_class()
        out = []
        for run in self._runs.values():
            if run.bayes_run is None:
                end = run.last_end or {}
                values = bayes_history(end.get("history") or [])
                name = self.metric_name
                run.bayes_run = cls(
                    name=run.run_id,
                    state=ENGINE_STATE[run.state],
                    config=run.params,
                    history=[{name: v} for v in values] if name else [],
                    summary_metrics=(
                        {name: end["metric"]} if name and end.get("metric") is not None else {}
                    ),
                )
            out.append(run.bayes_run)
        return out

    def _propose(self, n: int) -> list[dict[str, Any]]:
        """``n`` proposals from the engine: what ``sweeps.run.next_runs`` dispatches to, called
        directly, so that a grid or random agent does not import scikit-learn (bayes only, ~0.15 s)."""
        quiet_sweeps_import()
        method = self.definition.get("method")
        if method == "grid":
            from sweeps.grid_search import grid_search_next_runs

            proposals = grid_search_next_runs(self.engine_runs(), self.definition, n=n)
        elif method == "random":
            from sweeps.random_search import random_search_next_runs

            # random search takes no runs: spare building 1,000 SweepRun objects for nothing
            proposals = random_search_next_runs(self.definition, n=n)
        else:
            from sweeps.bayes_search import bayes_search_next_runs

            with limited_threads():
                proposals = bayes_search_next_runs(self.bayes_runs(), self.definition, n=n)
        return [plain(p.config) for p in proposals if p is not None]

    def claim(self, me: AgentIdentity) -> Claim | NoClaim:
        """Hand the next run to agent ``me``: a queued (preempted/crashed) run first, else a new one."""
        if not os.access(self.path, os.W_OK):
            raise UserError(
                f"sweep folder {self.path} is not writable by you; agents record their claims there"
            )
        method = self.definition.get("method")
        for attempt in range(OPTIMISTIC_TRIES):
            self.refresh()
            queued = [r for r in self._open.values() if r.queued(self.max_retries)]
            if queued or not self._can_add():
                proposals: list[dict[str, Any]] = []
            elif method in ("grid", "random"):
                proposals = self._candidates()
            else:
                proposals = self._propose(1)
            seen_at = self._journal.offset
            self.write_snapshot()  # outside the lock, rarely (after ~1 MB of journal)
            suspects = self._expired_leases(me)  # outside the lock: a lease read per running run
            with self.lock() as lock:
                self.refresh()
                now = time.time()
                # under the lock, only the suspects' leases are read again (a heartbeat may have
                # come meanwhile): the hold does not grow with the number of running runs; a lease
                # that expires meanwhile is found by the next claim
                expired = [
                    r
                    for r in (self._runs[run_id] for run_id in suspects)
                    if r.state == "running" and self._lease_expired(r, me, now)
                ]
                records = [self._expired_end(run, me, now) for run in expired]
                if records:
                    self._append(records)
                for run in sorted(
                    (r for r in self._open.values() if r.queued(self.max_retries)),
                    key=lambda r: (r.last_end or {}).get("at", 0),
                ):
                    k = run.k + 1
                    if self._take_token(run.run_id, k, me) and lock.still_held():
                        token = self.path / "claims" / f"{run.run_id}.{k}"
                        with _undone_on_failure(token.unlink):
                            self._append([self._claim_record(run.run_id, k, None, me)])
                        return Claim(
                            run.run_id, k, run.params, self.run_dir(run.run_id), resumed=True
                        )
                if not self._can_add():
                    return self._no_claim()
                if method == "grid" and self._journal.offset != seen_at:
                    proposals = self._candidates()  # re-checked against claims made meanwhile
                elif not proposals:
                    if method not in ("grid", "random") and attempt < OPTIMISTIC_TRIES - 1:
                        continue  # the queued run went elsewhere: propose outside the lock, retry
                    proposals = (
                        self._candidates() if method in ("grid", "random") else self._propose(1)
                    )
                if not proposals:
                    return self._no_claim()
                params = proposals[0]
                for _ in range(10):
                    run_id = new_id()
                    try:
                        # exclusive: ids never collide
                        lab_group.make_dir(self.run_dir(run_id), self.group_id)
                        break
                    except FileExistsError:
                        continue
                if not lock.still_held():
                    raise UserError(
                        f"the sweep lock {self.path / 'lock'} was broken while this agent held it (a stalled filesystem?); rerun the agent"
                    )
                with _undone_on_failure(self.run_dir(run_id).rmdir):
                    self._append([self._claim_record(run_id, 0, params, me)])
                self._ahead = [(key, p) for key, p in self._ahead if p is not params]
                return Claim(run_id, 0, params, self.run_dir(run_id), resumed=False)
        raise AssertionError("unreachable: the last try proposes under the lock")

    def _reconciled(self, run: FoldedRun) -> tuple[Reconciled, dict[str, Any]] | None:
        """How a running run whose lease is gone ended, by its own records (jobs/sweeps/reconcile.py),
        with what it logged; None if they do not say it ended. Warns once per run."""
        run_dir = self.run_dir(run.run_id)
        logged = self.metrics.read(run_dir, final=True)
        outcome = reconcile(self.metrics.run_json(run_dir), logged.exit_code)
        if outcome is None:
            return None
        if run.run_id not in self._warned:
            self._warned.add(run.run_id)
            print(reconcile_warning(run.run_id, outcome), file=sys.stderr)
        return outcome, logged.as_end_record()

    def _expired_end(self, run: FoldedRun, me: AgentIdentity, now: float) -> dict[str, Any]:
        """The end record of an attempt whose lease expired: what the run's own records say when
        they say it ended (a finished run stays finished), else crashed."""
        end: dict[str, Any] = {"t": "end", "run": run.run_id, "k": run.k, "at": now, "by": me.agent}
        found = self._reconciled(run)
        if found is not None:
            outcome, logged = found
            return {
                **end,
                **logged,
                "state": outcome.state,
                "exit_code": outcome.exit_code,
                "error": outcome.error,
                "reconciled_from": outcome.source,
            }
        holder = run.claims[-1]
        error = f"lease expired: no heartbeat from agent {holder.get('agent')} on {holder.get('host')} (pid {holder.get('pid')}) for {self.lease_s:g} s"
        return {**end, "state": "crashed", "error": error}

    def _append(self, records: list[dict[str, Any]]) -> None:
        """Append records (the caller holds the lock) and fold them in, with no re-read when this
        reader was at the end of the journal."""
        for record in self._journal.append_and_read(records):
            self._apply(record)

    def _take_token(self, run_id: str, k: int, me: AgentIdentity) -> bool:
        """Exclusive-create the token for attempt k. A token with no claim record that is older than
        the lock's lifetime was left by a claimer that died between the two: it is void."""
        token = self.path / "claims" / f"{run_id}.{k}"
        if create_exclusive(token, me.agent.encode()):
            return True
        try:
            stale = time.time() - token.stat().st_mtime > LOCK_LIFETIME_S + 10
        except FileNotFoundError:
            stale = True
        if stale:
            token.unlink(missing_ok=True)
            return create_exclusive(token, me.agent.encode())
        return False

    def _claim_record(
        self, run_id: str, k: int, params: dict[str, Any] | None, me: AgentIdentity
    ) -> dict[str, Any]:
        record = {
            "t": "claim",
            "run": run_id,
            "k": k,
            "at": time.time(),
            "agent": me.agent,
            "host": me.host,
            "pid": me.pid,
            "pid_ns": me.pid_ns,
            "slurm": me.slurm,
        }
        if params is not None:
            record["params"] = params
        return record

    def _no_claim(self) -> NoClaim:
        runs = list(self._runs.values())
        done = sum(1 for r in runs if r.final(self.max_retries))
        running = sum(1 for r in runs if r.state == "running")
        queued = sum(1 for r in runs if r.queued(self.max_retries))
        planned = self.planned_runs()
        total = max(planned or 0, len(runs))
        if running == 0 and queued == 0:
            by_state = ", ".join(
                f"{n} {s}" for s in FINAL_STATES if (n := sum(1 for r in runs if r.state == s))
            )
            return NoClaim(
                True,
                f"sweep complete: {done} of {total} runs done"
                + (f" ({by_state})" if by_state else ""),
            )
        return NoClaim(
            False,
            f"nothing to claim: {done} of {total} runs done, {running} running on other agents",
        )

    def complete(self) -> bool:
        """True when no run is running or queued and the search has nothing more to propose."""
        runs = self.refresh().values()
        if self._open:
            return False
        if not self._can_add():
            return True
        planned = self.planned_runs()
        return planned is not None and len(runs) >= planned

    def lock(self) -> SweepLock:
        """The sweep's lock (one flufl.lock object per LocalSweep, reused for every append)."""
        if self._lock is None:
            self._lock = SweepLock(self.path / "lock")
        return self._lock

    def finish(self, claim: Claim, me: AgentIdentity, state: str, **result: Any) -> bool:
        """Record how attempt ``claim.k`` ended. False if another agent already closed it (our lease was lost)."""
        with self.lock():
            self.refresh()
            run = self._runs[claim.run_id]
            if claim.k in run.ends:
                return False
            self._append(
                [
                    {
                        "t": "end",
                        "run": claim.run_id,
                        "k": claim.k,
                        "state": state,
                        "at": time.time(),
                        "by": me.agent,
                        **result,
                    }
                ]
            )
        self._lease_path(claim.run_id, claim.k).unlink(missing_ok=True)
        return True

    def lost(self, claim: Claim) -> bool:
        """True if another agent has closed this attempt (declared it crashed after its lease expired)."""
        self.refresh()
        return claim.k in self._runs[claim.run_id].ends
