"""What a fresh agent, ``status`` and ``--version`` import: no more than their work needs.

An agent's start is paid by every SLURM array task before its run starts: a grid agent builds its
run's command and finds its grid point without W&B, the ``sweeps`` engine, scipy or pydantic (the
sweep file's check is the one ``sweep create`` recorded, ``definition/checked.py``), and so does a
random agent whose distributions it draws itself (``definition/random_draw.py``); one that needs
the engine (a normal distribution) imports it, but not W&B. ``sweepkit --version`` and ``status`` import none of them. Each
command runs in a fresh interpreter, which lists the heavy packages it holds when it is done.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sweepkit.jobs.sweeps.definition import checked

HEAVY = ("wandb", "sweeps", "scipy", "pydantic", "sklearn", "torch", "matplotlib", "jsonschema")
LISTER = """
import sys
from sweepkit.jobs.cli import main
sys.argv = ["sweepkit", *sys.argv[1:]]
try:
    code = main()
except SystemExit as stop:
    code = stop.code
held = sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY))
print("HEAVY " + " ".join(held), file=sys.stderr)
sys.exit(code)
"""


def heavy_imports(folder: Path, *argv: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{LISTER}", *argv],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    line = [x for x in proc.stderr.splitlines() if x.startswith("HEAVY")][-1]
    return line.split()[1:]


def make_sweep(folder: Path, method: str, parameters: dict[str, object]) -> str:
    (folder / "prog.py").write_text("print('ran')\n")
    definition = {"program": "prog.py", "method": method, "parameters": parameters}
    (folder / f"{method}.yaml").write_text(yaml.safe_dump(definition))
    made = subprocess.run(
        [Path(sys.executable).parent / "sweepkit", "sweep", "create", f"{method}.yaml"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    return made.stdout.strip()


@pytest.mark.system  # starts agents and their programs
def test_a_grid_agent_imports_no_engine_nor_wandb(tmp_path: Path) -> None:
    sweep = make_sweep(tmp_path, "grid", {"lr": {"values": [0.1, 0.01]}})
    meta = json.loads((tmp_path / sweep / "sweep.json").read_text())
    assert checked.holds(meta, (tmp_path / sweep / "sweep.yaml").read_text(), program=True)
    assert heavy_imports(tmp_path, "agent", "--count", "1", sweep) == []
    assert heavy_imports(tmp_path, "status", sweep) == []
    assert heavy_imports(tmp_path, "--version") == []


@pytest.mark.system  # starts agents and their programs
def test_a_random_agent_imports_the_engine_only_for_what_it_cannot_draw(tmp_path: Path) -> None:
    uniform = make_sweep(tmp_path, "random", {"lr": {"min": 0.001, "max": 0.1}})
    assert heavy_imports(tmp_path, "agent", "--count", "1", uniform) == []
    normal = make_sweep(tmp_path, "random", {"lr": {"distribution": "normal", "mu": 0, "sigma": 1}})
    held = heavy_imports(tmp_path, "agent", "--count", "1", normal)
    assert "sweeps" in held and "wandb" not in held


@pytest.mark.system  # starts agents and their programs
def test_a_fresh_bayes_agent_claims_a_proposal_made_ahead_without_the_engine(
    tmp_path: Path,
) -> None:
    (tmp_path / "prog.py").write_text("print('ran')\n")
    definition = {
        "program": "prog.py",
        "method": "bayes",
        "metric": {"name": "acc", "goal": "maximize"},
        "parameters": {"lr": {"min": 0.001, "max": 0.1}},
    }
    (tmp_path / "bayes.yaml").write_text(yaml.safe_dump(definition))
    made = subprocess.run(
        [Path(sys.executable).parent / "sweepkit", "sweep", "create", "bayes.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    sweep = made.stdout.strip()
    # sweep create put the first proposal ahead: the first agent takes it
    assert heavy_imports(tmp_path, "agent", "--count", "1", sweep) == []
    # none pending now: the next agent proposes (the engine loaded), and puts one ahead
    held = heavy_imports(tmp_path, "agent", "--count", "1", sweep)
    assert "sweeps" in held and "sklearn" in held
    assert heavy_imports(tmp_path, "agent", "--count", "1", sweep) == []
    journal = (tmp_path / sweep / "journal.jsonl").read_text().splitlines()
    records = [json.loads(line.split(" ", 1)[1]) for line in journal]
    taken = [r["proposal"] for r in records if r["t"] == "claim" and "proposal" in r]
    proposed = [r["id"] for r in records if r["t"] == "propose"]
    assert len(taken) == 2 and len(set(taken)) == 2 and set(taken) <= set(proposed)
