"""Sweeps without a W&B server: the definition (W&B's format, checked before anything runs), the
store on the shared filesystem (journal, lock, run states), the agent that claims and launches
runs, and the ``sweep create``, ``status`` and ``sync`` commands."""
