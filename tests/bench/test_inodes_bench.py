"""bench/inodes.py on the README's own-script example: a finished run of a plain W&B script adds
at most 3 inodes of the kit's beside what W&B writes, and leaves no lease file. The run folder is
also looked at directly, apart from the bench's classes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_runs import run_bench


@pytest.mark.system  # starts an agent and the script
def test_a_finished_plain_script_run_adds_at_most_three_kit_inodes(tmp_path: Path) -> None:
    out = tmp_path / "inodes.json"
    run_bench(
        "inodes.py", "--json", str(out), "--no-record", "--keep", "--dir", str(tmp_path / "work")
    )
    found = json.loads(out.read_text())["plain W&B script (config/byo)"]
    assert found["runs"] == 2
    kit = found["per_run"]["kit"]
    assert sum(kit.values()) <= 3, kit
    assert found["lease_files_left"] == 0 and found["claim_tokens_left"] == 0
    assert sum(found["per_run"]["W&B run"].values()) > 0  # W&B's run was counted, as W&B's
    for run_dir in (tmp_path / "work" / "byo" / "sweeps").glob("*/runs/*"):
        # the parameter file is kept (the claim's evidence: store/recovery.py), out of wandb/
        assert sorted(p.name for p in run_dir.iterdir()) == [
            "output.log",
            "sweep-params.yaml",
            "wandb",
        ]
        wandb_dir = sorted(p.name for p in (run_dir / "wandb").iterdir())
        assert not [name for name in wandb_dir if name.startswith("sweep-")], wandb_dir
