"""Inodes per finished run of a real sweep, split by who made them: the kit, W&B, the program.

    python bench/inodes.py                       # the README's own-script example, 2 runs
    python bench/inodes.py --trainer             # and the kit's trainer on digits, 1 epoch
    python bench/inodes.py --python /other/venv/bin/python --no-record   # another checkout's kit

Each sweep is real: ``sweepkit sweep create`` and one ``sweepkit agent`` (from ``--python``'s
environment, which is also the program's ``${interpreter}``), offline W&B. Then every inode under
the sweep folder (files, links and folders, each counted once) is put in one class:

* kit: the run folder itself, the agent's ``output.log``, its parameter files (``wandb/sweep-*``
  while the run goes on, ``sweep-params.yaml`` once it is done),
  claim tokens and lease files of the run's attempts, and links the agent made to a W&B run the
  program wrote elsewhere;
* W&B, once per WANDB_DIR: ``wandb/`` and W&B's links in it (``latest-run``, ``debug.log``,
  ``debug-internal.log``). W&B writes these in whatever folder ``WANDB_DIR`` names; the kit gives
  each run a folder of its own, so here they come with every run (under ``wandb agent`` the runs
  of one working folder share them);
* W&B run: the W&B run folder (``offline-run-<time>-<id>/``) and all in it;
* program: everything else in the run folder (the trainer's ``run.json``, checkpoints, ...);
* sweep: the sweep's own files, once per sweep (definition, journal, folders).

Figures are counts, the same on any machine for the same versions of the kit and W&B.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from sweepkit.jobs.sweeps.store.folder import KEPT_PARAM_FILE
from sweepkit.train.config.shipped import SWEEPS

REPO = Path(__file__).resolve().parent.parent
CLASSES = ("kit", "W&B, once per WANDB_DIR", "W&B run", "program")
WANDB_DIR_LINKS = ("latest-run", "debug.log", "debug-internal.log")
# The kit's demo sweep (config/sweeps/digits_grid.yaml) narrowed to one run of one epoch.
TRAINER_PARAMETERS = {"learning_rate": {"value": 0.003}, "num_epochs": {"value": 1}}


def kind(path: Path) -> str:
    mode = path.lstat().st_mode
    return "link" if stat.S_ISLNK(mode) else "folder" if stat.S_ISDIR(mode) else "file"


def run_class(run_dir: Path, path: Path) -> str:
    """The class of an inode of the run folder ``run_dir`` (``path`` is in it, or it)."""
    parts = path.relative_to(run_dir).parts
    if not parts or parts in (("output.log",), (KEPT_PARAM_FILE,)):
        return "kit"
    if parts[0] != "wandb":
        return "program"
    if len(parts) == 1 or (len(parts) == 2 and parts[1] in WANDB_DIR_LINKS):
        return "W&B, once per WANDB_DIR"
    if parts[1].startswith("sweep-"):
        return "kit"  # wandb agent's parameter files, as the kit writes them
    if len(parts) == 2 and path.is_symlink():
        return "kit"  # the agent's link to a W&B run the program wrote elsewhere
    return "W&B run"


def count_run(run_dir: Path, sweep: Path) -> Counter[tuple[str, str]]:
    """(class, kind) -> inodes of one run: its folder's tree, and its claim tokens and leases."""
    counts: Counter[tuple[str, str]] = Counter()
    for path in [run_dir, *run_dir.rglob("*")]:
        counts[run_class(run_dir, path), kind(path)] += 1
    for folder in ("claims", "leases"):
        for token in (sweep / folder).glob(f"{run_dir.name}.*"):
            counts["kit", kind(token)] += 1
    return counts


def count_sweep(sweep: Path) -> dict[str, Any]:
    """Per-run inodes by class and kind (averaged over the runs), and the sweep's own."""
    runs = sorted(p for p in (sweep / "runs").iterdir() if p.is_dir())
    total: Counter[tuple[str, str]] = Counter()
    for run_dir in runs:
        total += count_run(run_dir, sweep)
    per_run = {
        cls: {k: total[cls, k] / len(runs) for k in ("file", "link", "folder")} for cls in CLASSES
    }
    return {
        "runs": len(runs),
        "per_run": per_run,
        "per_run_all": sum(total.values()) / len(runs),
        "sweep_own": 1 + len(list(sweep.iterdir())),  # the folder and what is in it, runs/ too
        "lease_files_left": len(list((sweep / "leases").iterdir())),
        "claim_tokens_left": len(list((sweep / "claims").iterdir())),
    }


def run_sweep(python: Path, folder: Path, definition: Path) -> Path:
    """``sweep create`` and one agent until the sweep is complete, from ``python``'s environment."""
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env["WANDB_MODE"] = "offline"
    cli = [str(python), "-m", "sweepkit.jobs.cli"]
    made = subprocess.run(
        [*cli, "sweep", "create", str(definition), "--root", "sweeps"],
        cwd=folder, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    sweep = folder / made.stdout.strip()
    ran = subprocess.run([*cli, "agent", str(sweep)], cwd=folder, env=env, capture_output=True)
    if ran.returncode != 0:
        raise SystemExit(f"the agent exited {ran.returncode}:\n{ran.stdout.decode()[-3000:]}")
    return sweep


def plain_script_sweep(python: Path, work: Path) -> Path:
    """The README's own-script example (config/byo/: a grid of 2 learning rates)."""
    folder = work / "byo"
    shutil.copytree(REPO / "config" / "byo", folder)
    return run_sweep(python, folder, folder / "sweep_config.yaml")


def trainer_sweep(python: Path, work: Path) -> Path:
    """The kit's trainer on digits, one run of one epoch."""
    folder = work / "trainer"
    folder.mkdir()
    demo = yaml.safe_load((SWEEPS / "digits_grid.yaml").read_text())
    sweep = {**demo, "parameters": TRAINER_PARAMETERS}
    (folder / "sweep.yaml").write_text(json.dumps(sweep))  # JSON is YAML
    return run_sweep(python, folder, folder / "sweep.yaml")


def markdown(results: dict[str, dict[str, Any]], python: Path) -> str:
    lines = [
        f"### {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, the kit of {python}",
        "",
        "| sweep | " + " | ".join(CLASSES) + " | all, per run | sweep's own | leases left |",
        "| --- " * (len(CLASSES) + 4) + "|",
    ]
    for name, found in results.items():
        cells = []
        for cls in CLASSES:
            by = found["per_run"][cls]
            cells.append(f"{sum(by.values()):g} ({by['file']:g} f, {by['link']:g} l, {by['folder']:g} d)")  # fmt: skip
        lines.append(
            f"| {name} ({found['runs']} runs) | " + " | ".join(cells)
            + f" | {found['per_run_all']:g} | {found['sweep_own']} | {found['lease_files_left']} |"
        )  # fmt: skip
    return "\n".join(lines) + "\n"


SECTION = """
## Inodes per finished run (bench/inodes.py, issue 29 item 4)

Every inode a finished run leaves in its sweep folder, by who made it (the classes are in the
script's docstring); f files, l links, d folders; per run, averaged over the sweep's runs.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", type=Path, default=Path(sys.executable), help="whose kit")
    parser.add_argument("--trainer", action="store_true", help="also the kit's trainer (torch)")
    parser.add_argument("--json", type=Path, help="write the counts as JSON here")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    parser.add_argument("--dir", type=Path, help="make the sweeps here (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the sweeps (with --dir)")
    args = parser.parse_args(argv)
    work = args.dir or Path(tempfile.mkdtemp(prefix="inodes-"))
    work.mkdir(parents=True, exist_ok=True)
    results = {"plain W&B script (config/byo)": count_sweep(plain_script_sweep(args.python, work))}
    if args.trainer:
        trained = trainer_sweep(args.python, work)
        results["the kit's trainer (digits, 1 epoch)"] = count_sweep(trained)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    text = markdown(results, args.python)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if not args.no_record:
        old = (REPO / "bench" / "RESULTS.md").read_text()
        head = "" if SECTION.strip().splitlines()[0] in old else SECTION
        (REPO / "bench" / "RESULTS.md").write_text(old.rstrip("\n") + "\n" + head + "\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
