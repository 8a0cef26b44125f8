"""The words every part of a sweep shares: the states a run can be in, and which of them count.

One place, so that the store, ``status``, the report and sync cannot drift apart on what
"done" or "scored" means.
"""

from __future__ import annotations

# The trainer's metric names, defined by the program that logs them.
from sweepkit.train.metric_names import EPOCH_METRICS, FINAL_METRICS, METRIC_NAMES  # noqa: F401

# Every state a run can be in, in the order ``status`` counts them. ``pending`` is a run the engine
# planned but no agent has claimed; the others come from the journal's records.
RUN_STATES = ("pending", "running", "finished", "failed", "crashed", "preempted", "stopped")
# States after which no agent works on the run again (a crashed run only once its retries are
# spent: the store's queue rule decides that).
FINAL_STATES = ("finished", "failed", "stopped", "crashed")
# States whose metric is a real result: a finished run, and one hyperband stopped after it
# reported real epochs. Best runs, plots and the search engine's learning use only these.
SCORED_STATES = ("finished", "stopped")
# States whose run has a W&B record to upload: every run that ended (sync skips queued retries).
SYNCABLE_STATES = FINAL_STATES
