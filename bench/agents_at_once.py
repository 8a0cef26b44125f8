"""Many real agents at once on one grid, some killed on the way: start-up, claim rate, exactly once.

    python bench/agents_at_once.py                           # 32 agents, 1,000 points, 8 killed
    python bench/agents_at_once.py --agents 4 --points 12 --kills 2 --no-record   # seconds

It creates a local grid sweep of ``--points`` values of ``x`` for a tiny plain W&B script (offline:
``wandb.init``, one ``run.log({"m": x})``, ``run.finish``), starts ``--agents`` real
``sweepkit agent SWEEP`` processes at the same moment (each runs until the sweep is complete), and
while they run SIGKILLs ``--kills`` of them, one at a time, each while it runs a program (its
lease file names it), spread over the first half of the grid. The killed agents are not reaped
until the end (zombies, as under a parent that is busy), and the lease time stays the default
120 s: their runs are taken over because their pids count as gone, not because a heartbeat aged.

It reports, from the journal's records (each claim holds its time and pid): the time from the
start to the first claim, to the median agent's first claim and to the last agent's; claims per
second over the span of all claims; runs finished per second over the whole bench; for each kill,
how long until the next claim ended its attempt and until its run was handed out again. Then
bench/agents_at_once_check.py checks every point ran exactly once, from the journal and, apart from
it, from the run folders' W&B runs; the bench exits 1 if not. The machine's load average is
recorded at start and end. Figures are wall clock on a machine others may share; the tests run
it at a tiny size and check only the exactly-once answers (tests/bench/test_agents_at_once_bench.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agents_at_once_check import check_exactly_once  # noqa: E402  (beside this file)

from sweepkit.jobs.sweeps.store.journal import Journal  # noqa: E402

PROGRAM = """import wandb

run = wandb.init(project="agents-at-once")
run.log({"m": run.config.x})
run.finish()
"""
POLL_S = 0.1


def make_sweep(folder: Path, points: int) -> Path:
    """The program, its grid definition and the sweep (``sweepkit sweep create``)."""
    (folder / "log_one_metric.py").write_text(PROGRAM)
    definition = {
        "program": "log_one_metric.py",
        "method": "grid",
        "metric": {"name": "m", "goal": "minimize"},
        "parameters": {"x": {"values": list(range(points))}},
    }
    (folder / "sweep.yaml").write_text(json.dumps(definition))  # JSON is YAML
    made = subprocess.run(
        [*sweepkit_cli(), "sweep", "create", "sweep.yaml", "--root", "sweeps"],
        cwd=folder,
        env=agent_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return folder / made.stdout.strip()


def sweepkit_cli() -> list[str]:
    return [sys.executable, "-m", "sweepkit.jobs.cli"]


def agent_env() -> dict[str, str]:
    """This python first on PATH: the one ``${interpreter}`` names, as in an activated venv."""
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    return {**os.environ, "PATH": path, "WANDB_MODE": "offline"}


def kill_one(
    sweep: Path, agents: dict[int, subprocess.Popen[bytes]], killed: dict[int, dict[str, Any]]
) -> bool:
    """SIGKILL an agent whose program runs (its lease names the program), not reaped; True if one.
    While its program runs an agent holds no lock (killing one that does would stall every agent
    for the lock's lifetime, a case of its own)."""
    for lease_file in sorted((sweep / "leases").glob("*.json")):
        try:
            lease = json.loads(lease_file.read_text())
        except (OSError, ValueError):
            continue  # ended meanwhile
        pid, child = lease.get("pid"), lease.get("child_pid")
        if pid in agents and pid not in killed and child and running(child):
            os.kill(pid, signal.SIGKILL)
            killed[pid] = {"at": time.time(), "run": lease["run"], "k": lease["k"]}
            return True
    return False


def run_agents(sweep: Path, n: int, kills: int, points: int, timeout_s: float) -> dict[str, Any]:
    """Start ``n`` agents at once, kill ``kills`` of them on the way, wait for the others."""
    logs = sweep.parent.parent / "agent-logs"
    logs.mkdir(exist_ok=True)
    # the k-th kill once this many runs were claimed: spread over the grid's first half
    kill_after = [int(points * (0.05 + 0.45 * i / max(1, kills))) for i in range(kills)]
    journal, records = Journal(sweep / "journal.jsonl"), []
    env, cwd = agent_env(), sweep.parent.parent
    started = time.time()
    agents = {}
    for i in range(n):
        with open(logs / f"agent-{i:03d}.log", "wb") as out:
            proc = subprocess.Popen(
                [*sweepkit_cli(), "agent", str(sweep)], cwd=cwd, env=env, stdout=out, stderr=out
            )
        agents[proc.pid] = proc
    killed: dict[int, dict[str, Any]] = {}
    codes: dict[int, int] = {}
    while len(codes) + len(killed) < n:
        records += journal.read_new()
        claimed = sum(1 for r in records if r["t"] == "claim")
        if kill_after and claimed >= kill_after[0] and kill_one(sweep, agents, killed):
            kill_after.pop(0)
        for pid, proc in agents.items():  # poll() reaps: never on a killed agent
            if pid not in killed and pid not in codes and proc.poll() is not None:
                codes[pid] = proc.returncode
        if time.time() - started > timeout_s:
            for pid in set(agents) - set(codes) - set(killed):
                agents[pid].kill()
            raise SystemExit(f"agents still running after {timeout_s:g} s; logs in {logs}")
        time.sleep(POLL_S)
    ended = time.time()
    records += journal.read_new()
    zombies = sum(1 for pid in killed if zombie_state(pid))
    for pid in killed:
        agents[pid].wait()
    return {
        "started": started,
        "ended": ended,
        "records": records,
        "killed": killed,
        "zombies_until_the_end": zombies,
        "exit_codes": sorted(codes.values()),
        "agent_pids": set(agents),
        "logs": logs,
    }


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return not zombie_state(pid)


def zombie_state(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def timings(ran: dict[str, Any]) -> dict[str, Any]:
    """The figures, from the journal's records and the kill times."""
    t0, records = ran["started"], ran["records"]
    claims = [r for r in records if r["t"] == "claim"]
    first_by_pid: dict[int, float] = {}
    for claim in claims:
        if claim["pid"] in ran["agent_pids"]:
            first_by_pid.setdefault(claim["pid"], claim["at"] - t0)
    firsts = sorted(first_by_pid.values())
    span = claims[-1]["at"] - claims[0]["at"] if len(claims) > 1 else float("nan")
    finished = sum(1 for r in records if r["t"] == "end" and r["state"] == "finished")
    ended_after, rehanded_after = [], []
    for kill in ran["killed"].values():
        end = next((r for r in records if r["t"] == "end" and (r["run"], r["k"]) == (kill["run"], kill["k"])), None)  # fmt: skip
        again = next((r for r in claims if (r["run"], r["k"]) == (kill["run"], kill["k"] + 1)), None)  # fmt: skip
        if end is not None:
            ended_after.append(end["at"] - kill["at"])
        if again is not None:
            rehanded_after.append(again["at"] - kill["at"])
    killed_attempts = {(kill["run"], kill["k"]) for kill in ran["killed"].values()}
    taken_over = [r for r in records if r["t"] == "end" and r["by"] not in agents_of(r, claims)]
    return {
        "killed_attempts_crashed": len(rehanded_after),
        "killed_attempts_finished_by_own_records": sum(
            1
            for r in taken_over
            if (r["run"], r["k"]) in killed_attempts and r["state"] != "crashed"
        ),
        "live_agents_attempts_taken_over": sum(
            1 for r in taken_over if (r["run"], r["k"]) not in killed_attempts
        ),
        "agents_that_claimed": len(firsts),
        "first_claim_s": firsts[0] if firsts else None,
        "median_agent_first_claim_s": statistics.median(firsts) if firsts else None,
        "last_agent_first_claim_s": firsts[-1] if firsts else None,
        "claims": len(claims),
        "claims_per_s": len(claims) / span if span > 0 else None,
        "finished_per_s": finished / (ran["ended"] - t0),
        "wall_s": ran["ended"] - t0,
        "kills": len(ran["killed"]),
        "killed_attempts_ended_after_s": sorted(ended_after),
        "killed_runs_handed_again_after_s": sorted(rehanded_after),
    }


def agents_of(end: dict[str, Any], claims: list[dict[str, Any]]) -> set[str]:
    """The agent that claimed the attempt ``end`` ends (an end by another took it over)."""
    return {c["agent"] for c in claims if (c["run"], c["k"]) == (end["run"], end["k"])}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=32, help="agents started at once")
    parser.add_argument("--points", type=int, default=1000, help="grid points (runs)")
    parser.add_argument("--kills", type=int, default=8, help="agents SIGKILLed on the way")
    parser.add_argument("--dir", type=Path, help="work here (default: a new temp folder)")
    parser.add_argument("--timeout", type=float, default=7200, help="give up after (s)")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)
    if args.agents < 1 or args.points < 1 or not 0 <= args.kills < args.agents:
        parser.error("--agents and --points must be at least 1, --kills from 0 to --agents - 1")
    return args


SECTION = """
## Many agents at once (bench/agents_at_once.py, issue 29 item 6)

Real `sweepkit agent` processes started at the same moment on one grid of a tiny offline W&B
script that logs one metric, some SIGKILLed (not reaped) while their program runs; times from the
journal's records. "Exactly once" is checked from the journal and, apart from it, from the run
folders' W&B runs (bench/agents_at_once_check.py).
"""


def markdown(args: argparse.Namespace, facts: dict[str, Any], meta: dict[str, Any]) -> str:
    def s(value: Any) -> str:
        return "-" if value is None else f"{value:.1f} s"

    t = facts
    ended, again = t["killed_attempts_ended_after_s"], t["killed_runs_handed_again_after_s"]
    lines = [
        f"### {meta['date']} UTC, {meta['machine']} (load average {meta['load_start']:.1f} at "
        f"start, {meta['load_end']:.1f} at end; {meta['memory_gb']:.0f} GB memory)",
        "",
        f"    python bench/agents_at_once.py --agents {args.agents} --points {args.points} "
        f"--kills {args.kills}",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| agents started at once / that claimed | {args.agents} / {t['agents_that_claimed']} |",
        f"| start to first claim | {s(t['first_claim_s'])} |",
        f"| start to the median agent's first claim | {s(t['median_agent_first_claim_s'])} |",
        f"| start to the last agent's first claim | {s(t['last_agent_first_claim_s'])} |",
        f"| claims (first claims and resumes) | {t['claims']} |",
        f"| claims per second, first to last claim | {t['claims_per_s'] or 0:.2f} |",
        f"| runs finished per second, whole bench | {t['finished_per_s']:.2f} |",
        f"| wall, start to the last agent's exit | {s(t['wall_s'])} |",
        f"| agents killed (zombies until the end) | {t['kills']} ({t['zombies_until_the_end']}) |",
        f"| killed attempts: crashed and handed out again / finished by their own records | "
        f"{t['killed_attempts_crashed']} / {t['killed_attempts_finished_by_own_records']} |",
        f"| live agents' attempts taken over (lease expired) | "
        f"{t['live_agents_attempts_taken_over']} |",
        f"| kill to its attempt ended, max | {s(max(ended, default=None))} |",
        f"| kill to its run handed out again, max | {s(max(again, default=None))} |",
        f"| every point exactly once | {'yes' if not t['problems'] else 'NO'} |",
        "",
        f"Journal: {t['records']} records, {t['runs']} runs, {t['finished_end_records']} finished "
        f"and {t['crashed_end_records']} crashed end records ({t['reconciled_end_records']} "
        f"reconciled from the run's own records), {t['resumed_attempts']} resumed attempts. Run "
        f"folders: {t['run_folders']}, holding {t['wandb_runs']} W&B runs "
        f"({t['wandb_runs_without_exit']} without an exit record: killed attempts), "
        f"{t['points_finished_in_folders']} points finished. Lease files left: "
        f"{t['lease_files_left']}; claim tokens: {t['claim_tokens']}. Agents' exit codes: "
        f"{meta['exit_codes']}.",
    ]
    if t["problems"]:
        lines += ["", "Problems:", *[f"- {p}" for p in t["problems"]]]
    return "\n".join(lines) + "\n"


def record(text: str) -> None:
    results = REPO / "bench" / "RESULTS.md"
    old = results.read_text()
    head = "" if SECTION.strip().splitlines()[0] in old else SECTION
    results.write_text(old.rstrip("\n") + "\n" + head + "\n" + text)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = args.dir or Path(tempfile.mkdtemp(prefix="agents-at-once-"))
    folder.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.node()}, {os.cpu_count()} CPUs ({platform.machine()})",
        "memory_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9,
        "load_start": os.getloadavg()[0],
    }
    sweep = make_sweep(folder, args.points)
    print(f"sweep {sweep}: {args.agents} agents, {args.points} points, {args.kills} kills")
    ran = run_agents(sweep, args.agents, args.kills, args.points, args.timeout)
    meta["load_end"], meta["exit_codes"] = os.getloadavg()[0], sorted(set(ran["exit_codes"]))
    facts = timings(ran)
    checked, problems = check_exactly_once(sweep, args.points)
    if set(ran["exit_codes"]) != {0}:
        problems.append(f"agents exited {ran['exit_codes']}; logs in {ran['logs']}")
    facts.update(checked, problems=problems, zombies_until_the_end=ran["zombies_until_the_end"])
    text = markdown(args, facts, meta)
    print(text)
    print("exactly once: " + ("yes" if not problems else "NO"))
    if args.json:
        args.json.write_text(json.dumps({**meta, **facts}, indent=2) + "\n")
    if not args.no_record:
        record(text)
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
