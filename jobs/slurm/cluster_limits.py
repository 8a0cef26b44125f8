"""The cluster's ``MaxArraySize``, read from ``scontrol show config``.

SLURM's meaning: the highest task index an array may have is ``MaxArraySize - 1`` (index 0
counts), so an array ``1-N`` needs ``N <= MaxArraySize - 1``. Where scontrol is not there or
cannot reach the controller (a dry run on a laptop), SLURM's default, 1001, stands in, and the
note says so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

DEFAULT_MAX_ARRAY_SIZE = 1001  # slurm.conf's default (man slurm.conf, MaxArraySize)
_LINE = re.compile(r"^MaxArraySize\s*=\s*(\d+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class ArrayLimit:
    """``max_array_size`` as ``scontrol show config`` says it, and where it came from."""

    max_array_size: int
    source: str  # "scontrol show config", or why SLURM's default stands in

    @property
    def highest_index(self) -> int:
        return self.max_array_size - 1


def parse_max_array_size(config_text: str) -> int | None:
    """``MaxArraySize`` from the text of ``scontrol show config`` (``MaxArraySize  = 1001``)."""
    match = _LINE.search(config_text)
    return int(match.group(1)) if match else None


def read_array_limit() -> ArrayLimit:
    """The cluster's limit from scontrol, else SLURM's default with the reason."""
    scontrol = shutil.which("scontrol")
    if scontrol is None:
        return ArrayLimit(DEFAULT_MAX_ARRAY_SIZE, "SLURM's default: no scontrol here")
    try:
        proc = subprocess.run(
            [scontrol, "show", "config"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return ArrayLimit(DEFAULT_MAX_ARRAY_SIZE, "SLURM's default: scontrol did not answer")
    if proc.returncode != 0:
        return ArrayLimit(
            DEFAULT_MAX_ARRAY_SIZE,
            f"SLURM's default: `scontrol show config` failed (exit {proc.returncode})",
        )
    value = parse_max_array_size(proc.stdout)
    if value is None:
        return ArrayLimit(
            DEFAULT_MAX_ARRAY_SIZE, "SLURM's default: `scontrol show config` gave no MaxArraySize"
        )
    return ArrayLimit(value, "scontrol show config")
