"""Whole sweeps through real processes: many agents sharing one store, every method, a damaged
journal; and, marked slow, the real trainer on digits (the README's demo) with status and sync."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sweep_fixtures import (
    REPO,
    SWEEPKIT,
    create,
    grid,
    start_agent,
    status_json,
    sweepkit,
    write_definition,
    write_program,
)

from sweepkit.jobs.sweeps.wandb_run.records import RunRecords

pytestmark = pytest.mark.system  # starts processes (see tests/conftest.py)


def transaction_log(**run: str) -> bytes:
    """A wandb transaction log holding one run record (one FULL chunk after the header)."""
    import struct
    import zlib

    from wandb.proto import wandb_internal_pb2 as pb

    from sweepkit.jobs.sweeps.wandb_run.log import FULL, HEADER

    data = pb.Record(run=pb.RunRecord(**run)).SerializeToString()
    crc = zlib.crc32(data, zlib.crc32(bytes([FULL])))
    return HEADER + struct.pack("<IHB", crc, len(data), FULL) + data


def run_agents(sweep: str, cwd: Path, n: int, timeout: float = 180) -> list[str]:
    procs = [start_agent(sweep, cwd, cwd / f"agent{i}.log") for i in range(n)]
    codes = [p.wait(timeout=timeout) for p in procs]
    logs = [(cwd / f"agent{i}.log").read_text() for i in range(n)]
    assert codes == [0] * n, "\n".join(logs)
    return logs


def test_sixteen_agents_on_a_24_point_grid(tmp_path: Path) -> None:
    program = write_program(tmp_path)
    definition = grid(
        {"lr": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "batch_size": [32, 64], "opt": ["adam", "sgd"]},
        program,
    )
    sweep = create(tmp_path, write_definition(tmp_path, definition))
    logs = run_agents(sweep, tmp_path, 16)
    status = status_json(sweep, tmp_path)
    runs = status["runs"]
    assert len(runs) == 24 and status["counts"]["finished"] == 24 and status["complete"]
    assert len({json.dumps(r["params"], sort_keys=True) for r in runs}) == 24, "24 distinct configs"
    assert all(r["attempts"] == 1 and len(r["epochs"]) == 3 for r in runs)
    assert sum(log.count("finished (exit 0") for log in logs) == 24, (
        "each run launched exactly once"
    )
    assert any("sweep complete: 24 of 24 runs done" in log for log in logs)
    best = max(runs, key=lambda r: r["metric"])
    assert status["best"] == best["run_id"] and best["params"]["lr"] == 0.6
    table = sweepkit("status", sweep, cwd=tmp_path).stdout
    assert "runs: 24 finished (of 24 planned)" in table and f"best: {best['run_id']}" in table


def test_random_with_run_cap_and_bayes_from_results(tmp_path: Path) -> None:
    program = write_program(tmp_path)
    random_def = {
        **grid({}, program),
        "method": "random",
        "run_cap": 6,
        "parameters": {
            "lr": {"distribution": "log_uniform_values", "min": 0.01, "max": 1.0},
            "epochs": {"value": 2},
        },
    }
    sweep = create(tmp_path, write_definition(tmp_path, random_def, "random.yaml"))
    logs = run_agents(sweep, tmp_path, 3)
    status = status_json(sweep, tmp_path)
    assert (
        len(status["runs"]) == 6
        and status["counts"]["finished"] == 6
        and status["planned_runs"] == 6
    )
    assert len({r["params"]["lr"] for r in status["runs"]}) == 6
    assert all(0.01 <= r["params"]["lr"] <= 1.0 for r in status["runs"])
    assert any("sweep complete: 6 of 6 runs done" in log for log in logs)

    bayes_def = {
        **random_def,
        "method": "bayes",
        "run_cap": 8,
        "parameters": {"lr": {"min": 0.0, "max": 1.0}, "epochs": {"value": 1}},
    }
    sweep = create(tmp_path, write_definition(tmp_path, bayes_def, "bayes.yaml"))
    result = sweepkit("agent", sweep, cwd=tmp_path, timeout=180)
    assert result.returncode == 0 and "sweep complete: 8 of 8 runs done" in result.stdout
    runs = sorted(status_json(sweep, tmp_path)["runs"], key=lambda r: r["started_at"])
    # metric = 100 * lr: once results are in, the GP pushes proposals to the top of the range
    assert max(r["params"]["lr"] for r in runs[-3:]) > 0.9, [r["params"]["lr"] for r in runs]


def test_garbage_in_the_journal_mid_sweep(tmp_path: Path) -> None:
    program = write_program(tmp_path)
    sweep = create(
        tmp_path, write_definition(tmp_path, grid({"lr": [0.1, 0.2, 0.3, 0.4]}, program))
    )
    assert sweepkit("agent", "--count", "2", sweep, cwd=tmp_path).returncode == 0
    with open(tmp_path / sweep / "journal.jsonl", "ab") as f:
        f.write(b'\x00\xffnot json at all\n{"t": "claim"}\npartial line, writer kil')
    result = sweepkit("agent", sweep, cwd=tmp_path)
    assert (
        result.returncode == 0 and "sweep complete: 4 of 4 runs done (4 finished)" in result.stdout
    )
    assert "skipped 2 unreadable record(s)" in result.stderr
    status = sweepkit("status", sweep, "--json", cwd=tmp_path)
    assert (
        json.loads(status.stdout)["counts"]["finished"] == 4
        and "unreadable record" in status.stderr
    )


@pytest.mark.slow
def test_digits_grid_end_to_end_with_status_and_sync(tmp_path: Path) -> None:
    """The README demo: a 4-run digits grid through the real trainer, then status and sync --dry-run."""
    work = _project_copy(tmp_path)
    env = {"WANDB_SILENT": "true"}
    created = sweepkit("sweep", "create", "config/sweeps/digits_grid.yaml", cwd=work, env=env)
    assert created.returncode == 0, created.stderr
    sweep = created.stdout.strip()
    assert sweep.startswith("sweeps/") and "next: sweepkit agent" in created.stderr
    logs = run_agents(
        sweep, work, 2, timeout=900
    )  # two agents share the sweep, as two array tasks would
    assert any("sweep complete: 4 of 4 runs done (4 finished)" in log for log in logs), logs
    assert all("starting run" in log for log in logs), "both agents trained"
    status = status_json(sweep, work)
    assert status["counts"]["finished"] == 4 and status["complete"] and status["best"]
    for run in status["runs"]:
        info = json.loads((work / run["run_dir"] / "run.json").read_text())
        assert (
            info["state"] == "finished"
            and info["sweep_id"] == Path(sweep).name
            and info["run_id"] == run["run_id"]
        )
        assert info["config"]["learning_rate"] == run["params"]["learning_rate"], (
            "the swept value is what trained"
        )
        assert (
            info["config"]["batch_size"] == run["params"]["batch_size"] and len(info["epochs"]) == 2
        )
        assert run["metric"] == info["summary"]["Validation Accuracy"]
        # a finished run keeps its final weights only: at most 60 MB, not 270 MB of checkpoints
        folder = work / run["run_dir"]
        assert [p.name for p in (folder / "checkpoints").iterdir()] == ["final.pt"]
        assert sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) <= 60 * 2**20
        # the trainer's run.json and its W&B records (what the sweep ranks by) agree
        records = RunRecords(work / run["run_dir"])
        records.refresh()
        assert run["metric_source"] == "wandb" and records.exit_code == 0
        logged = records.history("Validation Accuracy")
        assert logged == [(e["epoch"], e["Validation Accuracy"]) for e in info["epochs"]]
        assert records.summary_value("Validation Accuracy") == run["metric"]
        assert records.config["learning_rate"] == info["config"]["learning_rate"]
        assert len(run["epochs"]) == len(info["epochs"]) == 2
    table = sweepkit("status", sweep, cwd=work)
    assert (
        table.returncode == 0
        and "runs: 4 finished (of 4 planned)" in table.stdout
        and "best:" in table.stdout
    )
    plan = sweepkit(
        "sync", sweep, "--project", "sweepkit-demo", "--entity", "my-team", "--dry-run", cwd=work
    )
    assert plan.returncode == 0, plan.stderr
    assert "4 run(s) to upload" in plan.stdout and "dry run: nothing uploaded" in plan.stdout
    # runs of a local sweep do not name its id as their W&B sweep (W&B's server would refuse them)
    assert "warning" not in plan.stderr, plan.stderr
    commands = [line.split() for line in plan.stdout.splitlines() if " sync --project " in line]
    assert len(commands) == 4
    for command in commands:
        assert command[1:6] == ["sync", "--project", "sweepkit-demo", "--entity", "my-team"]
        assert all("/wandb/offline-run-" in path and (work / path).is_dir() for path in command[6:])
    assert not (work / sweep / "synced.json").exists(), "a dry run records nothing"


@pytest.mark.slow
def test_hyperband_stops_the_weak_run_of_a_real_digits_sweep(tmp_path: Path) -> None:
    work = _project_copy(tmp_path)
    definition = yaml.safe_load((REPO / "config" / "sweeps" / "digits_grid.yaml").read_text())
    definition["early_terminate"] = {"type": "hyperband", "min_iter": 1, "eta": 2}
    # two learning rates that learn and one that cannot; the weak one comes last in grid order
    definition["parameters"] = {
        "learning_rate": {"values": [0.003, 0.002, 1.0e-7]},
        "num_epochs": {"value": 2},
    }
    path = work / "hb.yaml"
    path.write_text(yaml.safe_dump(definition))
    sweep = create(work, path)
    # two agents: the good runs train side by side, the weak one starts when one of them is done,
    # and after its first epoch it is the worst of three at hyperband's first band
    procs = [
        start_agent(sweep, work, work / f"hb{i}.log", env={"WANDB_MODE": "disabled"})
        for i in range(2)
    ]
    assert [p.wait(timeout=900) for p in procs] == [0, 0]
    logs = "".join((work / f"hb{i}.log").read_text() for i in range(2))
    runs = {r["params"]["learning_rate"]: r for r in status_json(sweep, work)["runs"]}
    weak = runs[1.0e-7]
    assert weak["state"] == "stopped" and len(weak["epochs"]) == 1, (weak, logs[-3000:])
    assert "hyperband stops run" in logs
    assert all(
        runs[lr]["state"] == "finished" and len(runs[lr]["epochs"]) == 2 for lr in (0.003, 0.002)
    )
    info = json.loads((work / weak["run_dir"] / "run.json").read_text())
    assert info["state"] == "preempted" and info["exit_code"] == 75, (
        "the trainer checkpointed on SIGTERM"
    )


def _project_copy(tmp_path: Path) -> Path:
    """The trainer runs from the project root (config/, train/); sweeps go under the copy."""
    work = tmp_path / "project"
    work.mkdir()
    for name in ("config", "train"):
        os.symlink(REPO / name, work / name)
    return work


def test_readme_sweeps_section_commands_are_the_tested_ones() -> None:
    """docs/sweeps.md (section "Offline, with no W&B server" and the others) and docs/sync.md
    (section "What `sweepkit sync` does"): each command is one these tests run."""
    from docs_blocks import blocks

    shown = blocks("docs/sweeps.md", lang="bash") + blocks("docs/sync.md", lang="bash")
    commands = [line.strip() for b in shown for line in b.body.splitlines() if line.strip()]
    assert commands, "docs/sweeps.md shows commands"
    tested = {
        "SWEEP=$(sweepkit sweep create config/sweeps/digits_grid.yaml)",
        "sweepkit agent $SWEEP",
        "sweepkit status $SWEEP",
        "sweepkit sync $SWEEP --project sweepkit-demo --entity my-team --dry-run",
        "sweepkit sync $SWEEP --project sweepkit-demo --entity my-team",
        "sweepkit sweep create config/sweep_config.yaml --backend wandb --project sweepkit",
        "sweepkit agent my-team/sweepkit/ab12cd34",
        "sweepkit status $SWEEP --watch",
        "sweepkit status $SWEEP --json",
        "sweepkit agent --count 1 $SWEEP",
    }
    for command in commands:
        assert command in tested, f"README command not exercised by a test: {command}"


def test_status_watch_returns_when_the_sweep_is_complete(tmp_path: Path) -> None:
    program = write_program(tmp_path)
    sweep = create(tmp_path, write_definition(tmp_path, grid({"lr": [0.1, 0.2]}, program)))
    watcher = subprocess.Popen(
        [*SWEEPKIT, "status", sweep, "--watch", "0.2"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sweepkit("agent", "--count", "1", sweep, cwd=tmp_path).returncode == 0
    assert watcher.poll() is None, "still watching: one run is left"
    assert sweepkit("agent", sweep, cwd=tmp_path).returncode == 0
    out, _ = watcher.communicate(timeout=30)
    assert watcher.returncode == 0 and out.rstrip().endswith("complete") and "in progress" in out


def test_create_wandb_backend_prints_the_reference(tmp_path: Path) -> None:
    """W&B's cloud is out of reach: wandb.sweep is replaced in a child process (the only mock)."""
    code = (
        "import sys, wandb; wandb.sweep = lambda sweep, entity, project: 'ab12cd34'\n"
        "from sweepkit.jobs.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    argv = [
        sys.executable,
        "-c",
        code,
        "sweep",
        "create",
        "config/sweep_config.yaml",
        "--backend",
        "wandb",
        "--project",
        "sweepkit",
        "--entity",
        "my-team",
    ]
    result = subprocess.run(
        argv, cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "my-team/sweepkit/ab12cd34"


def test_sync_plans_ended_runs_once_and_remembers(tmp_path: Path) -> None:
    """What sync would upload, and that a recorded upload is not planned again (the upload itself
    needs W&B's cloud; recording is called as sync does after `wandb sync` succeeds)."""
    from sweepkit.jobs.sweeps import store, sync

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


FAKE_WANDB = r"""#!/bin/sh
# Stands in for `wandb sync` (W&B's cloud cannot be reached from the tests): records its arguments
# and a copy of each folder it was given, as it is at upload time.
printf '%s\n' "$@" >> "$CAPTURE/argv"
for arg in "$@"; do
  case "$arg" in */offline-run-*) cp -r "$arg" "$CAPTURE/" ;; esac
done
"""


def test_sync_uploads_a_plain_scripts_runs_from_copies_without_the_local_sweep_id(
    tmp_path: Path,
) -> None:
    """A plain W&B script under the agent records the local sweep id (WANDB_SWEEP_ID) in its
    offline runs; sync hands `wandb sync` rewritten copies (read here with wandb's own reader: no
    sweep id, the tag sweep:<id>, the same history), records the original folders as synced and
    leaves them untouched. The upload itself is faked: W&B's cloud cannot be reached, so
    `wandb sync` is replaced by a script that keeps what it was given, and the login by a key of
    the right format."""
    import hashlib

    from wandb_program import write_wandb_program

    from sweepkit.jobs.sweeps.wandb_run.records import segment_folders

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


def test_sync_without_a_wandb_login_is_one_line_and_uploads_nothing(tmp_path: Path) -> None:
    """No credentials: one line before any `wandb sync`. Every W&B credential source is isolated
    (empty HOME and wandb config folder, no WANDB_* or NETRC) so a real key cannot be picked up;
    the positive checks stop before an upload, which would need W&B's cloud."""
    from sweepkit.jobs.sweeps import store

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
