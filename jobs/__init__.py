"""How a sweep becomes runs and runs become SLURM jobs, in three wings.

- ``sweepkit.jobs.sweeps``: the W&B sweep definition and its checks, the shared-filesystem store (journal,
  lock, run states), the agent, and the ``sweep create`` / ``status`` / ``sync`` commands;
- ``sweepkit.jobs.slurm``: cluster profiles, the sbatch array template and its rendering, ``submit``, and
  the local twin of ``sbatch --array``;
- ``sweepkit.jobs.report``: what a report reads (local folder or W&B), analysis, plots, the HTML page.

``sweepkit.jobs.cli`` is the one console entry. Floors (checked by import-linter, ``pyproject.toml``):
report and slurm stand on sweeps, sweeps on train; nothing imports upward.
"""
