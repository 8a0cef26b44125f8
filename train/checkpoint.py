"""Checkpoints: written atomically, several kept, a corrupt newest one skipped for an older one.

Once a run has finished (and run.json says so) nobody resumes it: ``checkpoint.keep_after_finish``
then trims the folder to the final weights alone (``final``, the default), to nothing (``none``)
or leaves the resume checkpoints (``all``). A preempted or running run keeps its resume checkpoints.

A checkpoint holds everything a resumed run needs to continue as if never interrupted: model,
optimiser, scheduler and grad-scaler state, the position (``epoch`` completed epochs plus
``step`` batches into the next one), the partial epoch's loss sums and the metric history.
Batches depend only on (seed, epoch, step) (see pipeline.py), so no RNG state is needed.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sweepkit.train.atomic import write_atomic

log = logging.getLogger("sweepkit")

_NAME = re.compile(r"^ckpt-e(\d+)-s(\d+)\.pt$")


@dataclass(frozen=True)
class Position:
    epoch: int  # completed epochs
    step: int  # batches done in epoch ``epoch`` (0 at an epoch boundary)


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def _listed(run_dir: Path) -> list[tuple[Position, Path]]:
    found = []
    folder = checkpoint_dir(run_dir)
    if folder.is_dir():
        for path in folder.iterdir():
            match = _NAME.match(path.name)
            if match:
                found.append((Position(int(match[1]), int(match[2])), path))
    return sorted(found, key=lambda item: (item[0].epoch, item[0].step))


def has_checkpoint(run_dir: Path) -> bool:
    return bool(_listed(run_dir))


def save_checkpoint(run_dir: Path, position: Position, state: dict[str, Any], keep: int) -> Path:
    path = checkpoint_dir(run_dir) / f"ckpt-e{position.epoch:04d}-s{position.step:06d}.pt"
    write_atomic(
        path,
        lambda handle: torch.save(
            {**state, "epoch": position.epoch, "step": position.step}, handle
        ),
    )
    for _, old in _listed(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def newest_checkpoint_path(run_dir: Path) -> str | None:
    """The newest resume checkpoint's path (readable or not), or None."""
    listed = _listed(run_dir)
    return str(listed[-1][1]) if listed else None


def load_checkpoint_file(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path``, or None if it cannot be read."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None
    return state if isinstance(state, dict) and "model" in state else None


def load_latest_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """The newest readable checkpoint, or None. Unreadable ones are skipped with a warning."""
    for _, path in reversed(_listed(run_dir)):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or "model" not in state:
                raise ValueError("not a sweepkit checkpoint")
            return state
        except Exception as err:
            log.warning(
                "checkpoint %s is unreadable (%s); falling back to the previous one",
                path.name,
                f"{err.__class__.__name__}: {str(err).splitlines()[0] if str(err) else ''}",
            )
    return None


FINAL_WEIGHTS = "final.pt"


def save_final_weights(run_dir: Path, model_state: dict[str, Any], epochs: int) -> Path:
    """The finished model's weights alone (no optimizer, scheduler or scaler state), loadable with
    ``torch.load(path, weights_only=True)["model"]``."""
    path = checkpoint_dir(run_dir) / FINAL_WEIGHTS
    write_atomic(path, lambda handle: torch.save({"model": model_state, "epoch": epochs}, handle))
    return path


def trim_after_finish(run_dir: Path, keep_after_finish: str) -> None:
    """Delete what a finished run no longer needs (see the module's docstring). Called only once
    run.json records the run as finished, so that a crash in between leaves a resumable run."""
    if keep_after_finish == "all":
        return
    for _, path in _listed(run_dir):
        path.unlink(missing_ok=True)
    folder = checkpoint_dir(run_dir)
    if keep_after_finish == "none":
        (folder / FINAL_WEIGHTS).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # absent, or holds files that are not ours
            folder.rmdir()
