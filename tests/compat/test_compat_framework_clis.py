"""Frameworks that start the W&B run themselves and take the sweep's values through their own
argument parser, unchanged under ``sweepkit sweep create`` + ``sweepkit agent`` with the README's
default relative sweep root:

- Hugging Face ``Trainer`` with ``report_to="wandb"``, its ``TrainingArguments`` parsed by
  ``HfArgumentParser`` from ``${args}`` (``--learning_rate=...``), as HF's example scripts take
  them. No ``wandb.init`` in the program: HF's ``WandbCallback`` calls it at the start of training
  (``transformers/integrations/integration_utils.py``). A tiny BERT built from a config on
  scikit-learn's bundled digits; nothing downloaded (``HF_HUB_OFFLINE``, an empty ``HF_HOME``).
- ``LightningCLI`` with ``WandbLogger`` named in its YAML config, the sweep's values given as its
  arguments (``fit --config=... --model.lr=...``). ``save_config_kwargs={"overwrite": True}``, as
  LightningCLI programs run more than once in a folder have it: ``WandbLogger``'s save_dir ``.`` is
  where LightningCLI saves ``config.yaml``, so without it the second run of any sweep, under
  ``wandb agent`` as here, stops with Lightning's "expected ./config.yaml to NOT exist".

The frameworks come from the project's ``compat`` extra (pinned in constraints.txt). Each run's
metric in status and the report must be what the framework logged, read back by W&B's own reader
(``wandb leet inspect``) from the run's transaction log. Tiny data, 2 or 3 epochs, 2 runs each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from compat_fixtures import (
    create_default_root,
    report_page,
    run_agent,
    shown,
    status,
    wandb_log,
    wandb_records,
)

pytestmark = pytest.mark.system  # starts processes (see tests/conftest.py)

HF_PROGRAM = r'''
import torch
from sklearn.datasets import load_digits
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    HfArgumentParser,
    Trainer,
    TrainingArguments,
)


class Digits(torch.utils.data.Dataset):
    """Each 8x8 digit as a sequence of its 64 gray levels (0-16), the tokens."""

    def __init__(self, images, labels):
        self.ids = torch.tensor(images, dtype=torch.long)
        self.labels = torch.tensor(labels, dtype=torch.long)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


(args,) = HfArgumentParser(TrainingArguments).parse_args_into_dataclasses()
digits = load_digits()
config = BertConfig(
    vocab_size=17, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
    intermediate_size=32, max_position_embeddings=64, num_labels=10,
)
torch.manual_seed(args.seed)
trainer = Trainer(
    model=BertForSequenceClassification(config),
    args=args,
    train_dataset=Digits(digits.data[:128], digits.target[:128]),
    eval_dataset=Digits(digits.data[128:192], digits.target[128:192]),
)
trainer.train()
'''

LIGHTNING_CLI_PROGRAM = r"""
import torch
import lightning as L
from lightning.pytorch.cli import LightningCLI


class Tiny(L.LightningModule):
    def __init__(self, lr: float = 0.1, hidden: int = 8):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2)
        )

    def training_step(self, batch, _):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val/loss", torch.nn.functional.cross_entropy(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class Blobs(L.LightningDataModule):
    def __init__(self, batch_size: int = 16):
        super().__init__()
        self.batch_size = batch_size
        x = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
        self.data = torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long())

    def train_dataloader(self):
        return torch.utils.data.DataLoader(self.data, batch_size=self.batch_size)

    def val_dataloader(self):
        return torch.utils.data.DataLoader(self.data, batch_size=self.batch_size)


if __name__ == "__main__":
    LightningCLI(Tiny, Blobs, save_config_kwargs={"overwrite": True})
"""

LIGHTNING_CLI_CONFIG = """\
seed_everything: 0
trainer:
  accelerator: cpu
  max_epochs: 2
  enable_checkpointing: false
  enable_progress_bar: false
  enable_model_summary: false
  num_sanity_val_steps: 0
  logger:
    class_path: lightning.pytorch.loggers.WandbLogger
"""


def logged(history: list[dict[str, Any]], key: str) -> list[float]:
    return [row[key] for row in history if key in row]


def check_runs_against_wandb(cwd: Path, ref: str, metric: str, epochs: int) -> list[Any]:
    """Every run finished with the metric W&B's own reader finds in its log, in status (JSON and
    table) and the report, and the best run is the one W&B would rank best (goal minimize);
    returns each run with W&B's reading of it."""
    snap, rows = status(cwd, ref)
    page = report_page(cwd, ref)
    assert len(snap["runs"]) == 2
    read = []
    for run in snap["runs"]:
        theirs, history = wandb_records(wandb_log(cwd, run))
        values = logged(history, metric)
        assert theirs["state"] == "finished" and theirs["exit_code"] == 0, theirs["state"]
        assert len(values) == epochs and theirs["summary"][metric] == values[-1]
        assert run["state"] == "finished" and run["metric_source"] == "wandb", run
        assert run["metric"] == values[-1] and run["metric_history"] == values
        assert rows[run["run_id"]][metric] == shown(run["metric"])
        assert rows[run["run_id"]]["epochs"] == str(epochs)
        assert shown(run["metric"]) in page
        read.append((run, theirs, history))
    assert snap["best"] == min(read, key=lambda r: logged(r[2], metric)[-1])[0]["run_id"]
    return read


def test_hugging_face_trainer_reporting_to_wandb(tmp_path: Path) -> None:
    pytest.importorskip("transformers", reason="the compat extra: pip install -e '.[compat]'")
    (tmp_path / "train_hf.py").write_text(HF_PROGRAM)
    spec = {
        "program": "train_hf.py",
        "method": "grid",
        "metric": {"name": "eval/loss", "goal": "minimize"},
        # the run's fixed TrainingArguments on the command line, the swept ones from ${args}
        "command": [
            "${env}",
            "${interpreter}",
            "${program}",
            "--output_dir=out",
            "--report_to=wandb",
            "--eval_strategy=epoch",
            "--logging_strategy=epoch",
            "--save_strategy=no",
            "--lr_scheduler_type=constant",
            "--per_device_train_batch_size=16",
            "--use_cpu=true",
            "--disable_tqdm=true",
            "${args}",
        ],
        "parameters": {
            "learning_rate": {"values": [0.01, 0.001]},
            "num_train_epochs": {"value": 2},
        },
    }
    ref = create_default_root(tmp_path, spec)
    (tmp_path / "hf-home").mkdir()
    offline = {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf-home"),
    }
    run_agent(tmp_path, ref, env=offline)
    for run, theirs, history in check_runs_against_wandb(tmp_path, ref, "eval/loss", epochs=2):
        lr = run["params"]["learning_rate"]
        # HF trained with the swept value (a constant schedule logs it unchanged) and started
        # the W&B run itself, in the sweep, with the sweep's values in its config
        assert logged(history, "train/learning_rate") == [lr, lr]
        assert f"--learning_rate={lr}" in theirs["args"], theirs["args"]
        assert theirs["config"]["learning_rate"] == run["config"]["learning_rate"] == lr
        assert theirs["config"]["eval_strategy"] == "epoch"  # WandbCallback's own config
    assert list((tmp_path / "hf-home").iterdir()) == []  # nothing fetched or cached


def test_lightning_cli_with_wandb_logger(tmp_path: Path) -> None:
    pytest.importorskip("lightning", reason="the compat extra: pip install -e '.[compat]'")
    pytest.importorskip("jsonargparse", reason="the compat extra: pip install -e '.[compat]'")
    (tmp_path / "train_cli.py").write_text(LIGHTNING_CLI_PROGRAM)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "tiny.yaml").write_text(LIGHTNING_CLI_CONFIG)
    spec = {
        "program": "train_cli.py",
        "method": "grid",
        "metric": {"name": "val/loss", "goal": "minimize"},
        "command": [
            "${env}",
            "${interpreter}",
            "${program}",
            "fit",
            "--config=configs/tiny.yaml",
            "${args}",
        ],
        # LightningCLI's own argument names; max_epochs overrides the config file's 2
        "parameters": {"model.lr": {"values": [0.5, 0.05]}, "trainer.max_epochs": {"value": 3}},
    }
    ref = create_default_root(tmp_path, spec)
    run_agent(tmp_path, ref)
    for run, theirs, _ in check_runs_against_wandb(tmp_path, ref, "val/loss", epochs=3):
        lr = run["params"]["model.lr"]
        assert theirs["args"][:2] == ["fit", "--config=configs/tiny.yaml"]
        assert f"--model.lr={lr}" in theirs["args"], theirs["args"]
        # the module got the swept value: its hyperparameters, as WandbLogger logged them
        assert theirs["config"]["lr"] == lr and theirs["config"]["model.lr"] == lr
        # WandbLogger wrote to ./wandb, the user's folder, linked from the run folder
        assert wandb_log(tmp_path, run).parent.resolve().parent == (tmp_path / "wandb").resolve()
    assert (tmp_path / "config.yaml").is_file()  # LightningCLI saved its config where it does
