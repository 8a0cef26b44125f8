"""A sweep folder made before one import name (sweepkit 0.1: the trainer ran as ``-m train``) still
runs: ``upgrade_legacy_command`` maps each old module name after ``-m`` to its name under
``sweepkit`` and returns the one warning the agent says; a command with nothing to map is left
exactly as it was. The agent's side, on a sweep folder, is in test_golden.py."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest

from sweepkit.jobs.sweeps.definition import upgrade_legacy_command
from sweepkit.jobs.sweeps.definition.command import DEFAULT_COMMAND, LEGACY_MODULES
from sweepkit.jobs.sweeps.store import create_sweep, open_sweep

OLD_TRAINER = ["${env}", "${interpreter}", "-m", "train", "--config", "config/presets/digits.yaml"]


@pytest.mark.parametrize(
    "old, new",
    [
        (["${env}", "${interpreter}", "-m", "train", "${args}"], "sweepkit.train"),
        (["python", "-m", "train.launch", "--nproc", "2", "${args}"], "sweepkit.train.launch"),
        (["${interpreter}", "-m", "jobs.cli", "train", "${args}"], "sweepkit.jobs.cli"),
    ],
)
def test_every_old_module_is_mapped_with_one_warning(old: list[str], new: str) -> None:
    definition: dict[str, Any] = {"command": list(old), "method": "grid"}
    warning = upgrade_legacy_command(definition)
    at = old.index("-m") + 1
    assert definition["command"] == [*old[:at], new, *old[at + 1 :]]
    assert definition["method"] == "grid"
    assert warning == (
        f"warning: this sweep's command ({' '.join(old)}) names the kit's modules as before "
        f"sweepkit 0.2; running it as {' '.join(definition['command'])}"
    )
    assert upgrade_legacy_command(definition) is None  # mapped once: nothing left to map


@pytest.mark.parametrize(
    "definition",
    [
        {"program": "train.py", "method": "grid"},  # W&B's default command
        {"command": DEFAULT_COMMAND, "program": "train.py"},
        {"command": ["${env}", "${interpreter}", "-m", "sweepkit.train", "${args}"]},
        {"command": ["python", "train", "--mode", "train", "-m"]},  # not a module after -m
        {"command": ["python", "-m", "mylab.train", "${args}"]},
        {"command": ["python", "-m", "trainer", "--epochs", 3]},  # a number stays a number
        {"command": "python -m train"},  # not a list: the definition check says so
    ],
)
def test_a_command_with_nothing_to_map_is_untouched(definition: dict[str, Any]) -> None:
    before = copy.deepcopy(definition)
    assert upgrade_legacy_command(definition) is None
    assert definition == before


WORDS = ["-m", "train", "train.launch", "jobs.cli", "sweepkit.train", "train.py", "${args}", "7"]


def every_command(longest: int) -> list[list[str]]:
    return [list(c) for n in range(longest + 1) for c in itertools.product(WORDS, repeat=n)]


def test_any_command_maps_exactly_the_old_modules_after_m() -> None:
    """Every command of up to 4 items from words that matter here (a smaller world, whole)."""
    for command in every_command(4):
        definition: dict[str, Any] = {"command": list(command)}
        warning = upgrade_legacy_command(definition)
        mapped = definition["command"]
        expected = [
            LEGACY_MODULES.get(w, w) if i and command[i - 1] == "-m" else w
            for i, w in enumerate(command)
        ]
        assert mapped == expected, command
        assert (warning is None) == (mapped == command), command
        assert upgrade_legacy_command(definition) is None, command


def test_the_sweep_folder_keeps_its_file_and_the_store_holds_the_warning(tmp_path: Path) -> None:
    definition = {
        "method": "grid",
        "metric": {"name": "acc", "goal": "maximize"},
        "command": [*OLD_TRAINER, "${args}"],
        "parameters": {"learning_rate": {"values": [0.1]}},
    }
    made = create_sweep(definition, tmp_path, source="old.yaml")
    sweep = open_sweep(made.path)
    assert sweep.definition["command"][3] == "sweepkit.train"
    assert sweep.legacy_command_warning and "-m train --config" in sweep.legacy_command_warning
    assert "- train\n" in (made.path / "sweep.yaml").read_text(), "sweep.yaml stays as written"
