"""A SLURM of two separate nodes (tests/slurm/nodes-up.sh), and helpers to act on one node.

Each node is a slurmd in its own network and UTS namespace: its own address on a test subnet and
its own host name (sknode1, sknode2), so what differs between hosts is real here: the rendezvous
address the first node publishes, traffic over an interface, signals to another node, leases
held on another host, a node lost. The cluster has its own munged, ports and state, apart from
the one-node SLURM (slurm_fixture.py): both may be up in one session.

``slurm_nodes`` starts it once per session and always removes it at the end (namespaces, bridge,
daemons; tests/slurm/nodes-down.sh), also after a failed test; before each test it brings back a
node an earlier test left down and cancels jobs left behind. Needs root and iproute2; a machine
where the nodes cannot start skips these tests with the reason.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from slurm_fixture import REPO, Slurm, bring_up

UP = REPO / "tests" / "slurm" / "nodes-up.sh"
DOWN = REPO / "tests" / "slurm" / "nodes-down.sh"
STATE = Path(os.environ.get("SWEEPKIT_NODES_DIR", "/tmp/sweepkit-slurm-nodes"))
NAMES = ("sknode1", "sknode2")


@dataclass(frozen=True)
class Nodes(Slurm):
    names: tuple[str, ...] = NAMES

    def slurmd_pid(self, node: str) -> int:
        return int((STATE / "nodes" / node / "slurmd.pid").read_text())

    def on(
        self, node: str, argv: Sequence[str], cwd: Path = REPO, **popen: Any
    ) -> subprocess.Popen[str]:
        """Start ``argv`` on ``node`` in ``cwd``: in its slurmd's network, UTS and mount
        namespaces (entering a mount namespace moves to its root: --wd moves back)."""
        pid = str(self.slurmd_pid(node))
        enter = ["nsenter", "-t", pid, "--net", "--uts", "--mount", f"--wd={cwd}", "--"]
        return subprocess.Popen([*enter, *argv], text=True, **popen)

    def pids(self, node: str) -> list[int]:
        """Every process on ``node`` (in its network namespace)."""
        out = subprocess.run(
            ["ip", "netns", "pids", f"sk-{node[2:]}"], capture_output=True, text=True, check=True
        ).stdout
        return [int(p) for p in out.split()]

    def lose(self, node: str) -> None:
        """The node dies: SIGKILL to everything on it, slurmd, job steps and their programs."""
        for pid in self.pids(node):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def states(self) -> dict[str, str]:
        """Each node's state as sinfo shows it (idle, alloc, down*, ...)."""
        out = self.run("sinfo", "-h", "-N", "-o", "%N %t", check=False).stdout
        return dict(line.split() for line in out.splitlines() if line.strip())

    def bring_back(self) -> None:
        """Start the slurmd of any node that is gone, and wait until every node is idle."""
        result = subprocess.run(["bash", str(UP)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr


def _start() -> Nodes:
    if os.geteuid() != 0:
        pytest.skip("the SLURM nodes cannot start: tests/slurm/nodes-up.sh needs root")
    return Nodes(conf=bring_up(UP, "the SLURM nodes"))


@pytest.fixture(scope="session")
def slurm_nodes_session() -> Iterator[Nodes]:
    try:
        yield _start()
    finally:
        subprocess.run(["bash", str(DOWN)], capture_output=True, timeout=120)


@pytest.fixture
def slurm_nodes(slurm_nodes_session: Nodes) -> Iterator[Nodes]:
    nodes = slurm_nodes_session
    if sorted(nodes.states().values()) != ["idle"] * len(nodes.names):
        nodes.bring_back()
    yield nodes
    nodes.run("scancel", "--user=root", check=False)
