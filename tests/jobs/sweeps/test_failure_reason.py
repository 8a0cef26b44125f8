"""The cause status names for a failed run, from wandb's real output (wandb 0.2x/0.3x, captured on
this machine: a refused port, and a server name that does not resolve)."""

from __future__ import annotations

from sweepkit.jobs.sweeps.failure import failure_text, strip_ansi, wandb_unreachable

NO_DNS = (
    "wandb.errors.errors.CommError: Timed out while retrying: Post "
    '"https://api.example.invalid/graphql": dial tcp: lookup api.example.invalid on '
    "10.255.255.53:53: no such host\n"
    "Consider increasing the init_timeout setting:\n"
    "  wandb.init(settings=wandb.Settings(init_timeout=...))\n"
    "\x1b[1;34mwandb\x1b[0m: \n"
    "\x1b[1;34mwandb\x1b[0m: Find logs at: \x1b[1;35mwandb/run-x/logs\x1b[0m\n"
)
REFUSED_ON_RESUME = (
    "wandb.errors.errors.CommError: Failed to get resume status for run r1: context deadline "
    "exceeded\n"
    'while retrying: Post "http://127.0.0.1:9/graphql": dial tcp 127.0.0.1:9: connect: '
    "connection refused\n"
)


def test_wandb_out_of_reach_is_named_with_its_server() -> None:
    assert "(https://api.example.invalid)" in (wandb_unreachable(NO_DNS) or "")
    assert "(http://127.0.0.1:9)" in (wandb_unreachable(REFUSED_ON_RESUME) or "")
    last = failure_text(NO_DNS).splitlines()[-1]
    assert last.startswith("W&B could not reach its server") and "sweepkit sync" in last
    assert "\x1b" not in failure_text(NO_DNS)


def test_other_failures_are_left_as_they_are_without_colour_codes() -> None:
    boom = "Traceback (most recent call last):\nRuntimeError: boom\n"
    assert wandb_unreachable(boom) is None and failure_text(boom) == boom.rstrip()
    assert wandb_unreachable("CommError: permission denied for project") is None
    assert strip_ansi("\x1b[1;34mwandb\x1b[0m: hi") == "wandb: hi"
