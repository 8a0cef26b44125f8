"""A failed run's reason in one line, from the tail of its output.

The last line a failed program printed is seldom its error: wandb prints its trailer after it
(``wandb: ...``, in ANSI colour when the output looks like a terminal), Hydra ends with ``Set the
environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.``, and the agent's own header
opens each attempt. The reason is the exception line of the last Python traceback (the first
unindented line after ``Traceback (most recent call last):``, where Python prints
``ValueError: ...``); without a traceback, the last line that is none of those trailers.

Hydra reports an error without a traceback (``hydra/_internal/utils.py``, ``run_and_report``):
its own message, whose first line says what went wrong (``Could not override 'lr'.``,
``Error locating target 'pkg.Model', set env var HYDRA_FULL_ERROR=1 ...``, an override's parse
error), then OmegaConf's detail lines (``full_key: ...``, ``object_type=dict``), a blank line and
its ``HYDRA_FULL_ERROR`` trailer. The reason is that first line.

One cause is named outright, because its traceback does not say what to do: a program started with
``WANDB_MODE=online`` on a compute node without network ends (after wandb's ``init_timeout``, 90 s)
with ``wandb.errors.errors.CommError: Timed out while retrying: Post "https://HOST/graphql": dial
tcp ...: connection refused`` (or ``no such host``, or ``Failed to get resume status ...: context
deadline exceeded`` with the Post on the next line).
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
_HYDRA_TRAILER = _TRAILERS[1]
_HYDRA_JOB = "Error executing job with overrides:"  # Hydra's line before a task's error
# wandb 0.2x/0.3x, wandb.init online with its server out of reach (checked with a refused port
# and with no DNS): CommError "Timed out while retrying: Post "URL/graphql": dial tcp ..."
# (its message may span lines: "Failed to get resume status ...: context deadline exceeded" then
# "while retrying: Post ...: connection refused")
_UNREACHABLE = re.compile(
    r"Timed out while retrying|dial tcp|connection refused|no such host|network is unreachable"
    r"|Network error|context deadline exceeded",
    re.IGNORECASE,
)
_SERVER = re.compile(r'(?:Post|Get) "(https?://[^/"]+)')


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _is_trailer(line: str) -> bool:
    return any(t.match(line) for t in _TRAILERS)


def error_line(output: str) -> str:
    """The one line that says why the run failed ("" for no output)."""
    reason = wandb_unreachable(strip_ansi(output))
    if reason:
        return reason
    lines = [strip_ansi(line).rstrip() for line in output.splitlines()]
    hydra = hydra_error(lines)
    if hydra:
        return hydra
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


def hydra_error(lines: list[str]) -> str | None:
    """The first line of Hydra's last error message (the block of lines before its
    ``HYDRA_FULL_ERROR`` trailer), or None: no such trailer, or a traceback (the usual rule)."""
    ends = [i for i, line in enumerate(lines) if _HYDRA_TRAILER.match(line.strip())]
    if not ends:
        return None
    block: list[str] = []
    for line in reversed(lines[: ends[-1]]):
        if not line.strip():
            if block:
                break
            continue
        if _is_trailer(line.strip()) or line.startswith(_HYDRA_JOB):
            break
        block.append(line)
    if not block or any(line.strip() == _TRACEBACK for line in block):
        return None
    return block[-1].strip()


def wandb_unreachable(output: str) -> str | None:
    """One line naming the cause when the output shows wandb could not reach its server."""
    at = output.rfind("CommError:")
    if at < 0:
        return None
    message = "\n".join(output[at:].splitlines()[:4])
    if _UNREACHABLE.search(message) is None:
        return None
    server = _SERVER.search(message)
    where = f" ({server.group(1)})" if server else ""
    return (
        f"W&B could not reach its server{where}: WANDB_MODE=online on a node without network; "
        "run offline (unset WANDB_MODE: sweepkit's agent runs programs offline) and upload the "
        "runs later with `sweepkit sync`"
    )


def failure_text(output_tail: str) -> str:
    """The error a failed run records: its output's last lines, plain, ending with the cause
    when it is known (status shows the last line)."""
    text = strip_ansi(output_tail).rstrip()
    reason = wandb_unreachable(text)
    return f"{text}\n{reason}" if reason else text
