"""The names the trainer logs its metrics under, in run.json and in W&B.

Sweep definitions name them (``metric.name: Validation Accuracy``) and the agent, status and the
report read them back, so they are defined once here; ``sweepkit.jobs.sweeps.vocabulary`` hands them to
the sweep side. No I/O: the store's pure core may import this module.
"""

from __future__ import annotations

TRAIN_LOSS = "Train Loss"
VAL_LOSS = "Validation Loss"
VAL_ACCURACY = "Validation Accuracy"
BEST_VAL_ACCURACY = "best Validation Accuracy"
TEST_LOSS = "Test Loss"
TEST_ACCURACY = "Test Accuracy"
IMAGES_PER_S = "images_per_s"

# The per-epoch learning metrics, in the order run.json lists them.
METRIC_NAMES = (TRAIN_LOSS, VAL_LOSS, VAL_ACCURACY)
# Everything logged once per epoch (run.json "epochs", W&B history rows).
EPOCH_METRICS = (*METRIC_NAMES, IMAGES_PER_S, "lr", "epoch_s")
# Logged once, when the run finishes (run.json and W&B summary).
FINAL_METRICS = (BEST_VAL_ACCURACY, TEST_LOSS, TEST_ACCURACY)
