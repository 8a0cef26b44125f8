"""What the trainer's end-to-end tests (tests/train/test_trainer.py, test_distributed.py) run it
with: the project root, the digits preset, and an environment without W&B, SLURM or sweepkit
settings."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "config" / "presets" / "digits.yaml")


def env_without_wandb(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "SLURM_", "SWEEPKIT_"))
    }
    return {**env, "OMP_NUM_THREADS": "1", **extra}
