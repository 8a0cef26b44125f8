"""How long ``sweepkit agent --count 1`` takes to start a run's program, against ``import wandb``.

    python bench/agent_start.py [--repeats 5] [--out FILE.json]

For each method (grid, random, bayes) a fresh sweep of a program whose first line prints the
time; then, ``--repeats`` times, interleaved with the baseline: a fresh ``sweepkit agent --count
1 SWEEP`` process, from just before it is started to that first line (each repeat claims the
sweep's next run, so later bayes claims see the earlier runs). The baseline is a fresh
``python -c "import wandb"`` from start to exit, in the same run. Medians of the repeats, the
machine's load average before and after, and the date: one JSON document (also to --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SWEEPKIT = str(Path(sys.executable).parent / "sweepkit")
FIRST_LINE = "import time; print('FIRST_LINE', repr(time.time()), flush=True)\n"
METHODS = {
    "grid": {"lr": {"values": [0.1, 0.01, 0.001, 0.0001]}, "bs": {"values": [16, 32, 64]}},
    "random": {"lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 0.1}},
    "bayes": {
        "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 0.1},
        "depth": {"values": [18, 34, 50]},
    },
}


def make_sweep(folder: Path, method: str) -> Path:
    """A sweep of ``first_line.py`` made by ``sweepkit sweep create``; its folder."""
    import yaml

    definition = {
        "program": "first_line.py",
        "method": method,
        "metric": {"name": "acc", "goal": "maximize"},
        "parameters": METHODS[method],
    }
    (folder / f"{method}.yaml").write_text(yaml.safe_dump(definition))
    made = subprocess.run(
        [SWEEPKIT, "sweep", "create", f"{method}.yaml"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    return folder / made.stdout.strip()


def agent_start_s(folder: Path, sweep: Path) -> float:
    """From just before a fresh agent starts to its program's first line, in seconds."""
    env = {**os.environ, "WANDB_SILENT": "true"}
    started = time.time()
    proc = subprocess.run(
        [SWEEPKIT, "agent", "--count", "1", str(sweep)],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("FIRST_LINE "):
            return float(line.split()[1]) - started
    raise RuntimeError(f"the program printed no first line: {proc.stdout}{proc.stderr}")


def import_wandb_s() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import wandb"], check=True)
    return time.perf_counter() - started


def measure(repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="agent-start-") as tmp:
        folder = Path(tmp)
        (folder / "first_line.py").write_text(FIRST_LINE)
        sweeps = {method: make_sweep(folder, method) for method in METHODS}
        times: dict[str, list[float]] = {name: [] for name in ["import_wandb", *METHODS]}
        for _ in range(repeats):  # interleaved: a load change hits every figure alike
            times["import_wandb"].append(import_wandb_s())
            for method, sweep in sweeps.items():
                times[method].append(agent_start_s(folder, sweep))
    return {name: statistics.median(values) for name, values in times.items()} | {"samples": times}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    medians = measure(args.repeats)
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.node()}, {os.cpu_count()} CPUs ({platform.machine()})",
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "repeats": args.repeats,
        "median_s": {k: round(v, 3) for k, v in medians.items() if k != "samples"},
        "samples_s": {k: [round(x, 3) for x in v] for k, v in medians["samples"].items()},
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
