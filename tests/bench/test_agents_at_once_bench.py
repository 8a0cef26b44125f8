"""bench/agents_at_once.py, tiny: real agents at once on a small grid of a W&B script, two of them
SIGKILLed and left unreaped while their program runs. Every point must run exactly once, as the
journal and, apart from it, the run folders' W&B runs say. Figures (times) are never compared."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from bench_runs import run_bench

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.system  # starts agents and their programs
def test_every_point_runs_exactly_once_with_agents_killed_on_the_way(tmp_path: Path) -> None:
    out = tmp_path / "agents.json"
    proc = run_bench(
        "agents_at_once.py",
        "--agents",
        "4",
        "--points",
        "12",
        "--kills",
        "2",
        "--dir",
        str(tmp_path / "work"),
        "--json",
        str(out),
        "--no-record",
    )
    assert "exactly once: yes" in proc.stdout
    facts = json.loads(out.read_text())
    assert facts["problems"] == []
    assert facts["runs"] == facts["run_folders"] == facts["points_finished_in_folders"] == 12
    assert facts["finished_end_records"] == 12 and facts["agents_that_claimed"] >= 1
    assert facts["kills"] == facts["zombies_until_the_end"] == 2
    # each killed attempt ended: crashed and handed out again, or finished by its own records
    assert len(facts["killed_attempts_ended_after_s"]) == 2
    assert facts["killed_attempts_crashed"] + facts["killed_attempts_finished_by_own_records"] == 2
    assert facts["resumed_attempts"] == facts["claim_tokens"] == facts["crashed_end_records"]
    assert facts["lease_files_left"] == 0


def test_the_check_finds_a_point_run_twice(tmp_path: Path) -> None:
    """The exactly-once check can fail: a journal with one point claimed twice is refused."""
    sys.path.insert(0, str(ROOT / "bench"))
    from agents_at_once_check import journal_facts

    from sweepkit.jobs.sweeps import store
    from sweepkit.jobs.sweeps.store import claim_policy

    definition = {
        "method": "grid",
        "metric": {"name": "m", "goal": "minimize"},
        "program": "prog.py",
        "parameters": {"x": {"values": [0, 1]}},
    }
    sweep = store.create_sweep(definition, tmp_path, source="test")
    me = store.AgentIdentity()
    records = [
        claim_policy.claim_record(run, 0, {"x": {"value": 0}}, me, 0.0) for run in ("a", "b")
    ]
    records += [
        claim_policy.end_record(run, 0, "finished", me, 1.0, metric=0) for run in ("a", "b")
    ]
    sweep.append(records)
    _, problems, _ = journal_facts(sweep.path, 2)
    assert problems == ["first claims per point: twice [0], never [1]"]
