"""The one exception type that reaches users as a single line.

Anything a user can fix (a bad config key, a missing dataset, a store they cannot write) raises
``UserError`` with a message that names the file, key or flag and says how to fix it. The CLI
prints it as one line and exits with ``EXIT_USAGE``; it never shows a traceback for these.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem in the user's input or environment, reported as one line.

    Public as ``sweepkit.UserError``, the exception the Python API raises (``except
    sweepkit.UserError``); it lives here so that the trainer, which imports nothing from jobs,
    raises the same class."""


# a traceback and repr name it where users import it from (sweepkit re-exports it); pickling
# looks it up there too
UserError.__module__ = "sweepkit"


# Exit codes shared by the trainer and both agents (the table in docs/trainer.md).
EXIT_OK = 0
EXIT_FAILED = 1  # the run raised an unexpected exception
EXIT_USAGE = 2  # bad config, flag or missing input: fix and rerun
EXIT_PREEMPTED = 75  # EX_TEMPFAIL: checkpointed after SIGUSR1/SIGTERM; rerun to resume
