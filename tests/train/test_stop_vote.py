"""The per-step stop vote of a data-parallel run, on two real gloo ranks (torch.multiprocessing).

A stop noted on one rank before step k is cast before step k and read before step k + 1, on
every rank alike: the ranks stop after the same step, one step after the signal. The trainer's
SIGTERM test (test_distributed.py) covers the same through torchrun and a real signal; this one
pins the step exactly, for each rank that may receive the signal.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sweepkit.train.distributed import StopVote, World

pytestmark = pytest.mark.system  # starts processes

STEPS = 8


def rank_main(rank: int, port: int, signalled_rank: int, signal_at: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    world = World(rank=rank, size=2)
    vote = StopVote(world)
    votes = []
    for step in range(STEPS):
        requested = rank == signalled_rank and step >= signal_at
        votes.append(vote.vote(requested))
        if votes[-1]:
            break
    # an epoch that ends with a vote open: settled, then the blocking check agrees at once
    tail = vote.settle()
    after_epoch = world.agree_stop(rank == signalled_rank, torch.device("cpu"))
    Path(out, f"rank{rank}.json").write_text(json.dumps([votes, tail, after_epoch]))
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("signalled_rank", [0, 1])
def test_every_rank_stops_at_the_same_step_one_after_the_signal(tmp_path, signalled_rank):
    signal_at = 3
    mp.start_processes(
        rank_main,
        args=(free_port(), signalled_rank, signal_at, str(tmp_path)),
        nprocs=2,
        start_method="spawn",
    )
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert results[0] == results[1]  # the same votes, step by step, on both ranks
    votes, tail, after_epoch = results[0]
    assert votes == [False] * (signal_at + 1) + [True]  # stop before step 4: steps 0-3 ran
    assert tail is False and after_epoch is True


def test_a_world_of_one_stops_before_the_next_step_without_lag():
    vote = StopVote(World())
    assert vote.vote(False) is False and vote.vote(True) is True and vote.settle() is False
