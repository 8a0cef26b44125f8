"""What a rendered array script asks of whoever launches it, read as sbatch reads it.

Pure functions of the script's text: its ``#SBATCH`` options, the task ids of an ``--array``
spec, SLURM's ``--output`` filename pattern, the GPU count of a ``--gres`` request and the
``--signal`` option. ``sweepkit submit`` checks an ``--array`` spec with :func:`expand_array`
before anything is recorded; the local twin runs the script by what these functions read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sweepkit.train.errors import UserError

_DIRECTIVE = re.compile(r"^#SBATCH\s+(--[a-z-]+)(?:[= ](\S+))?")
_SIGNAL = re.compile(r"^(?:([RB]+):)?([A-Z0-9]+)(?:@(\d+))?$")
DEFAULT_SIGNAL_LEAD_S = 60  # sbatch's lead time when --signal names none


@dataclass
class Directives:
    """The ``#SBATCH`` options of a script, as sbatch reads them (until the first command)."""

    options: dict[str, str] = field(default_factory=dict)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.options.get(name, default)


def read_directives(text: str) -> Directives:
    options: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            break  # sbatch stops reading directives at the first command
        match = _DIRECTIVE.match(stripped)
        if match:
            options[match.group(1)] = match.group(2) or ""
    return Directives(options)


def expand_array(spec: str) -> tuple[list[int], int | None]:
    """``1-10:2,15%3`` -> ([1, 3, 5, 7, 9, 15], 3): task ids in order, and the %N limit."""
    limit: int | None = None
    if "%" in spec:
        spec, limit_text = spec.split("%", 1)
        limit = int(limit_text)
    ids: list[int] = []
    for part in spec.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part)
        if not match:
            raise UserError(f"array spec part {part!r} is not N, N-M or N-M:S")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        step = int(match.group(3)) if match.group(3) else 1
        if last < first or step < 1:
            raise UserError(f"array spec part {part!r} is empty")
        ids.extend(range(first, last + 1, step))
    return sorted(set(ids)), limit


def most_at_once(arrays: list[str]) -> int:
    """The most tasks of a chain of arrays (each waiting for the one before) that run at once:
    the largest ``%N`` of their specs (each with one)."""
    return max(int(spec.partition("%")[2]) for spec in arrays)


def expand_output(pattern: str, values: dict[str, str]) -> str:
    """SLURM's filename pattern: %x %A %a %j %N %u %% (with optional zero padding, %4a), each
    letter looked up in ``values``; a letter without a value stays as written."""

    def one(match: re.Match[str]) -> str:
        width, key = match.group(1), match.group(2)
        if key == "%":
            return "%"
        value = values.get(key)
        if value is None:
            return match.group(0)
        return value.zfill(int(width)) if width else value

    return re.sub(r"%(\d*)([%xAajNu])", one, pattern)


def gres_gpus(value: str | None) -> int:
    """The GPU count of a ``--gres`` value (``gpu:2``, ``gpu:a100:2``); 0 without one."""
    for item in (value or "").split(","):
        parts = item.split(":")
        if parts[0] == "gpu":
            return int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 1
    return 0


def signal_option(value: str | None, where: str) -> tuple[str | None, int]:
    """``--signal=[B:]SIG[@seconds]`` -> (signal name with SIG, or a number; lead seconds);
    (None, 0) without one."""
    if not value:
        return None, 0
    match = _SIGNAL.match(value)
    if not match:
        raise UserError(f"{where}: --signal={value} is not [B:]SIG[@seconds]")
    name = match.group(2)
    name = name if name.startswith("SIG") or name.isdigit() else f"SIG{name}"
    return name, int(match.group(3) or DEFAULT_SIGNAL_LEAD_S)
