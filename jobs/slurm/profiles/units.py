"""SLURM's own value formats: time limits (``--time``) and memory sizes (``--mem``)."""

from __future__ import annotations

import re

# SLURM time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")
# A size with its unit; sbatch reads a bare number as megabytes, which profiles refuse.
MEMORY = re.compile(r"^[0-9]+[KMGT]$")


def parse_time_s(value: str) -> int | None:
    """Seconds in a SLURM ``--time`` value, or None when the format is not one SLURM accepts."""
    match = _TIME.match(value)
    if not match:
        return None
    days, a, b, c = match.groups()
    parts = [int(p) for p in (a, b, c) if p is not None]
    if days is not None:  # D-H, D-H:M, D-H:M:S
        hours, minutes, seconds = (parts + [0, 0])[:3]
        return ((int(days) * 24 + hours) * 60 + minutes) * 60 + seconds
    if len(parts) == 1:  # M
        return parts[0] * 60
    if len(parts) == 2:  # M:S
        return parts[0] * 60 + parts[1]
    return (parts[0] * 60 + parts[1]) * 60 + parts[2]  # H:M:S
