"""Sweeps on a SLURM of two separate nodes (tests/slurm/nodes-up.sh): each slurmd has its own
network namespace (its own address on a test subnet) and UTS namespace (host name sknode1 or
sknode2), so hosts differ as on a cluster: an array spread over both, one run over both (torchrun's
rendezvous on the first node's address, srun's signals to the other), a node lost mid-run, and
agents on two hosts sharing one sweep's leases. Each node has one CPU: two one-CPU tasks land on
two nodes, and a two-node task fills both.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from slurm_fixture import (
    BASE,
    cluster,
    fast_sweep,
    make_sweep,
    run_infos,
    submitted_job,
    sweepkit,
    wait_for,
)
from slurm_nodes_fixture import Nodes

from sweepkit.jobs.sweeps.store import open_sweep
from sweepkit.jobs.sweeps.store.journal import Journal

pytestmark = pytest.mark.slurm

BOTH = ["sknode1", "sknode2"]
TRAINER = [
    "-m",
    "sweepkit.train.launch",
    "--nproc-per-node=1",
    "-m",
    "sweepkit.train",
    "--config",
    "config/presets/digits.yaml",
    "--model_name=resnet18",
    "--sample_ratio=0.25",
    "--stem=cifar",
    "--image_size=16",
    "--device=cpu",
    "${args}",
]


def submit(slurm: Nodes, ref: str, tmp_path: Path, **profile: Any) -> str:
    """`sweepkit submit` for real on the two nodes; returns the array job id."""
    profiles = cluster(tmp_path, t={**BASE, **profile})
    result = sweepkit(
        "submit", ref, "--profile", "t", "--cluster-config", profiles, env=slurm.env()
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return str(submitted_job(ref)["job_id"])


def journal(ref: str) -> list[dict[str, Any]]:
    return Journal(Path(ref) / "journal.jsonl").read_new()


def of_run(records: list[dict[str, Any]], run_id: str, kind: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get("run") == run_id and r["t"] == kind]


def run_events(ref: str, run_id: str) -> list[dict[str, Any]]:
    """What the fast program's attempts at one run did, in order (events.jsonl)."""
    path = Path(ref) / "runs" / run_id / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def step(info: dict[str, Any]) -> int:
    return int(info.get("step") or 0)


def task_log(ref: str) -> str:
    return "".join(p.read_text() for p in sorted((Path(ref) / "slurm" / "logs").glob("*.out")))


def trainer_sweep(tmp_path: Path, epochs: int) -> str:
    return make_sweep(
        tmp_path,
        {
            "program": "train",
            "command": ["${env}", "${interpreter}", *TRAINER, f"--num_epochs={epochs}"],
            "method": "grid",
            "metric": {"name": "Validation Accuracy", "goal": "maximize"},
            "parameters": {"learning_rate": {"values": [0.01]}, "seed": {"values": [1]}},
        },
    )


def test_one_run_over_two_nodes_takes_the_lead_signal_on_both_and_resumes_as_one_run(
    slurm_nodes: Nodes, tmp_path: Path
) -> None:
    ref = trainer_sweep(tmp_path, epochs=2)
    job = submit(slurm_nodes, ref, tmp_path, nodes=2)
    script = (Path(ref) / "slurm" / f"{job}.sbatch").read_text()
    assert "#SBATCH --nodes=2\n#SBATCH --ntasks=2\n" in script

    def training() -> bool:
        return any("training resnet18" in p.read_text() for p in Path(ref).glob("runs/*/train.log"))

    wait_for(training, 300, "the run's ranks to train")
    # what SLURM sends signal_lead_s before the time limit: USR1 to the batch shell on sknode1
    slurm_nodes.run("scancel", "--batch", "--signal=USR1", job)
    slurm_nodes.wait_done(job, timeout=400)

    (info,) = run_infos(ref)  # one run folder, one record
    assert info["state"] == "finished" and info["attempt"] == 2, info
    assert info["world_size"] == 2 and info["resumed_from"] is not None
    ranks = info["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1] and sorted(r["host"] for r in ranks) == BOTH
    run_dir = Path(ref) / "runs" / str(info["run_id"])
    output = (run_dir / "output.log").read_text()
    # the rendezvous is on the batch node's own name, which the other node resolves to its address
    launches = [line for line in output.splitlines() if line.startswith("sweepkit launch: srun")]
    assert len(launches) == 2 and all("--rdzv-endpoint=sknode1:" in x for x in launches), output
    assert "2 data-parallel processes of batch 16" in output
    # each rank says the signal itself reached it, and where: both nodes
    hosts = [
        line.rsplit("on ", 1)[1].rstrip(")")
        for line in output.splitlines()
        if "SIGUSR1 received: checkpointed" in line or "(SIGUSR1 here, on " in line
    ]
    assert sorted(hosts) == BOTH, output
    log = task_log(ref)
    assert "SIGUSR1" in log and "requeueing job" in log and "restart 1" in log, log
    assert log.count("launch:   ") == 2  # one agent per attempt of the task
    # one result, reported by rank 0 alone; one W&B run (resumed: a folder per attempt)
    assert output.count("finished: Validation Accuracy") == 1
    ends = [r["state"] for r in journal(ref) if r["t"] == "end"]
    assert ends == ["preempted", "finished"], ends
    wandb_runs = {p.name.rsplit("-", 1)[1] for p in (run_dir / "wandb").glob("offline-run-*")}
    assert wandb_runs == {info["run_id"]}


def test_an_array_over_both_nodes_survives_losing_one_and_resumes_its_run_on_the_other(
    slurm_nodes: Nodes, tmp_path: Path
) -> None:
    # two one-CPU array tasks: one per node; then sknode2 dies mid-run
    ref = fast_sweep(tmp_path, points=2, steps=24, step_s=0.25, save_every_step=1)
    job = submit(slurm_nodes, ref, tmp_path)

    def both_running() -> list[dict[str, Any]]:
        infos = run_infos(ref)
        return infos if len(infos) == 2 and all(step(i) >= 3 for i in infos) else []

    infos = wait_for(both_running, 120, "a run on each node to take three steps")
    assert sorted(str(i["host"]) for i in infos) == BOTH  # type: ignore[union-attr]
    (lost,) = [i for i in infos if i["host"] == "sknode2"]  # type: ignore[union-attr]
    slurm_nodes.lose("sknode2")  # slurmd, the task's batch shell, agent and run: all killed
    wait_for(
        lambda: slurm_nodes.states().get("sknode2", "").startswith("down"),
        90,
        "SLURM to mark sknode2 down",
    )
    slurm_nodes.wait_done(job, timeout=240)

    runs = {r.run_id: r.state for r in open_sweep(ref).runs()}
    assert sorted(runs.values()) == ["finished", "finished"], runs
    records = journal(ref)
    run_id = str(lost["run_id"])
    # the lost attempt ended once (crashed, by the requeued task's agent); the resumed one finished
    assert [c["host"] for c in of_run(records, run_id, "claim")] == ["sknode2", "sknode1"]
    assert [e["state"] for e in of_run(records, run_id, "end")] == ["crashed", "finished"]
    seen = run_events(ref, run_id)
    starts = [e for e in seen if e["event"] == "start"]
    assert [e["host"] for e in starts] == ["sknode2", "sknode1"], seen
    assert starts[1]["restart_count"] == "1", seen  # the same task, requeued
    # resumed from its last checkpoint (one per step): no step lost, none run again
    assert starts[1]["step"] >= step(lost), seen
    assert [e["event"] for e in seen] == ["start", "start", "finished"], seen
    (other,) = [r for r in runs if r != run_id]
    assert [e["state"] for e in of_run(records, other, "end")] == ["finished"]
    slurm_nodes.bring_back()  # the node returns: idle again
    assert slurm_nodes.states() == {"sknode1": "idle", "sknode2": "idle"}


# One claim through the store, the way an agent claims, by a process that is already running
# when it is told to (touch GO): its claim is made within a moment of that, whatever the load.
CLAIM_ON_GO = """
import json, sys, time
from pathlib import Path
from sweepkit.jobs.sweeps import store
sweep, me = store.open_sweep(sys.argv[1]), store.AgentIdentity()
Path(sys.argv[2] + ".ready").touch()
while not Path(sys.argv[2]).exists():
    time.sleep(0.01)
claim = sweep.claim(me)
sweep.finish(claim, me, "finished")
print(json.dumps({"run": claim.run_id, "host": me.host}))
"""


def test_agents_on_two_hosts_share_a_sweep_and_take_over_a_silent_lease(
    slurm_nodes: Nodes, tmp_path: Path
) -> None:
    # No SLURM job: agents started on the nodes themselves. Both nodes share one PID namespace,
    # as two real hosts' init namespaces look alike: only the host name tells that sknode2's
    # pids are not sknode1's to probe, so sknode1 must wait for the heartbeat to go stale.
    lease_s = 10.0
    ref = fast_sweep(
        tmp_path, points=2, steps=12, step_s=0.25, options=("--lease", "10"), save_every_step=1
    )
    agent = [str(Path(sys.executable).parent / "sweepkit"), "agent", ref, "--count", "1"]
    go = tmp_path / "go"
    first = slurm_nodes.on("sknode2", agent, stdout=subprocess.DEVNULL)
    claimer = slurm_nodes.on(
        "sknode1", [sys.executable, "-c", CLAIM_ON_GO, ref, str(go)], stdout=subprocess.PIPE
    )
    try:
        wait_for(lambda: any(step(i) >= 2 for i in run_infos(ref)), 60, "sknode2's run to start")
        wait_for(lambda: Path(f"{go}.ready").exists(), 60, "sknode1's claimer to be ready")
        (claim,) = [r for r in journal(ref) if r["t"] == "claim"]
        run_id = claim["run"]
        lease_file = Path(ref) / "leases" / f"{run_id}.0.json"
        first.send_signal(signal.SIGKILL)  # the agent and its run die: the heartbeat stops
        subprocess.run(["kill", "-KILL", str(json.loads(lease_file.read_text())["child_pid"])])
        go.touch()  # sknode1 claims now: sknode2's pid is gone, but not sknode1's to judge
        out, _ = claimer.communicate(timeout=60)
    finally:
        for proc in (first, claimer):
            proc.kill()
            proc.wait()
    assert json.loads(out)["run"] != run_id, out  # the other run, not the silent one
    assert not of_run(journal(ref), run_id, "end")
    last_beat = json.loads(lease_file.read_text())["beat_at"]
    wait_for(lambda: time.time() - last_beat > lease_s, 60, "the lease to go stale")
    taker = slurm_nodes.on("sknode1", agent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = taker.communicate(timeout=120)
    assert taker.returncode == 0, out

    records = journal(ref)
    assert [c["host"] for c in of_run(records, run_id, "claim")] == ["sknode2", "sknode1"]
    crashed, finished = of_run(records, run_id, "end")
    assert crashed["state"] == "crashed" and finished["state"] == "finished", records
    assert "on sknode2" in crashed["error"], crashed
    assert sorted(r.state for r in open_sweep(ref).runs()) == ["finished", "finished"]
    starts = [e for e in run_events(ref, run_id) if e["event"] == "start"]
    assert [e["host"] for e in starts] == ["sknode2", "sknode1"], starts
    assert starts[1]["step"] >= 2, starts  # resumed from sknode2's last checkpoint
