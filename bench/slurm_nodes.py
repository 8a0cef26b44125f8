"""A SLURM of separate nodes on this machine (tests/slurm/nodes-up.sh, 4 nodes by default): how an
array spreads over the nodes, and how fast agents on every node claim from one sweep.

    flock /tmp/slurm-tests.lock python bench/slurm_nodes.py        # as root; appends to RESULTS.md
    flock /tmp/slurm-tests.lock python bench/slurm_nodes.py --nodes 2 --no-record

Each node is a slurmd in its own network and UTS namespace (its own address and host name); they
share this machine's CPUs and file system. Two measurements:

1. tasks per node: a grid sweep of ``--runs`` runs of a program that sleeps ``--run-s`` seconds,
   submitted with ``sweepkit submit --array 1-R%N`` (one CPU per task, nodes of one CPU): the
   claims' hosts in the sweep's journal count each node's tasks; the wall time runs from submit to
   the array's end.
2. claim throughput across hosts: a grid sweep of ``--claims`` points; one claiming process per
   node (started inside the node's namespaces) claims and finishes runs through the store until
   none is left, all starting together; then as many processes on one node. Claims per second
   in all, and each host's share.

The nodes are removed at the end (tests/slurm/nodes-down.sh), also after an error. Wall clock on
whatever machine runs it; on a 2-core machine the nodes share two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
UP = REPO / "tests" / "slurm" / "nodes-up.sh"
DOWN = REPO / "tests" / "slurm" / "nodes-down.sh"
STATE = Path(os.environ.get("SWEEPKIT_NODES_DIR", "/tmp/sweepkit-slurm-nodes"))
SWEEPKIT = str(Path(sys.executable).parent / "sweepkit")
SLEEPER = "import sys, time\ntime.sleep(float(sys.argv[1].split('=', 1)[1]))\n"


def start_nodes(n: int) -> dict[str, str]:
    """Start n nodes; the environment that points SLURM's clients at them."""
    env = {**os.environ, "SWEEPKIT_NODES": str(n)}
    done = subprocess.run(["bash", str(UP)], env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        sys.exit(f"slurm_nodes: the nodes did not start: {done.stderr.strip()}")
    return {**os.environ, "SLURM_CONF": done.stdout.strip().split("=", 1)[1]}


def on_node(node: str, argv: list[str]) -> subprocess.Popen[str]:
    """Start argv on node: in its slurmd's network, UTS and mount namespaces."""
    pid = (STATE / "nodes" / node / "slurmd.pid").read_text().strip()
    enter = ["nsenter", "-t", pid, "--net", "--uts", "--mount", f"--wd={REPO}", "--"]
    return subprocess.Popen([*enter, *argv], stdout=subprocess.PIPE, text=True)


def make_sweep(root: Path, points: int, run_s: float) -> str:
    root.mkdir(parents=True, exist_ok=True)
    program = root / "sleeper.py"
    program.write_text(SLEEPER)
    spec = root / "sweep.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "program": str(program),
                "command": ["${env}", "${interpreter}", "${program}", "${args}"],
                "method": "grid",
                "parameters": {"s": {"value": run_s}, "point": {"values": list(range(points))}},
            }
        )
    )
    argv = [SWEEPKIT, "sweep", "create", "--root", str(root / "sweeps"), str(spec)]
    made = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=REPO)
    return made.stdout.splitlines()[0].strip()


def journal(ref: str) -> list[dict[str, Any]]:
    from sweepkit.jobs.sweeps.store.journal import Journal

    return Journal(Path(ref) / "journal.jsonl").read_new()


def tasks_per_node(
    env: dict[str, str], tmp: Path, nodes: int, runs: int, run_s: float
) -> dict[str, Any]:
    ref = make_sweep(tmp / "array", runs, run_s)
    profile = {
        "partition": "debug",
        "time": "00:10:00",
        "cpus_per_task": 1,
        "concurrency": nodes,
        "runtime": "none",
        "signal_lead_s": 60,
    }
    (tmp / "cluster.yaml").write_text(yaml.safe_dump({"profiles": {"nodes": profile}}))
    submit = [SWEEPKIT, "submit", ref, "--profile", "nodes"]
    submit += ["--cluster-config", str(tmp / "cluster.yaml")]
    t0 = time.perf_counter()
    done = subprocess.run(submit, env=env, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    job = done.stdout.split()[3]  # "Submitted array job ID ..."
    while subprocess.run(
        ["squeue", "-h", "-r", "-j", job], env=env, capture_output=True, text=True
    ).stdout.strip():
        time.sleep(0.5)
    wall = time.perf_counter() - t0
    records = journal(ref)
    ends = Counter(r["state"] for r in records if r["t"] == "end")
    hosts = Counter(r["host"] for r in records if r["t"] == "claim")
    return {"job": job, "wall_s": wall, "ends": dict(ends), "per_node": dict(sorted(hosts.items()))}


def claim_round(hosts: list[str], points: int, tmp: Path) -> dict[str, Any]:
    """One claiming process per entry of hosts (a host may repeat), all on one fresh sweep."""
    ref = make_sweep(tmp, points, 0)
    go = tmp / "go"
    procs = [
        on_node(h, [sys.executable, __file__, "--claimer", ref, "--go", str(go)]) for h in hosts
    ]
    deadline = time.time() + 120
    while len(list(tmp.glob("go.ready.*"))) < len(hosts) and time.time() < deadline:
        time.sleep(0.05)
    go.touch()
    reports = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
        reports.append(json.loads(out.strip().splitlines()[-1]))
    claims = sum(r["claims"] for r in reports)
    wall = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    per_host = Counter[str]()
    for r in reports:
        per_host[r["host"]] += r["claims"]
    ends = [r for r in journal(ref) if r["t"] == "end"]
    return {
        "claims": claims,
        "ended": len(ends),
        "runs": len({r["run"] for r in ends}),
        "wall_s": wall,
        "per_s": claims / wall,
        "per_host": dict(sorted(per_host.items())),
    }


def claimer(ref: str, go: str) -> None:
    """One agent's claims, as fast as the store hands them out: claim, finish, again."""
    import socket

    from sweepkit.jobs.sweeps import store

    sweep, me = store.open_sweep(ref), store.AgentIdentity()
    Path(f"{go}.ready.{socket.gethostname()}.{os.getpid()}").touch()
    while not Path(go).exists():
        time.sleep(0.002)
    start, claims = time.time(), 0
    while isinstance(claim := sweep.claim(me), store.Claim):
        sweep.finish(claim, me, "finished", metric=float(claims), history=[0.0], epochs=1)
        claims += 1
    end = time.time()
    print(json.dumps({"host": socket.gethostname(), "claims": claims, "start": start, "end": end}))


def markdown(args: argparse.Namespace, array: dict[str, Any], rounds: dict[str, Any]) -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]
    lines = [
        f"### {now}, {platform.node()}, {os.cpu_count()} CPUs shared by {args.nodes} nodes "
        f"(load average {load:.1f} at the end)",
        "",
        f"Array of {args.runs} runs of {args.run_s:g} s, `--array 1-{args.runs}%{args.nodes}`: "
        f"{array['wall_s']:.1f} s from submit to the end, ends {array['ends']}; tasks per node "
        + ", ".join(f"{h} {n}" for h, n in array["per_node"].items())
        + ".",
        "",
        "| claiming processes | claims | runs ended once | wall s | claims/s | claims per host |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, r in rounds.items():
        share = ", ".join(f"{h} {n}" for h, n in r["per_host"].items())
        lines.append(
            f"| {name} | {r['claims']} | {r['runs']} of {r['ended']} | {r['wall_s']:.1f} "
            f"| {r['per_s']:.1f} | {share} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--run-s", type=float, default=2.0)
    parser.add_argument("--claims", type=int, default=400)
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    parser.add_argument("--claimer", help=argparse.SUPPRESS)
    parser.add_argument("--go", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.claimer:
        claimer(args.claimer, args.go)
        return
    if os.geteuid() != 0:
        sys.exit("slurm_nodes: needs root (network namespaces, SlurmUser=root)")
    names = [f"sknode{i}" for i in range(1, args.nodes + 1)]
    try:
        env = start_nodes(args.nodes)
        with tempfile.TemporaryDirectory(prefix="slurm-nodes-bench-") as tmp:
            array = tasks_per_node(env, Path(tmp), args.nodes, args.runs, args.run_s)
            rounds = {
                f"{args.nodes}, one per node": claim_round(names, args.claims, Path(tmp, "a")),
                f"{args.nodes}, all on sknode1": claim_round(
                    [names[0]] * args.nodes, args.claims, Path(tmp, "b")
                ),
            }
    finally:
        subprocess.run(["bash", str(DOWN)], capture_output=True, timeout=120)
    text = markdown(args, array, rounds)
    print(text)
    if not args.no_record:
        with open(REPO / "bench" / "RESULTS.md", "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
