"""A plain W&B training script for the tests: what a user brings, with no sweepkit import.

It reads its values from ``wandb.config`` (which ``wandb.init`` fills from the agent's
WANDB_SWEEP_PARAM_PATH) and logs one row per epoch with ``step=epoch``, like the usual
single-file W&B training script. It writes no run.json: whatever the sweep knows of it comes from
its W&B records. Its knobs (swept or pinned in a test's definition):

- ``lr`` scales the metric; ``shape``: ``rise`` logs ``90 * lr * e / epochs`` at epoch e (its
  last value is its best), ``peak`` logs ``100 * lr`` at the middle epoch and ``10 * lr`` at the
  others (its max is far above its last value);
- ``epochs``, ``epoch_s`` (seconds per epoch);
- ``metric``: ``flat`` logs "Validation Accuracy", ``nested`` logs ``{"val": {"acc": ...}}``,
  ``slash`` logs ``{"val/acc": ...}``;
- ``summary_max``, ``summary_min``: ``define_metric(<the metric's name>, summary="max"|"min")``;
- ``set_summary``: sets the metric's summary (``run.summary[...]``) to that value at the end;
- ``chdir``: changes its working folder to that subfolder before ``wandb.init`` (as Hydra does);
- ``init_dir``: passes ``dir=`` that folder to ``wandb.init`` (Lightning's ``save_dir="."``);
- ``own_wandb_dir``: sets ``WANDB_DIR`` to that folder itself before ``wandb.init``;
- ``no_step``: logs without ``step=`` (W&B numbers the rows itself);
- ``batches``: logs "batch_loss" that many times per epoch (one row each, no ``step=``), then
  the epoch's metric in a row of its own;
- ``kill_after``: after logging that epoch, waits for wandb to flush, then SIGKILLs itself;
- ``preempt_after``: on its first attempt, exits 75 after that epoch having checkpointed the
  epoch before it (so the resumed attempt logs that epoch again, with another value).
"""

from __future__ import annotations

from pathlib import Path

PROGRAM = r"""
import json, os, signal, sys, time
import wandb

defaults = {"lr": 0.1, "epochs": 3, "epoch_s": 0.0, "shape": "rise", "metric": "flat",
            "summary_max": 0, "set_summary": None, "kill_after": 0, "preempt_after": 0,
            "hidden_units": 32, "summary_min": 0, "chdir": "", "init_dir": None,
            "own_wandb_dir": None, "no_step": 0, "batches": 0}
agent_dir = os.environ.get("WANDB_DIR", ".")  # before own_wandb_dir changes it
# the knobs that act before wandb.init reads the parameters: from the file the agent names
import yaml
swept = {k: v["value"] for k, v in yaml.safe_load(open(os.environ["WANDB_SWEEP_PARAM_PATH"])).items() if isinstance(v, dict)}
early = {**defaults, **swept}
if early["chdir"]:
    os.makedirs(early["chdir"], exist_ok=True)
    os.chdir(early["chdir"])
if early["own_wandb_dir"]:
    os.makedirs(early["own_wandb_dir"], exist_ok=True)
    os.environ["WANDB_DIR"] = os.path.abspath(early["own_wandb_dir"])
init_dir = early["init_dir"]
if init_dir:
    os.makedirs(init_dir, exist_ok=True)
run = wandb.init(config=defaults, resume="allow", **({"dir": init_dir} if init_dir else {}))
cfg = run.config
key = {"nested": "val.acc", "slash": "val/acc"}.get(cfg.metric, "Validation Accuracy")
if cfg.summary_max:
    run.define_metric(key, summary="max")
if cfg.summary_min:
    run.define_metric(key, summary="min")
checkpoint = os.path.join(agent_dir, "checkpoint.json")
start = json.load(open(checkpoint))["epoch"] if os.path.exists(checkpoint) else 0
resumed = start > 0
epochs = int(cfg.epochs)

def value(e):
    if cfg.shape == "peak":
        return (100.0 if e == (epochs + 1) // 2 else 10.0) * float(cfg.lr)
    return 90.0 * float(cfg.lr) * e / epochs

for e in range(start + 1, epochs + 1):
    time.sleep(float(cfg.epoch_s))
    acc = value(e) + (0.5 if resumed else 0.0)
    if cfg.metric == "nested":
        row = {"val": {"acc": acc}}
    elif cfg.metric == "slash":
        row = {"val/acc": acc}
    else:
        row = {"Validation Accuracy": acc}
    row["Train Loss"] = 1.0 / e
    for b in range(int(cfg.batches)):
        run.log({"batch_loss": 1.0 / (e + b)})
    if cfg.no_step or cfg.batches:
        run.log(row)
    else:
        run.log(row, step=e)
    print(f"epoch {e}: {acc:.3f}", flush=True)
    if int(cfg.kill_after) == e:
        time.sleep(3.0)  # wandb flushes every WANDB_X_TRANSACTION_LOG_FLUSH_INTERVAL seconds
        os.kill(os.getpid(), signal.SIGKILL)
    if int(cfg.preempt_after) == e and not resumed:
        json.dump({"epoch": e - 1}, open(checkpoint, "w"))
        run.mark_preempting()
        run.finish(exit_code=75)
        sys.exit(75)
if cfg.set_summary is not None:
    run.log({}, step=epochs, commit=True)  # the last row now, so that it does not set the summary after
if cfg.set_summary is not None and cfg.metric == "nested":
    run.summary["val"] = {"acc": float(cfg.set_summary)}
elif cfg.set_summary is not None:
    run.summary["Validation Accuracy"] = float(cfg.set_summary)
run.finish()
"""


def write_wandb_program(folder: Path, name: str = "wandb_prog.py") -> Path:
    path = folder / name
    path.write_text(PROGRAM)
    return path


def expected(lr: float, epochs: int, shape: str = "rise") -> list[float]:
    """What the program logs at epochs 1..epochs (on its first attempt)."""
    if shape == "peak":
        return [(100.0 if e == (epochs + 1) // 2 else 10.0) * lr for e in range(1, epochs + 1)]
    return [90.0 * lr * e / epochs for e in range(1, epochs + 1)]
