"""Status tells the truth on real programs: a failed run's reason is its error line (not wandb's
or Hydra's trailer, no ANSI codes), and one ranking rule serves status, the agent and both
reports (define_metric's {"max": v}, dotted and / names, the last value)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sweep_fixtures import create, status_json, sweepkit, write_definition, write_program

from sweepkit.jobs.report.wandb_source import _run
from sweepkit.jobs.sweeps.failure import error_line
from sweepkit.jobs.sweeps.wandb_run.metrics import ranked_metric, summary_lookup

# what a failed Hydra + wandb program prints last, colours and all (wandb 0.31, Hydra 1.3)
HYDRA_WANDB_TAIL = (
    "Error executing job with overrides: ['lr=0.1']\n"
    "Traceback (most recent call last):\n"
    '  File "/home/u/train.py", line 12, in main\n'
    '    raise ValueError(f"loss is NaN at step {step}")\n'
    "ValueError: loss is NaN at step 40\n"
    "\n"
    "Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.\n"
    "\x1b[1;34mwandb\x1b[0m: \n"
    "\x1b[1;34mwandb\x1b[0m: You can sync this run to the cloud by running:\n"
    "\x1b[1;34mwandb\x1b[0m: \x1b[1mwandb sync /x/wandb/offline-run-1\x1b[0m\n"
)


@pytest.mark.parametrize(
    "output, line",
    [
        (HYDRA_WANDB_TAIL, "ValueError: loss is NaN at step 40"),
        # a chained traceback: the last one's exception
        (
            "Traceback (most recent call last):\n  x\nKeyError: 'a'\n\nDuring handling of the "
            "above exception, another exception occurred:\n\nTraceback (most recent call last):"
            "\n  y\nRuntimeError: CUDA out of memory\n\x1b[1;34mwandb\x1b[0m: Find logs at: x\n",
            "RuntimeError: CUDA out of memory",
        ),
        # no traceback: the last line that is not a trailer, colours stripped
        (
            "epoch 1\n\x1b[31mtrain: error: data missing at /d\x1b[0m\nwandb: synced\n",
            "train: error: data missing at /d",
        ),
        ("", ""),
    ],
)
def test_error_line_is_the_error_not_the_trailer(output: str, line: str) -> None:
    assert error_line(output) == line


@pytest.mark.parametrize(
    "summary, name, history, goal, want",
    [
        ({"acc": 0.5}, "acc", [0.1, 0.9], "maximize", 0.5),  # the summary the script set wins
        ({"acc": {"max": 0.9, "last": 0.2}}, "acc", [0.9, 0.2], "maximize", 0.9),
        ({"loss": {"min": 0.1}}, "loss", [0.3, 0.1, 0.2], "minimize", 0.1),
        ({"val": {"acc": 3.0}}, "val.acc", [3.0], "maximize", 3.0),  # nested, dotted
        ({"val/acc": 7.0}, "val/acc", [7.0], "maximize", 7.0),
        ({}, "acc", [0.3, 0.4, float("nan")], "maximize", 0.4),  # the last finite value
        ({}, "acc", [], "maximize", None),
    ],
)
def test_one_ranking_rule(
    summary: dict[str, Any], name: str, history: list[float], goal: str, want: float | None
) -> None:
    assert ranked_metric(summary_lookup(summary, name), history, goal) == want


def test_the_w_and_b_report_ranks_as_status_does() -> None:
    """The W&B cloud is unreachable from tests: a stand-in for a public-API run (its config,
    summary and history, as wandb.Api returns them) is all that is mocked."""

    class ApiRun:
        id, state, config = "r1", "finished", {"lr": 0.1}
        summary = {"acc": {"max": 0.9}}

        def history(self, keys: list[str], pandas: bool) -> list[dict[str, Any]]:
            return [{"_step": 0, "acc": 0.9}, {"_step": 1, "acc": 0.2}]

    view = _run(ApiRun(), ["lr"], "acc", "maximize")
    assert view.metric == 0.9 and view.metric_history == [0.9, 0.2]


@pytest.mark.system
def test_status_names_the_error_and_keeps_parameter_columns_apart(tmp_path: Path) -> None:
    write_program(tmp_path)
    spec = {
        "program": "fastprog.py",
        "method": "grid",
        "metric": {"name": "Validation Accuracy", "goal": "maximize"},
        "parameters": {
            "fail": {"values": ["1"]},
            "epochs": {"values": [2]},
            "state": {"values": ["x"]},
        },
    }
    sweep = create(tmp_path, write_definition(tmp_path, spec))
    sweepkit("agent", sweep, cwd=tmp_path)
    table = sweepkit("status", sweep, cwd=tmp_path).stdout.splitlines()
    assert table[1].split() == [
        "run",
        "state",
        "fail",
        "param:epochs",
        "param:state",
        "Validation",
        "Accuracy",
        "epochs",
        "host",
        "slurm",
        "duration",
        "tries",
    ]
    assert any(line.endswith(": RuntimeError: boom in the fast program") for line in table)


@pytest.mark.system
def test_a_sweep_ended_by_its_target_names_the_run_and_value_in_agent_and_status(
    tmp_path: Path,
) -> None:
    write_program(tmp_path)
    spec = {
        "program": "fastprog.py",
        "method": "grid",
        "metric": {"name": "Validation Accuracy", "goal": "maximize", "target": 40},
        "parameters": {"lr": {"values": [0.5, 0.25, 0.1, 0.05]}, "epochs": {"value": 2}},
    }
    sweep = create(tmp_path, write_definition(tmp_path, spec))
    agent = sweepkit("agent", sweep, cwd=tmp_path)
    doc = status_json(sweep, tmp_path)
    first = doc["runs"][0]["run_id"]  # lr=0.5 reaches 50 (the fast program's 100 * lr)
    reached = f"run {first} reached the target: Validation Accuracy=50 (metric.target >= 40)"
    assert f"sweep complete: {reached}; 1 of 4 runs done (1 finished)" in agent.stdout, agent.stdout
    assert doc["complete"] and doc["target_reached"] == {"run_id": first, "value": 50.0}
    table = sweepkit("status", sweep, cwd=tmp_path).stdout.splitlines()
    assert table[-1] == f"complete: {reached}"
