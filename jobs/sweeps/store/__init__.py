"""The local sweep store: a folder on the shared filesystem that replaces W&B's sweep server.

A pure core decides, a shell does the I/O:

* fold.py      records -> runs and their states (``apply``), no I/O
* claim_policy.py which run an agent gets next, no I/O
* reconcile.py how a run ended by its own records, when its end record is missing, no I/O
* lost_records.py the claims a journal lost, from what the folder shows, no I/O
* recovery.py  the run folders and claim tokens read for them (recovered with one warning)
* sweep.py     ``LocalSweep``: journal, lock, claim tokens, leases around the core
* reader.py    the one reader of runs (``RunView``) for status, the report and the agent
* engine.py    W&B's ``sweeps`` engine: the runs as it reads them, its proposals
* bayes.py     bayes proposals from what bayes reads of each run, kept per run
* journal.py, snapshot.py, leases.py, folder.py: the files of a sweep folder
* snapshot_format.py the snapshot's bytes: a head a claim reads, a body read when needed

Other code imports from here: ``from sweepkit.jobs.sweeps.store import open_sweep, LocalSweep, ...``.
"""

from __future__ import annotations

from sweepkit.jobs.sweeps.definition import quiet_sweeps_import
from sweepkit.jobs.sweeps.ref import DEFAULT_ROOT, no_sweep_at
from sweepkit.jobs.sweeps.state import Claim, RunView, iso, plain
from sweepkit.jobs.sweeps.store.claim_policy import NoClaim, claim_record
from sweepkit.jobs.sweeps.store.fold import Failure, Fold, FoldedRun, Outcomes, apply, outcomes
from sweepkit.jobs.sweeps.store.folder import DEFAULT_LEASE_S, DEFAULT_MAX_RETRIES
from sweepkit.jobs.sweeps.store.leases import AgentIdentity, lease_expired
from sweepkit.jobs.sweeps.store.opening import create_sweep, open_sweep
from sweepkit.jobs.sweeps.store.sweep import LocalSweep
from sweepkit.jobs.sweeps.wandb_run.metrics import read_run_json

__all__ = [
    "DEFAULT_LEASE_S",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_ROOT",
    "AgentIdentity",
    "Claim",
    "Failure",
    "Fold",
    "FoldedRun",
    "LocalSweep",
    "NoClaim",
    "Outcomes",
    "RunView",
    "apply",
    "claim_record",
    "create_sweep",
    "iso",
    "lease_expired",
    "no_sweep_at",
    "open_sweep",
    "outcomes",
    "plain",
    "quiet_sweeps_import",
    "read_run_json",
]
