"""Whole sweeps through real processes: many agents sharing one store, every method, a damaged
journal; and, marked slow, the real trainer on digits (the README's demo) with status and sync.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from docs_blocks import blocks
from sweep_fixtures import (
    REPO,
    SWEEPKIT,
    create,
    grid,
    run_agents,
    status_json,
    sweepkit,
    write_definition,
    write_program,
)


@pytest.mark.system  # starts processes
def test_sixteen_agents_on_a_24_point_grid(tmp_path: Path) -> None:
    program = write_program(tmp_path)
    definition = grid(
        {"lr": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "batch_size": [32, 64], "opt": ["adam", "sgd"]},
        program,
    )
    sweep = create(tmp_path, write_definition(tmp_path, definition))
    logs = run_agents(sweep, tmp_path, 16)
    status = status_json(sweep, tmp_path)
    runs = status["runs"]
    assert len(runs) == 24 and status["counts"]["finished"] == 24 and status["complete"]
    assert len({json.dumps(r["params"], sort_keys=True) for r in runs}) == 24, "24 distinct configs"
    assert all(r["attempts"] == 1 and len(r["epochs"]) == 3 for r in runs)
    assert sum(log.count("finished (exit 0") for log in logs) == 24, (
        "each run launched exactly once"
    )
    assert any("sweep complete: 24 of 24 runs done" in log for log in logs)
    best = max(runs, key=lambda r: r["metric"])
    assert status["best"] == best["run_id"] and best["params"]["lr"] == 0.6
    table = sweepkit("status", sweep, cwd=tmp_path).stdout
    assert "runs: 24 finished (of 24 planned)" in table and f"best: {best['run_id']}" in table


@pytest.mark.system  # starts processes
def test_random_with_run_cap_and_bayes_from_results(tmp_path: Path) -> None:
    program = write_program(tmp_path)
    random_def = {
        **grid({}, program),
        "method": "random",
        "run_cap": 6,
        "parameters": {
            "lr": {"distribution": "log_uniform_values", "min": 0.01, "max": 1.0},
            "epochs": {"value": 2},
        },
    }
    sweep = create(tmp_path, write_definition(tmp_path, random_def, "random.yaml"))
    logs = run_agents(sweep, tmp_path, 3)
    status = status_json(sweep, tmp_path)
    assert (
        len(status["runs"]) == 6
        and status["counts"]["finished"] == 6
        and status["planned_runs"] == 6
    )
    assert len({r["params"]["lr"] for r in status["runs"]}) == 6
    assert all(0.01 <= r["params"]["lr"] <= 1.0 for r in status["runs"])
    assert any("sweep complete: 6 of 6 runs done" in log for log in logs)

    bayes_def = {
        **random_def,
        "method": "bayes",
        "run_cap": 8,
        "parameters": {"lr": {"min": 0.0, "max": 1.0}, "epochs": {"value": 1}},
    }
    sweep = create(tmp_path, write_definition(tmp_path, bayes_def, "bayes.yaml"))
    result = sweepkit("agent", sweep, cwd=tmp_path, timeout=180)
    assert result.returncode == 0 and "sweep complete: 8 of 8 runs done" in result.stdout
    runs = sorted(status_json(sweep, tmp_path)["runs"], key=lambda r: r["started_at"])
    # metric = 100 * lr: once results are in, the GP pushes proposals to the top of the range
    assert max(r["params"]["lr"] for r in runs[-3:]) > 0.9, [r["params"]["lr"] for r in runs]


@pytest.mark.system  # starts processes
def test_garbage_in_the_journal_mid_sweep(tmp_path: Path) -> None:
    program = write_program(tmp_path)
    sweep = create(
        tmp_path, write_definition(tmp_path, grid({"lr": [0.1, 0.2, 0.3, 0.4]}, program))
    )
    assert sweepkit("agent", "--count", "2", sweep, cwd=tmp_path).returncode == 0
    with open(tmp_path / sweep / "journal.jsonl", "ab") as f:
        f.write(b'\x00\xffnot json at all\n{"t": "claim"}\npartial line, writer kil')
    result = sweepkit("agent", sweep, cwd=tmp_path)
    assert (
        result.returncode == 0 and "sweep complete: 4 of 4 runs done (4 finished)" in result.stdout
    )
    assert "skipped 2 unreadable record(s)" in result.stderr
    status = sweepkit("status", sweep, "--json", cwd=tmp_path)
    assert (
        json.loads(status.stdout)["counts"]["finished"] == 4
        and "unreadable record" in status.stderr
    )


def test_readme_sweeps_section_commands_are_the_tested_ones() -> None:
    """docs/sweeps.md (section "Offline, with no W&B server" and the others) and docs/sync.md
    (section "What `sweepkit sync` does"): each command is one these tests run."""

    shown = blocks("docs/sweeps.md", lang="bash") + blocks("docs/sync.md", lang="bash")
    commands = [line.strip() for b in shown for line in b.body.splitlines() if line.strip()]
    assert commands, "docs/sweeps.md shows commands"
    tested = {
        "SWEEP=$(sweepkit sweep create config/sweeps/digits_grid.yaml)",
        "sweepkit agent $SWEEP",
        "sweepkit status $SWEEP",
        "sweepkit sync $SWEEP --project sweepkit-demo --entity my-team --dry-run",
        "sweepkit sync $SWEEP --project sweepkit-demo --entity my-team",
        "sweepkit sweep create config/sweep_config.yaml --backend wandb --project sweepkit",
        "sweepkit agent my-team/sweepkit/ab12cd34",
        "sweepkit status $SWEEP --watch",
        "sweepkit status $SWEEP --json",
        "sweepkit status $SWEEP --json --records",  # sweep_fixtures.status_json
        "sweepkit agent --count 1 $SWEEP",
    }
    for command in commands:
        assert command in tested, f"README command not exercised by a test: {command}"


@pytest.mark.system  # starts processes
def test_status_watch_returns_when_the_sweep_is_complete(tmp_path: Path) -> None:
    program = write_program(tmp_path)
    sweep = create(tmp_path, write_definition(tmp_path, grid({"lr": [0.1, 0.2]}, program)))
    watcher = subprocess.Popen(
        [*SWEEPKIT, "status", sweep, "--watch", "0.2"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sweepkit("agent", "--count", "1", sweep, cwd=tmp_path).returncode == 0
    assert watcher.poll() is None, "still watching: one run is left"
    assert sweepkit("agent", sweep, cwd=tmp_path).returncode == 0
    out, _ = watcher.communicate(timeout=30)
    assert watcher.returncode == 0 and out.rstrip().endswith("complete") and "in progress" in out


@pytest.mark.system  # starts processes
def test_create_wandb_backend_prints_the_reference(tmp_path: Path) -> None:
    """W&B's cloud is out of reach: wandb.sweep is replaced in a child process (the only mock)."""
    code = (
        "import sys, wandb; wandb.sweep = lambda sweep, entity, project: 'ab12cd34'\n"
        "from sweepkit.jobs.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    argv = [
        sys.executable,
        "-c",
        code,
        "sweep",
        "create",
        "config/sweep_config.yaml",
        "--backend",
        "wandb",
        "--project",
        "sweepkit",
        "--entity",
        "my-team",
    ]
    result = subprocess.run(
        argv, cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "my-team/sweepkit/ab12cd34"
