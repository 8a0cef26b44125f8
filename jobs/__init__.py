"""sweepkit's orchestration: sweep store and agent, SLURM submission, status, report, sync."""
