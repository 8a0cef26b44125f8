"""sweep.yaml's check, remembered in sweep.json (definition/checked.py): an agent skips the
engine's check only for the very bytes that passed it quietly, under the same engine, and with a
program when it runs one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps.definition import checked
from sweepkit.jobs.sweeps.store import create_sweep

GRID = {"program": "prog.py", "method": "grid", "parameters": {"lr": {"values": [0.1, 0.01]}}}


def made(tmp_path: Path, definition: dict[str, Any]) -> tuple[dict[str, Any], str]:
    sweep = create_sweep(definition, tmp_path, source="test")
    return json.loads((sweep.path / "sweep.json").read_text()), sweep.definition_text


def test_a_quiet_definition_is_remembered_for_its_bytes_alone(tmp_path: Path) -> None:
    meta, text = made(tmp_path, GRID)
    assert meta["checked"]["program"] is True
    assert checked.holds(meta, text, program=True)
    assert checked.holds(meta, text, program=False)
    assert not checked.holds(meta, text.replace("0.01", "0.02"), program=True)
    assert not checked.holds({**meta, "checked": {**meta["checked"], "sweeps": "0.0"}}, text, True)
    assert not checked.holds({k: v for k, v in meta.items() if k != "checked"}, text, True)


def test_without_a_program_it_holds_for_a_function_only(tmp_path: Path) -> None:
    meta, text = made(tmp_path, {k: v for k, v in GRID.items() if k != "program"})
    assert meta["checked"]["program"] is False
    assert checked.holds(meta, text, program=False)
    assert not checked.holds(meta, text, program=True)


def test_a_definition_with_warnings_is_checked_by_every_agent(tmp_path: Path) -> None:
    meta, _ = made(tmp_path, {**GRID, "metric": {"name": "acc", "goal": "maximize", "gaol": 1}})
    assert "checked" not in meta  # the agent's check prints the unknown key's warning
    meta, _ = made(
        tmp_path,
        {
            **GRID,
            "method": "random",
            "parameters": {"lr": {"distribution": "log_uniform", "min": -5, "max": 0}},
        },
    )
    assert "checked" not in meta  # a deprecated distribution's note


def test_a_definition_the_engine_refuses_is_not_remembered(tmp_path: Path) -> None:
    meta, _ = made(tmp_path, {**GRID, "method": "gird"})
    assert "checked" not in meta
