"""Real frameworks, unchanged, under ``sweepkit sweep create`` + ``sweepkit agent`` with the
README's default relative sweep root: PyTorch Lightning with ``WandbLogger`` at its defaults
(``save_dir="."``, so ``wandb.init(dir=".")``), and Hydra with ``version_base=None`` (it changes
the working folder) fed by ``${args_no_hyphens}``, with ``wandb.init`` as W&B's Hydra page shows it.
The frameworks come from the project's ``compat`` extra (pyproject.toml, pinned in
constraints.txt). Each sweep's metric must be what the program logged, as W&B ranks it, in
status and the report. Tiny synthetic data, 2 epochs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from compat_fixtures import create_default_root, report_page, run_agent, shown, status

LIGHTNING_PROGRAM = r'''
import json, os
import torch
import lightning as L
from lightning.pytorch.loggers import WandbLogger


class Tiny(L.LightningModule):
    def __init__(self, lr):
        super().__init__()
        self.lr = lr
        self.net = torch.nn.Linear(8, 2)

    def training_step(self, batch, _):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        acc = (self.net(x).argmax(1) == y).float().mean()
        self.log("val_acc", acc)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class Record(L.Callback):
    """The values this program logged under val_acc, for the test to compare with the sweep."""

    values = []

    def on_validation_epoch_end(self, trainer, module):
        if not trainer.sanity_checking:
            self.values.append(float(trainer.callback_metrics["val_acc"]))


torch.manual_seed(0)
x = torch.randn(64, 8)
y = (x[:, 0] > 0).long()
data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
logger = WandbLogger()  # its defaults: save_dir=".", so wandb.init(dir=".")
cfg = logger.experiment.config
trainer = L.Trainer(
    max_epochs=int(cfg.epochs), logger=logger, accelerator="cpu", enable_checkpointing=False,
    enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
)
trainer.fit(Tiny(float(cfg.lr)), data, data)
json.dump(Record.values, open(f"logged-{logger.experiment.id}.json", "w"))
'''

# Record is a callback the Trainer must be given: add it without touching the logger defaults
LIGHTNING_PROGRAM = LIGHTNING_PROGRAM.replace(
    "enable_checkpointing=False,", "enable_checkpointing=False, callbacks=[Record()],"
)

HYDRA_PROGRAM = r"""
import hydra
import wandb
from omegaconf import DictConfig, OmegaConf


@hydra.main(config_path="conf", config_name="config"VERSION_BASE)
def main(cfg: DictConfig) -> None:
    run = wandb.init(config=OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True))
    for epoch in range(1, cfg.epochs + 1):
        run.log({"val": {"loss": cfg.lr / epoch}, "epoch": epoch})
    open("cwd-of-" + run.id, "w").write("hydra ran here")
    run.finish()


if __name__ == "__main__":
    main()
"""


@pytest.mark.system  # starts processes
def test_lightning_wandb_logger_at_its_defaults(tmp_path: Path) -> None:
    pytest.importorskip("lightning", reason="the compat extra: pip install -e '.[compat]'")
    (tmp_path / "train_lightning.py").write_text(LIGHTNING_PROGRAM)
    spec = {
        "program": "train_lightning.py",
        "method": "grid",
        "metric": {"name": "val_acc", "goal": "maximize"},
        "parameters": {"lr": {"values": [0.5, 0.05]}, "epochs": {"value": 2}},
    }
    ref = create_default_root(tmp_path, spec)
    run_agent(tmp_path, ref)
    snap, rows = status(tmp_path, ref)
    page = report_page(tmp_path, ref)
    assert len(snap["runs"]) == 2
    for run in snap["runs"]:
        logged = json.loads((tmp_path / f"logged-{run['run_id']}.json").read_text())
        assert len(logged) == 2
        assert run["state"] == "finished" and run["metric_source"] == "wandb"
        assert run["metric"] == pytest.approx(logged[-1])  # no define_metric: the last value
        assert run["metric_history"] == pytest.approx(logged)
        assert rows[run["run_id"]]["val_acc"] == shown(run["metric"])
        assert rows[run["run_id"]]["epochs"] == "2"
        assert shown(run["metric"]) in page
        # WandbLogger wrote to ./wandb, the user's folder, not the run folder
        (link,) = (tmp_path / run["run_dir"] / "wandb").glob(f"*-{run['run_id']}")
        assert link.resolve().parent == (tmp_path / "wandb").resolve()


@pytest.mark.system  # starts processes
@pytest.mark.parametrize(
    "version_base, moves",
    # W&B's Hydra page leaves version_base out: Hydra 1.1's defaults, the run in outputs/...;
    # version_base=None: this Hydra's defaults, the working folder stays
    [("", True), (", version_base=None", False)],
    ids=["as-on-W&B's-Hydra-page", "version_base=None"],
)
def test_hydra_with_args_no_hyphens(tmp_path: Path, version_base: str, moves: bool) -> None:
    pytest.importorskip("hydra", reason="the compat extra: pip install -e '.[compat]'")
    (tmp_path / "train_hydra.py").write_text(HYDRA_PROGRAM.replace("VERSION_BASE", version_base))
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text("lr: 0.1\nepochs: 2\n")
    spec = {
        "program": "train_hydra.py",
        "method": "grid",
        "metric": {"name": "val.loss", "goal": "minimize"},
        "command": ["${env}", "${interpreter}", "${program}", "${args_no_hyphens}"],
        "parameters": {"lr": {"values": [0.4, 0.2]}, "epochs": {"values": [3]}},
    }
    ref = create_default_root(tmp_path, spec)
    run_agent(tmp_path, ref)
    snap, rows = status(tmp_path, ref)
    page = report_page(tmp_path, ref)
    assert len(snap["runs"]) == 2
    for run in snap["runs"]:
        lr, epochs = run["params"]["lr"], run["params"]["epochs"]
        logged = [lr / e for e in range(1, epochs + 1)]
        assert run["state"] == "finished", run
        assert run["metric"] == pytest.approx(logged[-1]) and run["config"]["lr"] == lr
        assert run["metric_history"] == pytest.approx(logged)
        row = rows[run["run_id"]]
        assert row["val.loss"] == shown(run["metric"]) and row["epochs"] == str(epochs)
        assert row["param:epochs"] == str(epochs)
        assert shown(run["metric"]) in page
        (marker,) = tmp_path.rglob(f"cwd-of-{run['run_id']}")
        assert (marker.parent != tmp_path) == moves, marker
    best = next(r for r in snap["runs"] if r["run_id"] == snap["best"])
    assert best["params"]["lr"] == 0.2
