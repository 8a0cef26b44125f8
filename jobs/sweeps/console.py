"""The console scripts (``wandb``, ``sweepkit``) of the Python that runs the kit."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def console_script(name: str) -> str | None:
    """``name`` beside this interpreter (a venv's bin folder, which a job or a subprocess need not
    have activated), else the one on PATH, else None."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    return shutil.which(name)
