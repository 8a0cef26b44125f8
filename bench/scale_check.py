"""The scale benchmark's ``--check``: what the fast paths say against a full replay.

The fast paths (a run list that skips ended runs' W&B records, streamed ``status --json``, bayes
GP data from cut histories and from the snapshot's facts of the runs it leaves unread, a grid claim's points taken from the snapshot's head) must give the
same answers as a fresh reader of the whole journal
that reads every run's own W&B records.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any


def check_answers(stores: dict[str, Path]) -> str:
    """Compare what the fast paths say with a full replay (a fresh reader of the whole journal that
    reads every run's own W&B records): the same runs, states, metrics, epochs and best run, and the
    same GP data for bayes. Raises SystemExit naming the first difference."""
    from sweepkit.jobs.sweeps import store

    fast, full = store.open_sweep(stores["random"]), store.open_sweep(stores["random"])
    runs, best = check_runs(fast, full)
    check_status_json(fast, full)
    check_bayes_gp_data(stores["bayes"])
    taken = check_grid_head(stores["grid"])
    return (
        f"fast paths agree with a full replay: {runs} runs (states, metrics, epochs, "
        f"attempts), best run {best}, status --json, bayes GP data, grid points taken ({taken})"
    )


def check_runs(fast: Any, full: Any) -> tuple[int, str]:
    """The run list without the ended runs' W&B records against the one with them, and the best
    run each gives: (how many runs, the best run's id)."""
    from sweepkit.jobs.sweeps import status, store

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
    return len(read), best_full.run_id


def check_status_json(fast: Any, full: Any) -> None:
    """``status --json`` as it is streamed (ended runs from their end records) against the
    document of a full read (``--records``), but for what only a run's own records hold: its
    per-epoch rows and config (null), and its summary's values that are not numbers."""
    from sweepkit.jobs.sweeps import status
    from sweepkit.jobs.sweeps.wandb_run.metrics import is_number

    streamed = io.StringIO()
    status.write_json(fast, streamed)
    documents = [json.loads(streamed.getvalue()), json.loads(json.dumps(status.snapshot(full)))]
    for run in documents[1]["runs"]:
        if run["state"] != "running":
            run["epochs"] = run["config"] = None
            run["summary"] = {k: v for k, v in run["summary"].items() if is_number(v)}
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


def check_bayes_gp_data(path: Path) -> None:
    """W&B's bayes GP data from the runs' cut histories against their full histories."""
    from sweeps.bayes_search import _construct_gp_data, bayes_baseline_validate_and_fill

    from sweepkit.jobs.sweeps import store

    bayes = store.open_sweep(path)
    bayes.refresh()
    config = bayes_baseline_validate_and_fill(bayes.definition)
    cut, whole = (
        _construct_gp_data(bayes.bayes_runs(), config),
        _construct_gp_data(bayes.engine_runs(), config),
    )
    for a, b in zip(cut[1:], whole[1:], strict=True):
        if _listed(a) != _listed(b):
            raise SystemExit("bayes: the GP data from cut histories differs from full histories")
    # a fresh claim's runs: the snapshot's facts of those its head leaves unread (bayes_head.py);
    # agents write a snapshot every WRITE_AFTER_BYTES of journal: a small sweep has none yet
    if not bayes.write_snapshot(force=True):
        raise SystemExit(f"bayes: could not write the journal snapshot in {path}")
    fast = store.open_sweep(path)
    fast._state.catch_up()
    every = fast._state.bayes_runs()
    if every is None:
        raise SystemExit(f"bayes: the journal snapshot in {path} keeps no usable bayes facts")
    ours, theirs = fast._engine._bayes(), bayes._engine._bayes()
    got = ours._gp_data([ours.facts(run) for run in every])
    want = theirs._gp_data([theirs.facts(run) for run in bayes.fold.runs.values()])
    if any(_listed(a) != _listed(b) for a, b in zip(got, want, strict=True)):
        raise SystemExit("bayes: the GP data from the snapshot's facts differs from a full read")


def _listed(value: Any) -> str:
    return repr(value.tolist() if hasattr(value, "tolist") else value)


def check_grid_head(path: Path) -> int:
    """The grid points taken and the next ones proposed, from the snapshot's head and the journal
    after it, against those of every run read; how many are taken."""
    from sweepkit.jobs.sweeps import store

    # agents write a snapshot every WRITE_AFTER_BYTES of journal: a small sweep has none yet
    writer = store.open_sweep(path)
    writer.refresh()
    if not writer.write_snapshot(force=True):
        raise SystemExit(f"grid: could not write the journal snapshot in {path}")
    fast, full = store.open_sweep(path), store.open_sweep(path)
    fold = fast._state.catch_up()
    if fold.unread is None or not fast._engine.reads_grid_head(fold.unread):
        raise SystemExit("grid: the snapshot's head keeps no grid points")
    full.refresh()
    head = fast._engine._grid_taken(fold.runs.values(), fold.unread)
    every = full._engine._grid_taken(full.fold.runs.values(), None)
    proposed = fast._engine.propose(8, fold.runs.values(), fold.unread)
    if head != every or proposed != full._engine.propose(8, full.fold.runs.values()):
        raise SystemExit(f"grid: points taken from the head {head} against {every}")
    return len(every)
