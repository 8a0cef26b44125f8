"""What a failed run's output says, as status shows it: text without terminal colours, and the
cause named when it is one a user can act on without reading a traceback.

wandb colours its console lines (``\\x1b[1;34mwandb\\x1b[0m: Find logs at: ...``), and its last
line is where the logs are, so a failed run's last output line read as escape codes. A program
started with ``WANDB_MODE=online`` on a compute node without network ends (after wandb's
``init_timeout``, 90 s) with ``wandb.errors.errors.CommError: Timed out while retrying: Post
"https://HOST/graphql": dial tcp ...: connection refused`` (or ``no such host``, or ``Failed to
get resume status ...: context deadline exceeded`` with the Post on the next line): that is named.
"""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
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


def plain(text: str) -> str:
    """``text`` without terminal colour and cursor codes."""
    return _ANSI.sub("", text)


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
    text = plain(output_tail).rstrip()
    reason = wandb_unreachable(text)
    return f"{text}\n{reason}" if reason else text
