"""Reading a program's W&B run from its files, offline: what the sweep ranks and stops runs by.

``log`` reads wandb-core's transaction log (``.wandb``) as it is written, ``records`` turns it into
a run's history, summary, config and exit code, ``metrics`` picks the sweep's metric from those (or
from the trainer's ``run.json``), and ``location`` finds the run wherever the program wrote it.
"""
