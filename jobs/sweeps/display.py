"""Any value as a line of text shows it: on one line, of bounded length.

What a sweep shows comes from its users and their programs: a parameter's value, a host name, a
metric's name, an error. ``status``'s table, its best line, the agent's lines and the report's
page and summary show such values through ``shown``, so that a newline in a value cannot break a
row in two, an escape sequence cannot move the terminal's cursor, and a 20,000-character value
cannot make a 20,000-character row. ``status --json`` and the report's CSV keep every value whole.
"""

from __future__ import annotations

from typing import Any

CELL_CHARS = 40  # a table cell or a value on a line: long enough for any number, path tail or id
LINE_CHARS = 200  # a whole message in a line of its own (a run's error)
ELLIPSIS = "..."  # ASCII: a terminal or log of any encoding shows it


def escaped(text: str) -> str:
    """``text`` with every character that does not print (newline, tab, ESC, other control and
    format characters, line separators) written as Python writes it in a string's repr (``\\n``,
    ``\\x1b``, ``\\u2028``); printable text, any script's, stays as it is."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


def cut(text: str, limit: int = CELL_CHARS) -> str:
    """``text``, or its first characters and an ellipsis when it is longer than ``limit``."""
    return text if len(text) <= limit else text[: max(0, limit - len(ELLIPSIS))] + ELLIPSIS


def shown(value: Any, limit: int = CELL_CHARS) -> str:
    """``value`` (a string, or any value as ``str`` writes it) escaped and cut to ``limit``."""
    return cut(escaped(value if isinstance(value, str) else str(value)), limit)


PARAM_PREFIX = "param:"


def param_label(name: str, taken: tuple[str, ...]) -> str:
    """A parameter's name where it sits beside other named values (a table's columns, the best
    run's line): its own, or ``param:NAME`` where that is one of the ``taken`` names (a swept
    ``acc`` beside the metric ``acc``), or could be read as such a label."""
    return PARAM_PREFIX + name if name in taken or name.startswith(PARAM_PREFIX) else name
