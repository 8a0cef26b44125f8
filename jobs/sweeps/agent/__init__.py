"""The agent: ``sweepkit agent [--count N] SWEEP`` and ``sweepkit.agent(sweep, function)``.

For a W&B sweep reference (``entity/project/sweep_id``) it is ``wandb agent``, unchanged (exec:
``cli``). For a local sweep (a folder made by ``sweepkit sweep create``) it claims a run from the
store and launches the program the way ``wandb agent`` does (``launch``: the command, the
parameter file, the environment), in its own process group, with its output kept in
``RUN_DIR/output.log`` (and echoed): ``process``; ``function`` calls a Python function in a thread
instead, as ``wandb.agent(function=...)`` does. One loop (``local``) runs either runner.

While the run runs, a thread renews the run's lease; the agent finds the program's
W&B run by its id wherever the program writes it (``sweepkit.jobs.sweeps.wandb_run.location``) and reads
what it logged (else ``RUN_DIR/run.json``: ``sweepkit.jobs.sweeps.wandb_run.metrics``), and at each new
value of the sweep's metric asks hyperband's rule (``rules.hyperband_stops``, from band values
kept between checks: ``hyperband``) whether to stop it. So that it sees each epoch, the program's
wandb flushes its log every second (``WANDB_X_TRANSACTION_LOG_FLUSH_INTERVAL``, unless the
environment sets it). A stop is SIGTERM to the program (the trainer checkpoints and exits), SIGKILL
to its process group after a grace period, recorded as ``stopped``; whatever the program leaves in
its group when it exits is ended too. Exit 0 is ``finished``, 75 ``preempted`` (re-queued under the same
run id), anything else ``failed`` with the reason found in the tail of the output
(``rules.outcome``); that reason and the exit code go in the run's end record in the journal, and
the program's ``run.json`` is left as the program wrote it. SIGTERM, SIGINT or SIGUSR1 to the agent
are passed to the program; the run is recorded as preempted and the agent exits 75. If the agent
itself dies, the program gets SIGTERM (Linux parent-death signal) and the lease expires, so another
agent resumes the run. Agents stop taking runs from a sweep whose runs fail from the start
(``rules.failing_from_the_start``).

The decisions are pure functions in ``rules``; ``messages`` words what the agent tells the user.
"""
