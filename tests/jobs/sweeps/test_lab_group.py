"""Lab-shared sweeps with real Unix users: two members of one group run agents for one sweep.

Set-up (root, as CI runs): a group ``sweepkit-lab`` and two users in it, made with groupadd and
useradd if missing and removed after the test (also when it fails); each command runs as one of
them (setpriv) with the umask 002 of a lab's project space, or the common 022. Skipped, with the
reason, where users cannot be made.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sweep_fixtures import REPO, grid, write_program
from wandb_program import write_wandb_program

GROUP = "sweepkit-lab"
MEMBERS = ("sweepkit-la", "sweepkit-lb")


def _ensure_users() -> list[list[str]]:
    """Make the group and the members that are missing; returns the commands that remove what
    was made (users first, then the group), for the fixture to run after the test."""
    if os.geteuid() != 0:
        pytest.skip("needs root to add a group and users (groupadd, useradd)")
    undo: list[list[str]] = []
    if not _group_exists():
        made = subprocess.run(["groupadd", GROUP], capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"cannot run groupadd {GROUP}: {made.stderr.strip()}")
        undo.append(["groupdel", GROUP])
    for user in MEMBERS:
        if _exists(user):
            continue
        argv = ["useradd", "-M", "-N", "-g", GROUP, "-s", "/usr/sbin/nologin", user]
        made = subprocess.run(argv, capture_output=True, text=True)
        if made.returncode != 0:
            _remove(undo)
            pytest.skip(f"cannot run {' '.join(argv)}: {made.stderr.strip()}")
        undo.insert(0, ["userdel", user])
    return undo


def _remove(undo: list[list[str]]) -> None:
    for argv in undo:
        subprocess.run(argv, capture_output=True, check=False)


def _group_exists() -> bool:
    try:
        grp.getgrnam(GROUP)
        return True
    except KeyError:
        return False


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


@pytest.fixture
def interpreter_reachable() -> Iterator[None]:
    """The members run this test's Python. Where it lives below a folder other users cannot
    enter (pyenv under /root, mode 0700), that folder gets search permission (o+x: enter, not
    list) for the test's length, and its mode back after."""
    if os.geteuid() != 0:
        pytest.skip("needs root to add a group and users (groupadd, useradd)")
    changed: list[tuple[Path, int]] = []
    for folder in reversed(Path(os.path.realpath(sys.executable)).parents):
        mode = stat.S_IMODE(folder.stat().st_mode)
        if not mode & stat.S_IXOTH:
            changed.append((folder, mode))
            folder.chmod(mode | stat.S_IXOTH)
    try:
        yield
    finally:
        for folder, mode in reversed(changed):
            folder.chmod(mode)


@pytest.fixture
def lab(interpreter_reachable: None) -> Iterator[Path]:
    """A lab's project space: group-owned, setgid, group-writable; a home for each member. The
    users and group made for it are removed after."""
    undo = _ensure_users()
    base = Path(tempfile.mkdtemp(prefix="sweepkit-lab-", dir="/tmp"))
    try:
        base.chmod(0o755)
        project = base / "project"
        project.mkdir()
        os.chown(project, 0, grp.getgrnam(GROUP).gr_gid)
        project.chmod(0o2775)
        for user in MEMBERS:
            home = base / f"home-{user}"
            home.mkdir()
            os.chown(home, pwd.getpwnam(user).pw_uid, grp.getgrnam(GROUP).gr_gid)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)
        _remove(undo)


def as_member(
    user: str, base: Path, *argv: str, timeout: float = 180, umask: str = "002"
) -> subprocess.CompletedProcess[str]:
    """``sweepkit ARGV`` run as ``user`` (umask 002 unless told), in the lab's project folder."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(base / f"home-{user}"),
        "PYTHONPATH": str(REPO),
        "LANG": "C.UTF-8",
    }
    command = [
        "setpriv", f"--reuid={user}", f"--regid={GROUP}", "--init-groups", "--",
        "sh", "-c", f'umask {umask} && exec "$@"', "sh", sys.executable, "-m", "sweepkit.jobs.cli",
        *argv,
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=base / "project", env=env, capture_output=True, text=True, timeout=timeout
    )


def _spec(base: Path) -> Path:
    program = write_program(base)
    spec = base / "sweep.yaml"
    spec.write_text(yaml.safe_dump(grid({"lr": [0.1, 0.2]}, program)))
    return spec


@pytest.mark.system  # starts processes
def test_two_lab_members_run_agents_for_one_shared_sweep(lab: Path) -> None:
    a, b = MEMBERS
    made = as_member(a, lab, "sweep", "create", str(_spec(lab)), "--group", GROUP)
    assert made.returncode == 0, made.stderr
    sweep = lab / "project" / made.stdout.strip()
    gid = grp.getgrnam(GROUP).gr_gid
    info = sweep.stat()
    assert info.st_gid == gid and info.st_mode & stat.S_ISGID and info.st_mode & stat.S_IWGRP
    assert stat.S_IMODE((sweep / "journal.jsonl").stat().st_mode) == 0o664

    # the second member's agent claims and finishes a run of the first member's sweep
    first = as_member(b, lab, "agent", "--count", "1", str(sweep))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "run" in first.stdout and "finished" in first.stdout
    second = as_member(a, lab, "agent", str(sweep))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "sweep complete: 2 of 2 runs done (2 finished)" in second.stdout

    status = as_member(b, lab, "status", str(sweep), "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["counts"]["finished"] == 2
    owners = {pwd.getpwuid(p.stat().st_uid).pw_name for p in (sweep / "runs").iterdir()}
    assert owners == {a, b}, "each member's agent made one run"
    assert all(p.stat().st_gid == gid for p in (sweep / "runs").iterdir())

    # both members' submissions are recorded in the sweep's slurm/ (the local launcher twin)
    cluster = lab / "cluster.yaml"
    profile = {"partition": "debug", "time": "00:10:00", "concurrency": 1, "runtime": "none"}
    cluster.write_text(yaml.safe_dump({"profiles": {"t": profile}}))
    for member in (a, b):
        submitted = as_member(
            member, lab, "submit", str(sweep), "--profile", "t", "--cluster-config", str(cluster),
            "--launcher", "local", "--array", "1-1",
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    lines = (sweep / "slurm" / "submissions.jsonl").read_text().splitlines()
    assert len(lines) == 2 and (sweep / "slurm").stat().st_gid == gid

    # world-writable stays refused, even for a shared sweep
    sweep.chmod(0o2777)
    refused = as_member(b, lab, "status", str(sweep))
    assert refused.returncode == 2 and "writable by every user" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


@pytest.mark.system  # starts processes
def test_a_group_writable_sweep_that_did_not_opt_in_is_refused(lab: Path) -> None:
    a, b = MEMBERS
    made = as_member(a, lab, "sweep", "create", str(_spec(lab)))
    assert made.returncode == 0, made.stderr
    sweep = lab / "project" / made.stdout.strip()
    assert not sweep.stat().st_mode & stat.S_IWGRP, "not shared: the owner's alone"
    sweep.chmod(0o2775)  # what a lab's umask 002 makes of a folder
    refused = as_member(b, lab, "agent", str(sweep))
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "writable by other users" in refused.stderr and "--group NAME" in refused.stderr
    assert not list((sweep / "runs").iterdir())


@pytest.mark.system  # starts processes
def test_group_option_errors_are_one_line(lab: Path) -> None:
    a, _ = MEMBERS
    for group, words in (("sweepkit-nosuch", "no such group"), ("root", "not a member")):
        result = as_member(a, lab, "sweep", "create", str(_spec(lab)), "--group", group)
        assert result.returncode == 2 and words in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (lab / "project" / "sweeps").exists() or not any(
        (lab / "project" / "sweeps").iterdir()
    )


# the two programs a lab runs, each preempted on its first attempt after an epoch it checkpointed:
# the kit's contract's fast twin (run.json, a checkpoint rewritten in place) and a plain W&B script
# (its offline run, the folders and links wandb makes and replaces in the run folder)
PREEMPTED_ONCE = {
    "fast": (write_program, {"lr": [0.5], "preempt_once": ["1"], "epochs": [3]}),
    "wandb": (write_wandb_program, {"lr": [0.5], "preempt_after": [2], "epochs": [3]}),
}


@pytest.mark.system  # starts processes
@pytest.mark.parametrize("program", sorted(PREEMPTED_ONCE))
def test_a_member_at_umask_022_resumes_another_members_preempted_run(
    lab: Path, program: str
) -> None:
    """Both members keep the common umask 022. The first one's run is preempted (its program
    checkpoints, exits 75); the second one's agent resumes it: the kit's parameter file,
    output.log, the lease, the claim token and what the program wrote are all still writable by
    the group, and the run finishes on its second attempt."""
    a, b = MEMBERS
    write, values = PREEMPTED_ONCE[program]
    spec = lab / "sweep.yaml"
    spec.write_text(yaml.safe_dump(grid(values, write(lab))))
    made = as_member(a, lab, "sweep", "create", str(spec), "--group", GROUP, umask="022")
    assert made.returncode == 0, made.stderr
    sweep = lab / "project" / made.stdout.strip()

    first = as_member(a, lab, "agent", "--count", "1", str(sweep), umask="022")
    assert "preempted" in first.stdout and "queued to resume" in first.stdout, first.stdout
    second = as_member(b, lab, "agent", str(sweep), umask="022")
    said = second.stdout + second.stderr
    assert second.returncode == 0, said
    assert "resuming run" in said and "(attempt 2)" in said and "ermission denied" not in said
    assert "sweep complete: 1 of 1 runs done (1 finished)" in said, said

    (run,) = json.loads(as_member(a, lab, "status", str(sweep), "--json").stdout)["runs"]
    assert run["state"] == "finished" and run["attempts"] == 2, run
    # everything made in the sweep is the group's and group-writable, but its definition, which
    # only sweep create writes (and which launches programs), and the files inside an attempt's
    # own W&B run, which no later attempt writes to and to some of which wandb-core gives its own
    # mode (0644, whatever the umask); their folders are the group's all the same
    gid = grp.getgrnam(GROUP).gr_gid
    made_there = [p for p in sweep.rglob("*") if p.name not in ("sweep.yaml", "sweep.json")]
    # the run's parameter file, written by both members' attempts, kept once the run was done
    assert any(p.name == "sweep-params.yaml" for p in made_there)
    for path in made_there:
        info = path.lstat()
        in_a_wandb_run = any(part.startswith("offline-run-") for part in path.parent.parts)
        if stat.S_ISLNK(info.st_mode) or (in_a_wandb_run and stat.S_ISREG(info.st_mode)):
            continue
        assert info.st_gid == gid, (path, info.st_gid)
        assert info.st_mode & stat.S_IWGRP, (path, stat.filemode(info.st_mode))
    owners = {pwd.getpwuid(p.lstat().st_uid).pw_name for p in made_there}
    assert owners == {a, b}, owners
