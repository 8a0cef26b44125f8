"""The trainer end to end on CPU: learning, run.json, W&B offline, checkpoints, resume, signals."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torchvision
import yaml
from cifar_fixture import make_cifar
from trainer_runs import DIGITS, ROOT, env_without_wandb

from sweepkit.train.checkpoint import load_latest_checkpoint
from sweepkit.train.config import build_config
from sweepkit.train.errors import EXIT_PREEMPTED
from sweepkit.train.runrecord import RunRecord, read_run_json
from sweepkit.train.tracking import Tracker
from sweepkit.train.trainer import StopSignal, train

# A small, fast model for mechanics tests: ResNet-18 at 32 px on digits, deterministic.
TINY = [
    "model_name=resnet18",
    "batch_size=32",
    "num_epochs=2",
    "limit_train_batches=12",
    "deterministic=true",
    "wandb.mode=disabled",
]


def run_train(
    args: list[str], env: dict[str, str] | None = None, **kwargs
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sweepkit.train", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env or env_without_wandb(),
        timeout=600,
        **kwargs,
    )


class StopAfter(StopSignal):
    """A stop request that arrives after ``checks`` checks: a signal at a reproducible step."""

    def __init__(self, checks: int):
        super().__init__()
        self.left = checks

    @property
    def requested(self) -> bool:  # type: ignore[override]
        self.left -= 1
        if self.left < 0:
            self.name = "SIGTERM"
        return self.left < 0


def train_in_process(
    run_dir: Path, sets: list[str], stop: StopSignal | None = None
) -> tuple[str, dict]:
    cfg = build_config([DIGITS], sets=sets)
    run_dir.mkdir(parents=True, exist_ok=True)
    record = RunRecord(run_dir, run_dir.name, cfg.nested())
    state = train(cfg, run_dir, record, Tracker(cfg, run_dir, run_dir.name), stop or StopSignal())
    return state, record.data


@pytest.mark.slow
def test_digits_preset_learns_and_records_run_json(tmp_path):
    run_dir = tmp_path / "run"
    umask = os.umask(0o027)  # the trainer inherits it: its files must follow it, as open()'s do
    try:
        proc = run_train(
            ["--config", DIGITS, "--set", "wandb.mode=disabled", "--run-dir", str(run_dir)],
            env=env_without_wandb(SLURM_JOB_ID="4242", SLURM_ARRAY_TASK_ID="3"),
        )
    finally:
        os.umask(umask)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # group-readable, so that a teammate's `sweepkit status` and report can read the run
    written = [run_dir / "run.json", *run_dir.glob("**/*.pt")]
    assert len(written) > 1 and {stat.S_IMODE(f.stat().st_mode) for f in written} == {0o640}
    record = read_run_json(run_dir)
    assert record is not None and record["state"] == "finished" and record["exit_code"] == 0
    assert [e["epoch"] for e in record["epochs"]] == [1, 2, 3]
    for name in ("Train Loss", "Validation Loss", "Validation Accuracy", "images_per_s"):
        assert name in record["epochs"][-1]
    assert record["summary"]["Validation Accuracy"] >= 85.0, record["epochs"]
    assert record["summary"]["Test Accuracy"] >= 80.0
    assert (
        record["config"]["dataset"] == "digits" and record["config"]["wandb"]["mode"] == "disabled"
    )
    assert record["slurm"]["job_id"] == "4242" and record["slurm"]["array_task_id"] == "3"
    assert record["host"] and record["timings"]["ended_at"]
    # what the run was made of, the same facts as `sweepkit --version`
    made_of = record["versions"]
    assert made_of["torch"] == torch.__version__ and made_of["cuda"] == torch.version.cuda
    assert made_of["wandb"] and made_of["sweepkit"] and made_of["torchvision"]
    assert made_of["git_revision"] == record["git_revision"]
    assert "Test Accuracy" in proc.stdout and "Validation Accuracy" in proc.stdout
    assert (run_dir / "train.log").read_text().count("epoch ") >= 3
    # a finished run folder is not trained again (a requeued task that already finished)
    again = run_train(["--config", DIGITS, "--run-dir", str(run_dir)])
    assert again.returncode == 0 and "already finished" in again.stdout
    # ... and other settings for it are not silently dropped
    other = run_train(["--config", DIGITS, "--run-dir", str(run_dir), "--learning_rate=0.5"])
    assert other.returncode == 2 and "already finished with other settings (learning_rate:" in (
        other.stderr
    )


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


@pytest.mark.system  # starts processes
@pytest.mark.parametrize(
    "keep, kept",
    [
        (None, ["final.pt"]),  # the default: final weights only
        ("none", None),
        ("all", ["ckpt-e0001-s000000.pt", "ckpt-e0002-s000000.pt"]),
    ],
)
def test_a_finished_run_keeps_what_keep_after_finish_says(tmp_path, keep, kept):
    run_dir = tmp_path / "run"
    sets = [*TINY] + ([f"checkpoint.keep_after_finish={keep}"] if keep else [])
    proc = run_train(
        ["--config", DIGITS, "--run-dir", str(run_dir), *sum((["--set", s] for s in sets), [])]
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    folder = run_dir / "checkpoints"
    assert (sorted(p.name for p in folder.iterdir()) if folder.exists() else None) == kept
    if keep is None:
        final = torch.load(folder / "final.pt", map_location="cpu", weights_only=True)
        assert set(final) == {"model", "epoch"} and final["epoch"] == 2  # no optimizer state
        model = torchvision.models.resnet18(num_classes=10)
        model.load_state_dict(final["model"])  # the finished model, loadable as it is
        # the digits demo's ResNet-18: 11.2 M parameters, 45 MB of fp32 weights; Adam's state
        # would triple a checkpoint, and two were kept (about 270 MB a run)
        assert _folder_bytes(run_dir) < 60 * 2**20
    assert read_run_json(run_dir)["state"] == "finished"


@pytest.mark.system  # starts processes
def test_resume_mid_epoch_ends_with_identical_metrics(tmp_path):
    _, straight = train_in_process(tmp_path / "straight", TINY)
    state, _ = train_in_process(tmp_path / "interrupted", TINY, StopAfter(checks=8))
    assert state == "preempted"
    ckpt = load_latest_checkpoint(tmp_path / "interrupted")
    assert ckpt is not None and (ckpt["epoch"], ckpt["step"]) == (0, 8)  # mid-epoch position
    state, resumed = train_in_process(tmp_path / "interrupted", TINY)
    assert state == "finished" and resumed["resumed_from"] == {"epoch": 0, "step": 8}
    keys = ("Train Loss", "Validation Loss", "Validation Accuracy")
    assert [[e[k] for k in keys] for e in resumed["epochs"]] == [
        [e[k] for k in keys] for e in straight["epochs"]
    ]
    assert resumed["summary"]["Test Accuracy"] == straight["summary"]["Test Accuracy"]


@pytest.mark.system  # starts processes
def test_corrupt_newest_checkpoint_falls_back_to_previous(tmp_path, caplog):
    train_in_process(tmp_path / "run", [*TINY, "checkpoint.keep=3"])
    ckpts = sorted((tmp_path / "run" / "checkpoints").glob("ckpt-*.pt"))
    assert [p.name for p in ckpts] == ["ckpt-e0001-s000000.pt", "ckpt-e0002-s000000.pt"]
    ckpts[-1].write_bytes(ckpts[-1].read_bytes()[:1000])  # torn write
    state = load_latest_checkpoint(tmp_path / "run")
    assert state is not None and state["epoch"] == 1
    assert "ckpt-e0002-s000000.pt is unreadable" in caplog.text


@pytest.mark.system  # starts processes
def test_sigterm_mid_epoch_preempts_then_resumes_to_completion(tmp_path):
    run_dir = tmp_path / "run"
    args = [
        "--config",
        DIGITS,
        "--run-dir",
        str(run_dir),
        *sum((["--set", s] for s in TINY), []),
        "--set",
        "num_epochs=3",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweepkit.train", *args],
        cwd=ROOT,
        env=env_without_wandb(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log = run_dir / "train.log"
    deadline = time.time() + 300
    # "training ..." is logged just before the first step: the signal lands inside epoch 1
    while time.time() < deadline and not (log.exists() and "training resnet18" in log.read_text()):
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_PREEMPTED, out
    record = read_run_json(run_dir)
    assert (
        record is not None
        and record["state"] == "preempted"
        and record["exit_code"] == EXIT_PREEMPTED
    )
    assert "SIGTERM received: checkpointed at epoch 0 step" in out and record["epochs"] == []
    # other settings would be mixed into the checkpointed run: refused before the folder changes
    mixed = run_train([*args, "--set", "batch_size=64"])
    assert mixed.returncode == 2 and mixed.stderr.count("\n") == 1, mixed.stderr
    assert "holds checkpoints of run run trained with other settings (batch_size: 32 -> 64)" in (
        mixed.stderr
    )
    assert read_run_json(run_dir) == record
    resumed = run_train([*args, "--set", "num_workers=0"])  # how it runs may change
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    record = read_run_json(run_dir)
    assert record is not None and record["state"] == "finished" and record["attempt"] == 2
    assert record["resumed_from"]["epoch"] == 0 and record["resumed_from"]["step"] >= 1
    assert [e["epoch"] for e in record["epochs"]] == [1, 2, 3]


@pytest.mark.system  # starts processes
def test_swept_value_from_wandb_offline_sweep_is_what_trains(tmp_path):
    """The usual single-file W&B training script's first defect (the public example, ORIGINAL.md):
    under an agent, wandb.config's swept value must be the one used."""
    run_dir = tmp_path / "run"
    params = tmp_path / "config-run1.yaml"
    params.write_text(yaml.safe_dump({"learning_rate": {"value": 0.0123}, "seed": {"value": 3}}))
    env = env_without_wandb(
        WANDB_MODE="offline",
        WANDB_SWEEP_ID="sw1",
        WANDB_RUN_ID="run1",
        WANDB_SWEEP_PARAM_PATH=str(params),
        WANDB_DIR=str(run_dir),
    )
    proc = run_train(
        [
            "--config",
            DIGITS,
            "--run-dir",
            str(run_dir),
            *sum((["--set", s] for s in TINY[:4]), []),
            "--set",
            "num_epochs=1",
        ],
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = read_run_json(run_dir)
    assert record is not None
    assert record["config"]["learning_rate"] == 0.0123 and record["config"]["seed"] == 3
    assert record["sweep_id"] == "sw1" and record["run_id"] == "run1"
    offline = list((run_dir / "wandb").glob("offline-run-*-run1"))
    assert len(offline) == 1 and list(offline[0].glob("*.wandb")), (
        "offline run ready for wandb sync"
    )


@pytest.mark.system  # starts processes
def test_cifar10_archive_trains_and_missing_data_is_one_line(tmp_path):
    fake = make_cifar(tmp_path / "data")
    sets = [
        "--set",
        "dataset=cifar10",
        "--set",
        f"data_path={fake.root}",
        "--set",
        "model_name=resnet18",
        "--set",
        "num_epochs=1",
        "--set",
        "batch_size=16",
        "--set",
        "wandb.mode=disabled",
    ]
    ok = run_train(
        ["--config", DIGITS, "--run-dir", str(tmp_path / "run"), *sets],
        env=env_without_wandb(SWEEPKIT_CIFAR_MD5_FILE=str(fake.md5_file)),
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Test Accuracy" in ok.stdout
    missing = run_train(
        [
            "--config",
            DIGITS,
            "--run-dir",
            str(tmp_path / "run2"),
            *sets,
            "--set",
            f"data_path={tmp_path / 'nowhere'}",
        ]
    )
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert (
        "sweepkit data cifar10 --root" in missing.stderr
        and len(missing.stderr.strip().splitlines()) == 1
    )
    assert (
        read_run_json(tmp_path / "run2")["state"] == "failed"
    )  # a complete record, not a torn one


@pytest.mark.system  # starts processes
def test_pretrained_without_staged_weights_names_the_staging_command(tmp_path):
    proc = run_train(
        ["--config", DIGITS, "--run-dir", str(tmp_path / "run"), "--set", "pretrained=true"],
        env=env_without_wandb(TORCH_HOME=str(tmp_path / "torch")),
    )
    assert proc.returncode == 2
    assert "sweepkit data weights resnet18" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.system  # starts processes
def test_compile_failure_falls_back_to_eager_with_one_warning(tmp_path, monkeypatch, caplog):
    def broken_compile(model, **kwargs):
        def fail(*args, **kw):
            raise RuntimeError(
                "stride assertion in convolution_backward (simulated compiler failure)"
            )

        return fail

    monkeypatch.setattr(torch, "compile", broken_compile)
    state, record = train_in_process(tmp_path / "run", [*TINY, "compile=true", "num_epochs=1"])
    assert state == "finished" and record["epochs"]
    assert caplog.text.count("torch.compile failed") == 1


@pytest.mark.system  # starts processes
def test_smoke_runs_one_train_and_eval_step():
    proc = subprocess.run(
        [sys.executable, "-m", "sweepkit.jobs.cli", "smoke"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env_without_wandb(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        "device=cpu" in proc.stdout
        and "images_per_s=" in proc.stdout
        and "smoke: ok" in proc.stdout
    )
