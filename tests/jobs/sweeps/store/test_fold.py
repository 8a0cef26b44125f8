"""The journal's fold (jobs/sweeps/store/fold.py), in memory: records in, run states out."""

from __future__ import annotations

from journal_records import claim, end

from sweepkit.jobs.sweeps.store.fold import Fold, apply

X1 = {"x": {"value": 1}}


def test_a_claimed_run_is_running_until_its_attempt_ends() -> None:
    fold = apply(Fold(), [claim("r1", 0, X1)])
    run = fold.runs["r1"]
    assert (run.state, run.k, run.params) == ("running", 0, X1)
    assert list(fold.open) == ["r1"]
    apply(fold, [end("r1", 0, "finished", metric=0.5)])
    assert run.state == "finished" and run.done(fold.max_retries)
    assert fold.open == {}


def test_preempted_and_crashed_runs_are_queued_until_retries_are_spent() -> None:
    fold = apply(Fold(max_retries=1), [claim("p", 0, X1), end("p", 0, "preempted")])
    assert fold.runs["p"].queued(1) and "p" in fold.open
    apply(fold, [claim("c", 0, X1), end("c", 0, "crashed")])
    assert fold.runs["c"].queued(1), "first crash: one retry left"
    apply(fold, [claim("c", 1), end("c", 1, "crashed")])
    run = fold.runs["c"]
    assert (run.crashes, run.queued(1), run.done(1)) == (2, False, True)
    assert "c" not in fold.open


def test_a_resumed_attempt_takes_the_params_of_the_first() -> None:
    fold = apply(Fold(), [claim("r", 0, X1), end("r", 0, "preempted"), claim("r", 1)])
    run = fold.runs["r"]
    assert (run.k, run.state, run.params, len(run.claims)) == (1, "running", X1, 2)
    assert run.last_end is None, "the new attempt has not ended"


def test_records_that_make_no_sense_are_ignored() -> None:
    fold = apply(
        Fold(),
        [
            {"t": "claim", "run": 7, "k": 0, "params": X1},  # no run id
            claim("orphan", 0),  # a new run without its params
            end("ghost", 0, "finished"),  # an end of an unknown run
            claim("r", 0, X1),
            claim("r", 2),  # an attempt out of order
            {"t": "end", "run": "r", "state": "finished"},  # no attempt number
            {"t": "note", "run": "r"},  # a record type this version does not know
        ],
    )
    assert list(fold.runs) == ["r"]
    assert fold.runs["r"].k == 0 and fold.runs["r"].state == "running"


def test_the_first_end_of_an_attempt_stands() -> None:
    fold = apply(Fold(), [claim("r", 0, X1), end("r", 0, "finished"), end("r", 0, "crashed")])
    assert fold.runs["r"].state == "finished"


def test_a_finished_run_at_the_target_ends_the_search_for_its_goal() -> None:
    records = [claim("r", 0, X1), end("r", 0, "finished", metric=0.9)]
    assert apply(Fold("maximize", 0.9), list(records)).target_hit
    assert not apply(Fold("maximize", 0.95), list(records)).target_hit
    assert apply(Fold("minimize", 0.95), list(records)).target_hit
    failed = [claim("r", 0, X1), end("r", 0, "failed", metric=0.99)]
    assert not apply(Fold("maximize", 0.9), failed).target_hit, "only finished runs count"


def test_folding_in_pieces_equals_folding_at_once() -> None:
    records = [
        claim("a", 0, X1),
        claim("b", 0, {"x": {"value": 2}}),
        end("a", 0, "crashed"),
        claim("a", 1),
        end("b", 0, "stopped", metric=0.3),
        end("a", 1, "finished", metric=0.1),
    ]
    whole = apply(Fold(), records)
    pieces = Fold()
    for record in records:
        apply(pieces, [record])
    assert {r: (f.state, f.k) for r, f in whole.runs.items()} == {
        r: (f.state, f.k) for r, f in pieces.runs.items()
    }
    assert whole.open == pieces.open == {}


def test_reopen_rebuilds_the_open_runs_from_runs_folded_elsewhere() -> None:
    folded = apply(
        Fold(),
        [claim("run", 0, X1), claim("done", 0, X1), end("done", 0, "finished")]
        + [claim("q", 0, X1), end("q", 0, "preempted")],
    )
    loaded = Fold(runs=folded.runs)
    loaded.reopen()
    assert sorted(loaded.open) == ["q", "run"]


def test_a_record_drops_the_engine_caches_of_its_run() -> None:
    fold = apply(Fold(), [claim("r", 0, X1)])
    run = fold.runs["r"]
    run.engine_run = run.bayes_run = object()
    apply(fold, [end("r", 0, "finished")])
    assert run.engine_run is None and run.bayes_run is None
