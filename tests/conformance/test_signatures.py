"""``sweepkit.sweep`` and ``sweepkit.agent`` take W&B's parameters as ``wandb.sweep`` and
``wandb.agent`` do: the oracle is ``inspect.signature`` of the installed wandb, and W&B's own way
of calling them (by keyword, as its docs and examples do) runs a real offline sweep."""

from __future__ import annotations

import inspect
import json
import os
import pickle
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest
import wandb

import sweepkit
from sweepkit.jobs.sweeps import store

REPO = Path(__file__).resolve().parents[2]
# wandb.agent's parameters that the issue (and W&B's docs for years) name; the installed wandb
# adds forward_signals, term_timeout and max_consecutive_failed_runs after them, which the kit's
# agent does not take (it always passes signals on)
WANDB_AGENT_PARAMETERS = 5
DEFINITION = {"method": "grid", "parameters": {"lr": {"values": [0.5]}}}


def parameters(function: Any) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def test_sweep_takes_wandb_sweeps_parameters_in_order_then_the_kits_by_keyword() -> None:
    theirs = parameters(wandb.sweep)
    ours = parameters(sweepkit.sweep)
    assert ours[: len(theirs)] == theirs
    assert [p[:2] for p in ours[len(theirs) :]] == [
        (name, inspect.Parameter.KEYWORD_ONLY) for name in ("root", "lease_s", "max_retries")
    ]


def test_agent_takes_wandb_agents_parameters_in_order() -> None:
    theirs = parameters(wandb.agent)[:WANDB_AGENT_PARAMETERS]
    assert [name for name, _, _ in theirs] == [
        "sweep_id",
        "function",
        "entity",
        "project",
        "count",
    ]
    assert parameters(sweepkit.agent) == theirs


def test_a_local_sweep_cannot_take_prior_runs(tmp_path: Path) -> None:
    with pytest.raises(sweepkit.UserError, match=r"^sweepkit.sweep\(prior_runs=\['abc'\]\): "):
        sweepkit.sweep(DEFINITION, None, None, ["abc"], root=tmp_path)
    assert not tmp_path.joinpath("sweeps").exists() and not list(tmp_path.iterdir())
    made = sweepkit.sweep(DEFINITION, "team", "proj", [], root=tmp_path)  # positional, as W&B's
    assert (store.open_sweep(made).meta["entity"], store.open_sweep(made).meta["project"]) == (
        "team",
        "proj",
    )


def test_the_apis_errors_are_sweepkit_user_error(tmp_path: Path) -> None:
    with pytest.raises(sweepkit.UserError) as caught:
        sweepkit.agent(str(tmp_path / "no-such-sweep"), count=1)
    assert (
        f"{type(caught.value).__module__}.{type(caught.value).__qualname__}" == "sweepkit.UserError"
    )
    shown = "".join(traceback.format_exception_only(caught.value))
    assert shown.startswith("sweepkit.UserError: ") and shown.count("\n") == 1
    assert type(pickle.loads(pickle.dumps(caught.value))) is sweepkit.UserError
    from sweepkit.train.errors import UserError

    assert UserError is sweepkit.UserError, "the trainer and the kit raise the one class"
    with pytest.raises(sweepkit.UserError, match="pass the sweep definition as a dict"):
        sweepkit.sweep(sweep=42, root=tmp_path)  # type: ignore[arg-type]


def test_a_definitions_warning_is_shown_once_by_sweep_then_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A metric key W&B ignores with a warning: sweep() shows it, agent() does not show it again
    (it checks sweep.yaml again, which would say the same)."""
    monkeypatch.chdir(tmp_path)
    definition = {**DEFINITION, "metric": {"name": "acc", "goal": "maximize", "colour": "red"}}
    made = sweepkit.sweep(definition)
    store.open_sweep(made).claim(store.AgentIdentity())  # the only run is taken: agent runs none
    assert sweepkit.agent(made, function=lambda: None) == 0
    err = capsys.readouterr().err
    assert err.count("metric.colour: not a metric key") == 1, err


KEYWORD_SCRIPT = r"""
import json, sys
import wandb
import sweepkit

def train():
    run = wandb.init()
    run.log({"acc": run.config.lr * 2})
    run.finish()

config = {"method": "grid", "metric": {"name": "acc", "goal": "maximize"},
          "parameters": {"lr": {"values": [0.5, 0.25]}}}
sweep_id = sweepkit.sweep(sweep=config, project="p")
rc = sweepkit.agent(sweep_id=sweep_id, function=train, count=1, project="p", entity="e")
print("RESULT " + json.dumps({"sweep": sweep_id, "rc": rc}))
"""


def run_keyword_script(tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    (tmp_path / "script.py").write_text(KEYWORD_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline"}
    for key in ("WANDB_PROJECT", "WANDB_ENTITY"):
        env.pop(key, None)
    proc = subprocess.run(
        [sys.executable, "script.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return proc, json.loads(line.removeprefix("RESULT "))


@pytest.mark.system
def test_wandbs_keyword_calls_run_a_sweep_and_record_the_project_for_sync(tmp_path: Path) -> None:
    proc, result = run_keyword_script(tmp_path)
    assert result["rc"] == 0
    sweep = store.open_sweep(str(tmp_path / result["sweep"]))
    assert sweep.meta["project"] == "p" and sweep.meta["entity"] is None
    (run,) = [v for v in sweep.runs() if v.state == "finished"]
    assert run.metric == 1.0  # lr 0.5, logged as acc = 2 * lr by the function
    warnings = [x for x in proc.stderr.splitlines() if "sweepkit.agent(" in x]
    assert len(warnings) == 1 and "sweepkit.agent(entity='e')" in warnings[0], proc.stderr
    sync = subprocess.run(
        [sys.executable, "-m", "sweepkit.jobs.cli", "sync", result["sweep"], "--dry-run"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "--project p " in sync.stdout, sync.stdout + sync.stderr
