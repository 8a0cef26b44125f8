"""A failed run's reason in one line, from the tail of its output.

The last line a failed program printed is seldom its error: wandb prints its trailer after it
(``wandb: ...``, in ANSI colour when the output looks like a terminal), Hydra ends with ``Set the
environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.``, and the agent's own header
opens each attempt. The reason is the exception line of the last Python traceback (the first
unindented line after ``Traceback (most recent call last):``, where Python prints
``ValueError: ...``); without a traceback, the last line that is none of those trailers.

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
