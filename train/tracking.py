"""W&B logging, imported only when ``wandb.mode`` is not ``disabled``.

Under ``wandb agent`` (online) or ``sweepkit agent`` (offline), ``wandb.init`` reads the swept
values from WANDB_SWEEP_PARAM_PATH into ``wandb.config``; the trainer layers them into its config
(see train/config/) and records the effective result back, so W&B shows what actually trained.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sweepkit.train.config import Config


class Tracker:
    """Mirror of the run's metrics in W&B; every method is a no-op when disabled."""

    def __init__(self, cfg: Config, run_dir: Path, run_id: str, enabled: bool = True):
        """``enabled=False``: no W&B run (the ranks of a data-parallel run but rank 0)."""
        self.run: Any = None
        if cfg.wandb.mode == "disabled" or not enabled:
            return
        os.environ.setdefault("WANDB_DIR", str(run_dir))
        os.environ.setdefault("WANDB_SILENT", "true")
        sweep_id = os.environ.get("WANDB_SWEEP_ID")
        tags = list(cfg.wandb.tags) + ([f"sweep:{sweep_id}"] if sweep_id else [])
        if os.environ.get("SWEEPKIT_SWEEP_DIR"):
            # A local sweep's id means nothing to W&B's server, which refuses to sync a run that
            # names a sweep it did not issue; the run carries the id as its sweep:<id> tag instead.
            # The swept values still arrive through WANDB_SWEEP_PARAM_PATH.
            os.environ.pop("WANDB_SWEEP_ID", None)
        import wandb

        self.run = wandb.init(
            project=cfg.wandb.project,
            entity=cfg.wandb.entity,
            id=run_id,
            resume="allow",
            mode=cfg.wandb.mode,
            dir=os.environ["WANDB_DIR"],
            config=cfg.nested(),
            tags=tags,
        )

    def swept_values(self) -> dict[str, Any]:
        """wandb.config as W&B holds it after init (includes the sweep's chosen values)."""
        if self.run is None:
            return {}
        return {k: v for k, v in dict(self.run.config).items() if not k.startswith("_")}

    def record_config(self, cfg: Config) -> None:
        if self.run is not None:
            self.run.config.update(cfg.nested(), allow_val_change=True)

    def log(self, metrics: dict[str, float], epoch: int) -> None:
        if self.run is not None:
            self.run.log(metrics, step=epoch)

    def summary(self, values: dict[str, float]) -> None:
        if self.run is not None:
            self.run.summary.update(values)

    def finish(self, exit_code: int, preempted: bool = False) -> None:
        if self.run is not None:
            if preempted:
                # Tells W&B (and its sweep controller, online) that this run will resume.
                self.run.mark_preempting()
            self.run.finish(exit_code=exit_code)
            self.run = None
