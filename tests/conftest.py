"""Suite-wide settings.

Tests start many trainer and agent processes on a 2-core machine at once; OpenMP threads of
several processes spinning against each other slow each step by an order of magnitude, so every
process the tests start runs single-threaded unless a test says otherwise.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# Test helpers (fixtures, fake programs) import each other by module name.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))

# The session's one-node SLURM, for every test module that asks for the `slurm` fixture.
from slurm_fixture import slurm  # noqa: E402, F401
