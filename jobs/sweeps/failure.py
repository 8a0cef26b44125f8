"""A failed run's reason in one line, from the tail of its output.

The last line a failed program printed is seldom its error: wandb prints its trailer after it
(``wandb: ...``, in ANSI colour when the output looks like a terminal), Hydra ends with ``Set the
environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.``, and the agent's own header
opens each attempt. The reason is the exception line of the last Python traceback (the first
unindented line after ``Traceback (most recent call last):``, where Python prints
``ValueError: ...``); without a traceback, the last line that is none of those trailers.
"""

from __future__ import annotations

import re

# CSI sequences (colours, cursor moves) and OSC sequences (titles, links)
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_TRAILERS = (
    re.compile(r"^wandb:"),  # wandb's run summary, sync hints, warnings
    re.compile(r"^Set the environment variable HYDRA_FULL_ERROR=1"),
    re.compile(r"^=== sweepkit agent "),  # the agent's header of an attempt
    re.compile(r"^\$ "),  # the agent's echo of the command line
)
_TRACEBACK = "Traceback (most recent call last):"


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _is_trailer(line: str) -> bool:
    return any(t.match(line) for t in _TRAILERS)


def error_line(output: str) -> str:
    """The one line that says why the run failed ("" for no output)."""
    lines = [strip_ansi(line).rstrip() for line in output.splitlines()]
    lines = [line for line in lines if line.strip()]
    starts = [i for i, line in enumerate(lines) if line.strip() == _TRACEBACK]
    if starts:
        for line in lines[starts[-1] + 1 :]:
            if not line[:1].isspace() and not _is_trailer(line):
                return line.strip()
    for line in reversed(lines):
        if not _is_trailer(line.strip()):
            return line.strip()
    return ""
