"""What reading a run's W&B records costs: sweepkit's reader (jobs/sweeps/wandb_run/records.py) against
W&B's own (``wandb leet inspect --summary --json``), and the agent's CPU while it polls a run.

    python bench/wandb_records.py [--rows 10000] [--agent-s 60] [--out FILE.json]

1. A real wandb offline run of a plain script that logs ``--rows`` rows (step=i, three metrics).
2. A full read of its log by a fresh reader (the metric's history and the summary), and the same
   through ``RunMetricsReader.read`` (every row decoded, as status does); median of 5.
3. An incremental poll that finds nothing new (what the agent does 4 times a second); mean of 2,000.
4. ``wandb leet inspect --summary --json`` on the same file; median of 3.
5. ``sweepkit agent`` running one run of a script that logs one row a second for ``--agent-s`` s,
   with and without hyperband: the agent process's own CPU (utime + stime from /proc, the
   program excluded) from the run's first record to the program's end, per minute.
Prints one JSON document (also written to --out).
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
sys.path.insert(0, str(REPO))

from sweepkit.jobs.sweeps.wandb_run.metrics import RunMetricsReader  # noqa: E402
from sweepkit.jobs.sweeps.wandb_run.records import RunRecords, segment_folders  # noqa: E402

LOGGER = r"""
import sys, time, wandb
rows, every_s = int(sys.argv[1]), float(sys.argv[2])
run = wandb.init(config={"learning_rate": 0.1})
for i in range(rows):
    if every_s:
        time.sleep(every_s)
    run.log({"Validation Accuracy": 50 + i % 50, "Train Loss": 1.0 / (i + 1), "lr": 0.1}, step=i)
run.finish()
"""
WANDB_CLI = str(Path(sys.executable).parent / "wandb")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def make_run(folder: Path, rows: int) -> Path:
    (folder / "logger.py").write_text(LOGGER)
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(folder), "WANDB_SILENT": "true"}
    subprocess.run([sys.executable, str(folder / "logger.py"), str(rows), "0"], env=env, check=True)
    return folder


def cpu_s(fn: Any) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_reader(run_dir: Path, rows: int) -> dict[str, Any]:
    import wandb.proto.wandb_internal_pb2  # noqa: F401  (imported once by any reader process)

    (log,) = segment_folders(run_dir)[0].glob("run-*.wandb")

    def full() -> None:
        records = RunRecords(run_dir)
        records.refresh()
        assert len(records.history("Validation Accuracy")) == rows
        records.summary_value("Validation Accuracy")

    def full_metrics() -> None:
        assert len(RunMetricsReader("Validation Accuracy", "maximize").read(run_dir).epochs) == rows

    fulls = [cpu_s(full) for _ in range(5)]
    metrics = [cpu_s(full_metrics) for _ in range(5)]
    records = RunRecords(run_dir)
    records.refresh()
    n = 2000
    wall, cpu = cpu_s(lambda: [records.refresh() for _ in range(n)])
    leet = []
    for _ in range(3):
        start = time.perf_counter()
        out = subprocess.run(
            [WANDB_CLI, "leet", "inspect", "--summary", "--json", str(log)],
            capture_output=True,
            text=True,
            check=True,
        )
        leet.append(time.perf_counter() - start)
        assert json.loads(out.stdout)["step"] == rows - 1
    return {
        "rows": rows,
        "log_bytes": log.stat().st_size,
        "full_read_wall_s": statistics.median(w for w, _ in fulls),
        "full_read_cpu_s": statistics.median(c for _, c in fulls),
        "full_read_all_rows_decoded_wall_s": statistics.median(w for w, _ in metrics),
        "poll_nothing_new_wall_us": wall / n * 1e6,
        "poll_nothing_new_cpu_us": cpu / n * 1e6,
        "wandb_leet_inspect_summary_wall_s": statistics.median(leet),
    }


def agent_cpu(root: Path, seconds: int, hyperband: bool) -> dict[str, Any]:
    from sweepkit.train.config import dump_yaml

    (root / "logger.py").write_text(LOGGER)
    definition: dict[str, Any] = {
        "method": "grid",
        "metric": {"name": "Validation Accuracy", "goal": "maximize"},
        "command": ["${env}", "${interpreter}", str(root / "logger.py"), str(seconds), "1"],
        "parameters": {"learning_rate": {"values": [0.1]}},
    }
    if hyperband:
        definition["early_terminate"] = {"type": "hyperband", "min_iter": 1000, "eta": 2}
    (root / "sweep.yaml").write_text(dump_yaml(definition))
    sweepkit = [sys.executable, "-m", "sweepkit.jobs.cli"]
    # ${interpreter} is python from PATH: this environment's
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "WANDB_SILENT": "true",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    created = subprocess.run(
        [*sweepkit, "sweep", "create", "sweep.yaml", "--root", "sweeps"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    sweep = root / created.stdout.strip()
    agent = subprocess.Popen(
        [*sweepkit, "agent", str(sweep)],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def agent_ticks() -> int:
        fields = Path(f"/proc/{agent.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime (its own, threads included)

    while not list(sweep.glob("runs/*/wandb/offline-run-*/run-*.wandb")):
        time.sleep(0.1)
    time.sleep(2)  # past the first records
    t0, c0 = time.time(), agent_ticks()
    time.sleep(seconds - 6)  # stop before the program ends and the agent records it
    t1, c1 = time.time(), agent_ticks()
    assert agent.wait(timeout=seconds + 120) == 0
    cpu = (c1 - c0) / CLK_TCK
    return {
        "hyperband": hyperband,
        "window_s": round(t1 - t0, 1),
        "agent_cpu_s": cpu,
        "agent_cpu_s_per_minute": cpu / (t1 - t0) * 60,
        "share_of_one_core_percent": 100 * cpu / (t1 - t0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--agent-s", type=int, default=60)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "big").mkdir()
        result: dict[str, Any] = {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.node()}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
            "command": " ".join(sys.argv),
            "reader": bench_reader(make_run(root / "big", args.rows), args.rows),
            "agent": [],
        }
        for hyperband in (False, True):
            folder = root / f"agent-{'hb' if hyperband else 'grid'}"
            folder.mkdir()
            result["agent"].append(agent_cpu(folder, args.agent_s, hyperband))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
