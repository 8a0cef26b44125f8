"""Writing a run's end record when the disk refuses it (full, over quota, read-only).

The program has ended and its own records (run.json, its W&B exit record) say how. The agent
retries the journal append while the lease would still hold (space freed meanwhile is used at
once), then gives up with one line: the run is not lost, since once its lease is gone ``status``
and the next agent take how it ended from those records (jobs/sweeps/store/reconcile.py) and never run
it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sweepkit.train.errors import UserError
from sweepkit.train.write_errors import is_write_refusal, refusal_line

RETRY_EVERY_S = 1.0


def record_end_durably(
    finish: Callable[[], bool],
    journal: str,
    run_id: str,
    state: str,
    patience_s: float,
    say: Callable[[str], None],
) -> bool:
    """``finish()`` (the store's end-record append), retried for ``patience_s`` while the
    filesystem refuses the write; its result (False: another agent had ended the attempt)."""
    deadline = time.monotonic() + patience_s
    said = False
    while True:
        try:
            return finish()
        except (OSError, UserError) as err:
            line = refusal_line(err, journal) if isinstance(err, OSError) else str(err)
            if isinstance(err, OSError) and not is_write_refusal(err):
                raise
            if time.monotonic() >= deadline:
                raise UserError(
                    f"run {run_id} {state}, but its end record could not be written: {line}; "
                    "once space is back, `sweepkit status` and the next agent take how it ended "
                    "from the run's own records (run.json, its W&B exit record)"
                ) from None
            if not said:
                say(f"run {run_id} {state}; {line}; retrying for {patience_s:g} s")
                said = True
            time.sleep(RETRY_EVERY_S)


def end_patience_s(lease_s: float) -> float:
    """How long to retry: the lease's length, within 5 s .. 5 min (a full disk rarely frees
    itself; a task holding its node for nothing helps nobody)."""
    return max(5.0, min(300.0, lease_s))
