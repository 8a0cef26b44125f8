"""``sweepkit sync``: which ended runs it plans once and remembers, what it uploads (copies of a plain
script's runs without the local sweep id, through a stand-in for `wandb sync`), and its one-line
refusal without a W&B login.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from sweep_fixtures import (
    REPO,
    SWEEPKIT,
    create,
    grid,
    status_json,
    sweepkit,
    write_definition,
    write_program,
)
from wandb.proto import wandb_internal_pb2 as pb
from wandb_program import write_wandb_program

from sweepkit.jobs.sweeps import store, sync
from sweepkit.jobs.sweeps.wandb_run.log import FULL, HEADER
from sweepkit.jobs.sweeps.wandb_run.records import segment_folders


def transaction_log(**run: str) -> bytes:
    """A wandb transaction log holding one run record (one FULL chunk after the header)."""

    data = pb.Record(run=pb.RunRecord(**run)).SerializeToString()
    crc = zlib.crc32(data, zlib.crc32(bytes([FULL])))
    return HEADER + struct.pack("<IHB", crc, len(data), FULL) + data


FAKE_WANDB = r"""#!/bin/sh
# Stands in for `wandb sync` (W&B's cloud cannot be reached from the tests): records its arguments
# and a copy of each folder it was given, as it is at upload time.
printf '%s\n' "$@" >> "$CAPTURE/argv"
for arg in "$@"; do
  case "$arg" in */offline-run-*) cp -r "$arg" "$CAPTURE/" ;; esac
done
"""


@pytest.mark.system  # starts processes
def test_sync_plans_ended_runs_once_and_remembers(tmp_path: Path) -> None:
    """What sync would upload, and that a recorded upload is not planned again (the upload itself
    needs W&B's cloud; recording is called as sync does after `wandb sync` succeeds)."""

    program = write_program(tmp_path)
    sweep = create(
        tmp_path,
        write_definition(tmp_path, grid({"lr": [0.1, 0.2, 0.3]}, program)),
        "--project",
        "p1",
        "--entity",
        "e1",
    )
    assert sweepkit("agent", "--count", "2", sweep, cwd=tmp_path).returncode == 0
    local = store.open_sweep(str(tmp_path / sweep))
    runs = local.runs()
    for view in runs:  # offline W&B data as the trainer leaves it: one folder per attempt
        offline = view.run_dir / "wandb" / f"offline-run-20260101_000000-{view.run_id}"
        offline.mkdir(parents=True)
        (offline / f"run-{view.run_id}.wandb").write_bytes(b":W&B\x00")
    # an attempt killed before wandb wrote its log: nothing to upload, and never marked synced
    (runs[1].run_dir / "wandb" / "offline-run-20260101_000009-empty").mkdir()
    running = local.claim(store.AgentIdentity())  # a third run, still running: not uploaded yet
    assert isinstance(running, store.Claim)
    (running.run_dir / "wandb" / "offline-run-20260101_000001-x").mkdir(parents=True)

    result = sweepkit("sync", sweep, "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "-> W&B e1/p1: 2 run(s) to upload, 0 already synced, 1 not ended" in result.stdout
    assert result.stdout.count(" sync --project p1 --entity e1 ") == 2
    assert "000009-empty" not in result.stdout
    assert "warning" not in result.stderr
    # a run whose W&B data names the local sweep id as its W&B sweep, which W&B would refuse:
    # planned from a copy without it (a dry run names the copy and makes none)
    named = f"offline-run-20260101_000000-{runs[0].run_id}"
    (runs[0].run_dir / "wandb" / named / f"run-{runs[0].run_id}.wandb").write_bytes(
        transaction_log(run_id=runs[0].run_id, sweep_id=local.sweep_id)
    )
    copied = sweepkit("sync", sweep, "--dry-run", cwd=tmp_path)
    assert copied.returncode == 0 and copied.stderr == "", copied.stderr
    assert (
        f"1 run(s) name the local sweep id {local.sweep_id} as their W&B sweep" in copied.stdout
        and "they are uploaded from a copy without it" in copied.stdout
    )
    (command,) = [line for line in copied.stdout.splitlines() if named in line]
    assert command.endswith(f"{local.sweep_id}/.sync/{runs[0].run_id}/{named}")
    assert f"# run {runs[0].run_id} (finished, tagged sweep:{local.sweep_id}; from a copy" in (
        copied.stdout
    )
    assert not (tmp_path / sweep / ".sync").exists(), "a dry run makes no copy"
    todo, _ = sync.plan(local, "e1", "p1")
    sync._remember(local, todo[0], "e1", "p1")
    again = sweepkit("sync", sweep, "--dry-run", cwd=tmp_path)
    assert (
        "1 run(s) to upload, 1 already synced" in again.stdout
        and todo[0]["run_id"] not in again.stdout
    )
    recorded = json.loads((tmp_path / sweep / "synced.json").read_text())
    assert (
        recorded[todo[0]["run_id"]]["paths"] == todo[0]["paths"]
        and recorded[todo[0]["run_id"]]["project"] == "p1"
    )
    bare = create(tmp_path, write_definition(tmp_path, grid({"lr": [0.1]}, program), "bare.yaml"))
    no_project = sweepkit("sync", bare, "--dry-run", cwd=tmp_path, env={"WANDB_PROJECT": ""})
    assert no_project.returncode == 2 and "no W&B project: pass --project" in no_project.stderr


@pytest.mark.system  # starts processes
def test_sync_uploads_a_plain_scripts_runs_from_copies_without_the_local_sweep_id(
    tmp_path: Path,
) -> None:
    """A plain W&B script under the agent records the local sweep id (WANDB_SWEEP_ID) in its
    offline runs; sync hands `wandb sync` rewritten copies (read here with wandb's own reader: no
    sweep id, the tag sweep:<id>, the same history), records the original folders as synced and
    leaves them untouched. The upload itself is faked: W&B's cloud cannot be reached, so
    `wandb sync` is replaced by a script that keeps what it was given, and the login by a key of
    the right format."""

    write_wandb_program(tmp_path)
    spec = {
        "program": "wandb_prog.py",
        "method": "grid",
        "metric": {"name": "Validation Accuracy", "goal": "maximize"},
        "parameters": {"lr": {"values": [0.5, 1.0]}, "epochs": {"value": 3}},
    }
    sweep = create(tmp_path, write_definition(tmp_path, spec), "--project", "p1")
    agent = sweepkit("agent", sweep, cwd=tmp_path, timeout=300)
    assert agent.returncode == 0, agent.stdout + agent.stderr
    sweep_id = Path(sweep).name
    runs = status_json(sweep, tmp_path)["runs"]
    originals = {r["run_id"]: segment_folders(tmp_path / r["run_dir"]) for r in runs}
    assert len(runs) == 2 and all(len(f) == 1 for f in originals.values())

    def digests() -> dict[str, str]:
        return {
            str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((tmp_path / sweep / "runs").rglob("*"))
            if p.is_file()
        }

    before = digests()
    plan = sweepkit("sync", sweep, "--dry-run", cwd=tmp_path)
    assert plan.returncode == 0 and plan.stderr == "", plan.stderr
    assert f"2 run(s) name the local sweep id {sweep_id} as their W&B sweep" in plan.stdout
    assert not (tmp_path / sweep / ".sync").exists() and digests() == before
    assert not (tmp_path / sweep / "synced.json").exists()

    capture = tmp_path / "uploaded"
    capture.mkdir()
    fake = tmp_path / "fake-wandb"
    fake.write_text(FAKE_WANDB)
    fake.chmod(0o755)
    with_fake_cli = (
        "import sys; from sweepkit.jobs.sweeps import sync; "
        f"sync._wandb_cli = lambda: {str(fake)!r}; "
        "from sweepkit.jobs.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CAPTURE": str(capture),
        "WANDB_API_KEY": "k" * 40,
    }
    synced = subprocess.run(
        [sys.executable, "-c", with_fake_cli, "sync", sweep],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "synced 2 of 2 run(s)" in synced.stdout
    argv = (capture / "argv").read_text().splitlines()
    given = [a for a in argv if "offline-run-" in a]
    assert sorted(Path(a).name for a in given) == sorted(f[0].name for f in originals.values())
    assert all("/.sync/" in a for a in given), "the copies, not the originals"
    wandb_cli = str(Path(sys.executable).parent / "wandb")
    for run_id, (folder,) in originals.items():
        (log,) = folder.glob("run-*.wandb")
        uploaded = capture / folder.name / log.name

        def records(path: Path) -> list[dict[str, object]]:
            out = subprocess.run(
                [wandb_cli, "leet", "inspect", "--json", str(path)],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert out.returncode == 0, out.stderr
            return [json.loads(line) for line in out.stdout.splitlines()]

        theirs, ours = records(log), records(uploaded)
        (their_run,) = [r["run"] for r in theirs if r["type"] == "run"]
        (our_run,) = [r["run"] for r in ours if r["type"] == "run"]
        assert their_run["sweep_id"] == sweep_id and their_run["run_id"] == run_id
        assert "sweep_id" not in our_run and our_run["tags"] == [f"sweep:{sweep_id}"]
        assert [r for r in ours if r["type"] != "run"] == [r for r in theirs if r["type"] != "run"]
    assert digests() == before, "the originals are untouched"
    assert not (tmp_path / sweep / ".sync").exists(), "the copies are removed after the upload"
    recorded = json.loads((tmp_path / sweep / "synced.json").read_text())
    assert {k: v["paths"] for k, v in recorded.items()} == {
        k: [str(f) for f in v] for k, v in originals.items()
    }
    again = sweepkit("sync", sweep, "--dry-run", cwd=tmp_path)
    assert "0 run(s) to upload, 2 already synced" in again.stdout


@pytest.mark.system  # starts processes
def test_sync_without_a_wandb_login_is_one_line_and_uploads_nothing(tmp_path: Path) -> None:
    """No credentials: one line before any `wandb sync`. Every W&B credential source is isolated
    (empty HOME and wandb config folder, no WANDB_* or NETRC) so a real key cannot be picked up;
    the positive checks stop before an upload, which would need W&B's cloud."""

    program = write_program(tmp_path)
    sweep = create(tmp_path, write_definition(tmp_path, grid({"lr": [0.1]}, program)))
    assert sweepkit("agent", sweep, cwd=tmp_path).returncode == 0
    (view,) = store.open_sweep(str(tmp_path / sweep)).runs()
    offline = view.run_dir / "wandb" / f"offline-run-20260101_000000-{view.run_id}"
    offline.mkdir(parents=True)
    (offline / f"run-{view.run_id}.wandb").write_bytes(b":W&B\x00")  # else wandb syncs nothing
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k != "NETRC"}
    env.update(
        HOME=str(home), WANDB_CONFIG_DIR=str(home / ".config" / "wandb"), PYTHONPATH=str(REPO)
    )

    def sync(extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SWEEPKIT, "sync", sweep, "--project", "x"],
            cwd=tmp_path,
            env={**env, **extra_env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    result = sync({})
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == "", result.stderr
    assert "not logged in to W&B" in result.stderr and "run `wandb login`" in result.stderr
    assert "WANDB_API_KEY" in result.stderr and "nothing synced" in result.stderr
    bad_key = sync({"WANDB_API_KEY": "short"})
    assert bad_key.returncode == 2 and bad_key.stderr.count("\n") == 1, bad_key.stderr
    assert "W&B credentials" in bad_key.stderr and "40+ characters" in bad_key.stderr
    assert not (tmp_path / sweep / "synced.json").exists()
    # A key where wandb finds one passes the check: in ~/.netrc, or in WANDB_API_KEY.
    check = [
        sys.executable,
        "-c",
        "from sweepkit.jobs.sweeps.sync import require_wandb_login as r; r()",
    ]
    netrc = home / ".netrc"
    netrc.write_text(f"machine api.wandb.ai\n  login user\n  password {'a' * 40}\n")
    netrc.chmod(0o600)
    found = subprocess.run(check, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    netrc.unlink()
    keyed = {**env, "WANDB_API_KEY": "b" * 40}
    found = subprocess.run(check, cwd=tmp_path, env=keyed, capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    missing = subprocess.run(check, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert missing.returncode != 0 and "not logged in to W&B" in missing.stderr
