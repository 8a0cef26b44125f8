"""Lab-shared sweeps with real Unix users: two members of one group run agents for one sweep.

Set-up (root, as CI runs): a group ``sweepkit-lab`` and two users in it, made with groupadd and
useradd if missing; each command runs as one of them (setpriv) with the umask 002 of a lab's
project space. Skipped, with the reason, where users cannot be made.
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

GROUP = "sweepkit-lab"
MEMBERS = ("sweepkit-la", "sweepkit-lb")


def _ensure_users() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to add a group and users (groupadd, useradd)")
    for argv in (["groupadd", "-f", GROUP],) + tuple(
        ["useradd", "-M", "-N", "-g", GROUP, "-s", "/usr/sbin/nologin", user]
        for user in MEMBERS
        if not _exists(user)
    ):
        made = subprocess.run(argv, capture_output=True, text=True)
        if made.returncode != 0 and "already exists" not in made.stderr:
            pytest.skip(f"cannot run {' '.join(argv)}: {made.stderr.strip()}")


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
    """A lab's project space: group-owned, setgid, group-writable; a home for each member."""
    _ensure_users()
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


def as_member(
    user: str, base: Path, *argv: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``sweepkit ARGV`` run as ``user`` (umask 002), in the lab's project folder."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(base / f"home-{user}"),
        "PYTHONPATH": str(REPO),
        "LANG": "C.UTF-8",
    }
    command = [
        "setpriv", f"--reuid={user}", f"--regid={GROUP}", "--init-groups", "--",
        "sh", "-c", 'umask 002 && exec "$@"', "sh", sys.executable, "-m", "sweepkit.jobs.cli", *argv,
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
