"""Reading one value of a profile: its type, its range, and what a shell script can hold.

A profile value ends up in a shell script. An ``#SBATCH`` line cannot be quoted, so a value with
a newline, ``;``, a backtick, ``$`` or white space in a directive is refused (it would break the
header or inject a command); values used in the script body are shell-quoted when rendered, and
only control characters are refused there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sweepkit.jobs.slurm.profiles.schema import CONTROL_CHARS, DIRECTIVE_BAD, KEYS
from sweepkit.train.errors import UserError


class Checker:
    """Reads one profile's mapping; each failure names file, profile and key."""

    def __init__(self, source: Path, name: str, raw: dict[str, Any]) -> None:
        self.source, self.name, self.raw = source, name, raw

    def fail(self, key: str, problem: str, fix: str) -> UserError:
        return UserError(f"{self.source}: profile {self.name!r}, key {key!r}: {problem}; {fix}")

    def text(self, key: str, directive: bool, required: bool = False) -> str | None:
        value = self.raw.get(key)
        if value is None or value == "":
            if required:
                raise self.fail(key, "is missing", f"add `{key}:` ({KEYS[key]})")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(key, f"must be a string, not {type(value).__name__}", "quote it")
        return self.text_value(key, str(value), directive)

    def integer(self, key: str, default: int | None, low: int, high: int | None = None) -> int:
        value = self.raw.get(key, default)
        if value is None:
            raise self.fail(key, "is missing", f"add `{key}:` ({KEYS[key]})")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be a whole number, not {value!r}", f"e.g. `{key}: {low}`")
        if value < low or (high is not None and value > high):
            span = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise self.fail(key, f"is {value}", f"use a number {span}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, not {value!r}", "write true or false")
        return value

    def strings(self, key: str, directive: bool = False) -> tuple[str, ...]:
        value = self.raw.get(key) or []
        if isinstance(value, str) or not isinstance(value, list):
            raise self.fail(key, "must be a list", f"write `{key}: [a, b]`")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str | int | float) or isinstance(item, bool) or item == "":
                raise self.fail(f"{key}[{i}]", f"{item!r} is not a string", "quote it")
            out.append(self.text_value(f"{key}[{i}]", str(item), directive))
        return tuple(out)

    def text_value(self, key: str, value: str, directive: bool) -> str:
        if CONTROL_CHARS.search(value):
            raise self.fail(key, f"{value!r} holds a newline or control character", "remove it")
        bad = DIRECTIVE_BAD.search(value) if directive else None
        if bad:
            raise self.fail(
                key,
                f"{value!r} holds {bad.group()!r}, which would break or inject into its "
                "#SBATCH line",
                "use a plain value (letters, digits, - _ . : / , | & = +)",
            )
        return value

    def expanded(self, key: str, value: str) -> str:
        """``~`` and ``$VAR`` expanded now, on the submitting host (login and compute nodes share
        HOME and site variables such as SCRATCH); the script then holds a plain quoted path."""
        if "$(" in value or "`" in value:
            raise self.fail(key, f"{value!r} holds a command substitution", "write a plain path")
        expanded = os.path.expanduser(os.path.expandvars(value))
        if "$" in expanded:
            raise self.fail(
                key, f"{value!r} uses a variable that is not set here", "set it or spell it out"
            )
        return expanded

    def path(self, key: str, value: str | None) -> Path | None:
        return Path(self.expanded(key, value)) if value else None
