"""How a run ended, from its own records, when the store has no (readable) end record for it.

The agent's end record can be missing: the disk filled before the agent wrote it, the node died
mid-write and left the journal's last line torn, or the agent was killed after its program ended.
Once the run's lease is gone (no agent is looking after it any more), the run's own records say
how it ended: the trainer's run.json (state and exit code), else the exit record that wandb
writes into the run's W&B log when the program ends. A run whose records say it finished is
recorded as finished and never run again; ``crashed`` is kept for runs whose records say they did
not end (run.json still ``running``, no W&B exit record), which are handed out again.

Pure: the facts are read by the caller (jobs/sweeps/store/reader.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sweepkit.train.errors import EXIT_PREEMPTED

# run.json states that say the program ended, as the agent would have recorded them
_ENDED = {
    "finished": "finished",
    "failed": "failed",
    "preempted": "preempted",
    "stopped": "stopped",
}


@dataclass(frozen=True)
class Reconciled:
    state: str  # finished | failed | preempted | stopped
    exit_code: int | None
    source: str  # which record said so: run.json or the W&B exit record
    error: str | None = None


def reconcile(run_json: dict[str, Any], wandb_exit_code: int | None) -> Reconciled | None:
    """The end state the run's own records give, or None when they do not say it ended."""
    state = _ENDED.get(str(run_json.get("state")))
    if state is not None:
        code = run_json.get("exit_code")
        error = run_json.get("error") if state == "failed" else None
        return Reconciled(state, code if isinstance(code, int) else None, "run.json", error)
    if wandb_exit_code is None:
        return None
    if wandb_exit_code == 0:
        return Reconciled("finished", 0, "its W&B exit record")
    if wandb_exit_code == EXIT_PREEMPTED:
        return Reconciled("preempted", wandb_exit_code, "its W&B exit record")
    return Reconciled(
        "failed", wandb_exit_code, "its W&B exit record", f"exit code {wandb_exit_code}"
    )


def warning(run_id: str, outcome: Reconciled) -> str:
    return (
        f"sweepkit: warning: run {run_id} has no end record in the journal (its agent is gone: "
        f"killed, or its write failed on a full or torn disk); {outcome.source} says "
        f"{outcome.state} (exit {outcome.exit_code}), so it counts as {outcome.state}"
    )
