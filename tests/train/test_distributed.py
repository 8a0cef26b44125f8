"""Data-parallel trials on the CPU: real torchrun, two gloo ranks.

Equivalence is checked where it is exact: a few float64 steps of the trainer's own parts
(``tests/support/ddp_float64_steps.py``) under two ranks give the parameters one process gets with the
global batch, to 1e-9. fp32 training runs are not compared with each other: a ResNet amplifies the
rounding of sums taken in another order (a ReLU input within 1e-7 of zero routes its gradient
elsewhere), and how far two healthy runs drift apart depends on the CPU. The fp32 end-to-end run
asserts what is robust instead: one record, rank 0 alone writes, and the run learns.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from ddp_float64_steps import CASES, steps
from trainer_runs import DIGITS, ROOT, env_without_wandb

from sweepkit.train.checkpoint import load_latest_checkpoint
from sweepkit.train.distributed import World
from sweepkit.train.runrecord import read_run_json

# ResNet-18 with the CIFAR stem (no max-pool: fewer near-ties) at 16 px on a quarter of digits.
SMALL = [
    "num_epochs=2",
    "deterministic=true",
    "sample_ratio=0.25",
    "device=cpu",
    "stem=cifar",
    "image_size=16",
]


def sets(values: list[str]) -> list[str]:
    return sum((["--set", v] for v in values), [])


def torchrun(ranks: int, args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        + [f"--nproc-per-node={ranks}", "-m", "sweepkit.train", *args],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out, err


def rank_pids(launcher_pid: int, ranks: int) -> dict[int, int]:
    """{rank: pid} of torchrun's worker processes, once they all run."""
    deadline = time.time() + 120
    while time.time() < deadline:
        found = {}
        children = Path(f"/proc/{launcher_pid}/task/{launcher_pid}/children").read_text().split()
        for pid in children:
            try:
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            for item in env:
                if item.startswith(b"RANK="):
                    found[int(item[5:])] = int(pid)
        if len(found) == ranks:
            return found
        time.sleep(0.2)
    raise AssertionError("torchrun's ranks did not start")


FLOAT64_TOLERANCE = 1e-9  # float64 sums in another order differ by ~1e-15 relative


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, float]:
    """Largest absolute difference per tensor (the integer batch counters included)."""
    assert a.keys() == b.keys()
    return {k: float((a[k].double() - b[k].double()).abs().max()) for k in a}


@pytest.fixture(scope="module")
def two_rank_float64(tmp_path_factory) -> Path:
    """Each case of ddp_float64_steps.py run once under torchrun with two gloo ranks."""
    out = tmp_path_factory.mktemp("ddp64")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
        + [str(ROOT / "tests" / "support" / "ddp_float64_steps.py"), str(out)],
        cwd=ROOT,
        env=env_without_wandb(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def ranks(out: Path, case: str) -> list[dict[str, torch.Tensor]]:
    return [torch.load(out / f"{case}-rank{r}.pt") for r in (0, 1)]


@pytest.mark.system  # starts processes
def test_two_ranks_take_the_steps_of_one_process_with_the_global_batch(two_rank_float64):
    """sync_batchnorm (the default): averaged gradients and global-batch BatchNorm statistics."""
    reference = CASES["sync_batchnorm"](World())
    rank0, rank1 = ranks(two_rank_float64, "sync_batchnorm")
    assert max(max_difference(rank0, rank1).values()) == 0.0  # DDP keeps the replicas identical
    differences = max_difference(reference, rank0)
    assert max(differences.values()) <= FLOAT64_TOLERANCE, sorted(
        differences.items(), key=lambda kv: -kv[1]
    )[:5]
    # the steps trained: the comparison is not of two initialisations
    moved = max_difference(reference, steps(World(), sync_batchnorm=True, count=0))
    assert max(v for k, v in moved.items() if not k.endswith("num_batches_tracked")) > 1e-3


@pytest.mark.system  # starts processes
def test_without_synchronised_batchnorm_the_ranks_train_another_model(two_rank_float64):
    """What the check above tells apart: per-rank BatchNorm statistics change the steps."""
    reference = CASES["rank_batchnorm"](World())
    rank0, _ = ranks(two_rank_float64, "rank_batchnorm")
    assert max(max_difference(reference, rank0).values()) > 1e-6


@pytest.mark.system  # starts processes
def test_the_cpu_batchnorm_twin_is_batchnorm_over_the_global_batch(two_rank_float64):
    """GlobalBatchNorm2d on two ranks' halves = BatchNorm2d on the whole batch, gradients included."""
    reference = CASES["batchnorm_twin"](World())
    for rank, got in enumerate(ranks(two_rank_float64, "batchnorm_twin")):
        rows = World(rank=rank, size=2).local_slice(len(reference["out"]))
        expected = {**reference, "out": reference["out"][rows]}
        expected["input_grad"] = reference["input_grad"][rows]
        differences = max_difference(expected, got)
        assert max(differences.values()) <= FLOAT64_TOLERANCE, differences


@pytest.mark.slow
def test_two_ranks_train_one_run_that_learns(tmp_path):
    """fp32 end to end under torchrun: one record and one W&B run, written by rank 0, that learn."""
    run_dir = tmp_path / "two"
    settings = ["num_epochs=2", "sample_ratio=0.5", "device=cpu"]
    env = env_without_wandb(WANDB_MODE="offline")
    # through the launcher, as a sweep runs data-parallel trials: its exit code is the run's, from
    # run.json (torchrun alone has once reported a finished run as failed: rank 1 aborted with
    # "terminate called without an active exception" after the run had finished, on one CI run)
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sweepkit.train.launch",
            "--nproc-per-node=2",
            "-m",
            "sweepkit.train",
        ]
        + ["--config", DIGITS, *sets(settings), "--run-dir", str(run_dir)],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    code, out, err = finish(launcher)
    assert code == 0, out + err
    assert "2 data-parallel processes of batch 16" in out
    assert out.count("finished: Validation Accuracy") == 1  # rank 0 alone reports
    record = read_run_json(run_dir)
    assert record is not None and record["state"] == "finished" and record["world_size"] == 2
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1
    assert sorted(p.name for p in run_dir.glob("*.log")) == ["train.log"]
    # ten classes: chance is 10%; this workload reaches ~90% in two epochs of one process
    assert record["summary"]["Test Accuracy"] >= 50.0, record["summary"]
    assert record["summary"]["Validation Accuracy"] >= 50.0, record["summary"]


@pytest.mark.slow
def test_sigterm_to_one_rank_stops_both_at_the_same_step_then_resumes(tmp_path):
    run_dir = tmp_path / "run"
    args = ["--config", DIGITS, *sets([*SMALL, "wandb.mode=disabled"]), "--run-dir", str(run_dir)]
    env = env_without_wandb()
    proc = torchrun(2, args, env=env)
    pids = rank_pids(proc.pid, 2)
    log = run_dir / "train.log"
    deadline = time.time() + 300
    while time.time() < deadline and not (log.exists() and "training resnet18" in log.read_text()):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    # only rank 1 is told: the ranks agree on the stop through a collective after each step
    subprocess.run(["kill", "-TERM", str(pids[1])], check=True)
    code, out, err = finish(proc)
    assert code != 0  # torchrun reports ranks that exited 75 as failed; the agent knows better
    assert f"exitcode  : 75 (pid: {pids[1]})" in err or "exitcode: 75" in err.replace(" ", ""), err
    record = read_run_json(run_dir)
    assert record is not None and record["state"] == "preempted" and record["exit_code"] == 75
    ckpt = load_latest_checkpoint(run_dir)
    assert ckpt is not None and ckpt["world_size"] == 2
    stopped = f"epoch {ckpt['epoch']} step {ckpt['step']}"
    assert f"checkpointed at {stopped}" in out, out
    assert f"rank 1: stopped with the other ranks at {stopped}" in out, out

    # a resume on another world size is refused in one line, and changes nothing
    other = subprocess.run(
        [sys.executable, "-m", "sweepkit.train", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert other.returncode == 2 and other.stderr.count("\n") == 1, other.stderr
    assert "checkpointed by 2 data-parallel process(es) and this resume has 1" in other.stderr
    assert read_run_json(run_dir) == record

    code, out, err = finish(torchrun(2, args, env=env))
    assert code == 0, out + err
    record = read_run_json(run_dir)
    assert record is not None and record["state"] == "finished" and record["attempt"] == 2
    assert record["resumed_from"] == {"epoch": ckpt["epoch"], "step": ckpt["step"]}
    assert [e["epoch"] for e in record["epochs"]] == [1, 2]


@pytest.mark.system  # starts processes
def test_a_batch_that_does_not_split_over_the_ranks_is_one_line(tmp_path):
    args = ["--config", DIGITS, *sets([*SMALL, "wandb.mode=disabled", "batch_size=33"])]
    code, out, err = finish(
        torchrun(2, [*args, "--run-dir", str(tmp_path / "run")], env=env_without_wandb())
    )
    assert code != 0
    line = "sweepkit train: error: batch_size=33 does not split over 2 data-parallel processes"
    assert err.count(line) == 1, err  # rank 0 says it once; every rank exits 2


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGUSR1])
def test_the_launcher_passes_a_stop_on_and_exits_75_from_the_record(tmp_path, stop):
    """torchrun calls ranks that exit 75 a failure; python -m sweepkit.train.launch reports the run."""
    run_dir = tmp_path / "run"
    args = ["--config", DIGITS, *sets([*SMALL, "wandb.mode=disabled"]), "--run-dir", str(run_dir)]
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sweepkit.train.launch",
            "--nproc-per-node=2",
            "-m",
            "sweepkit.train",
            *args,
        ],
        cwd=ROOT,
        env=env_without_wandb(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    log = run_dir / "train.log"
    deadline = time.time() + 300
    while time.time() < deadline and not (log.exists() and "training resnet18" in log.read_text()):
        assert launcher.poll() is None, launcher.communicate()
        time.sleep(0.1)
    launcher.send_signal(stop)
    code, out, err = finish(launcher)
    assert code == 75, out + err
    assert "sweepkit launch: " in out and "--standalone" in out
    record = read_run_json(run_dir)
    assert record is not None and record["state"] == "preempted" and record["world_size"] == 2
