"""A training script of the usual W&B sweep shape, with nothing of sweepkit in it.

It reads its defaults from config.yaml beside it, lets wandb.init layer the sweep's values over
them (wandb.config), and logs "Train Loss", "Validation Loss" and "Validation Accuracy" (percent)
once per epoch with step=epoch. The model is softmax regression on scikit-learn's bundled 8x8
digits, trained with mini-batch SGD in numpy: a few seconds on any CPU, no download.

    python train_script.py                     # one run, online or offline as WANDB_MODE says
    sweepkit sweep create sweep_config.yaml    # the same script, swept
"""

from pathlib import Path

import numpy as np
import wandb
import yaml
from sklearn.datasets import load_digits


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def loss_and_accuracy(weights, x, y):
    probs = softmax(x @ weights)
    loss = -np.log(probs[np.arange(len(y)), y] + 1e-12).mean()
    return float(loss), float(100.0 * (probs.argmax(axis=1) == y).mean())


def main():
    defaults = yaml.safe_load((Path(__file__).parent / "config.yaml").read_text())
    run = wandb.init(project=defaults["wandb_project"], config=defaults)
    config = run.config  # the sweep's values, over the defaults

    digits = load_digits()
    x = np.hstack([digits.data / 16.0, np.ones((len(digits.data), 1))])  # pixels and a bias
    y = digits.target
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(y))
    n_val = int(len(y) * config.val_fraction)
    val, train = order[:n_val], order[n_val:]
    weights = np.zeros((x.shape[1], 10))

    for epoch in range(1, config.num_epochs + 1):
        train = rng.permutation(train)
        for start in range(0, len(train), config.batch_size):
            batch = train[start : start + config.batch_size]
            probs = softmax(x[batch] @ weights)
            probs[np.arange(len(batch)), y[batch]] -= 1.0
            weights -= config.learning_rate * x[batch].T @ probs / len(batch)
        train_loss, _ = loss_and_accuracy(weights, x[train], y[train])
        val_loss, val_acc = loss_and_accuracy(weights, x[val], y[val])
        run.log(
            {"Train Loss": train_loss, "Validation Loss": val_loss, "Validation Accuracy": val_acc},
            step=epoch,
        )
        print(f"epoch {epoch}: validation accuracy {val_acc:.2f}%", flush=True)
    run.finish()


if __name__ == "__main__":
    main()
