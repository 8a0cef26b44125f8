"""A ``run.json`` that is there but cannot be read (torn by a filesystem that lost its last write,
a partial copy or restore, an editor): the run's state recovered from what else is on disk, or
one line that says what to do. Never trained again from epoch 1 without a word.

The evidence, in the run folder the trainer alone writes:

- ``checkpoints/final.pt`` is written only once every epoch and the test split are done: the run
  finished. run.json is rebuilt as finished (its epochs and summary from a resume checkpoint if
  one is still there), and the trainer ends with "already finished".
- a resume checkpoint (``checkpoints/ckpt-e*-s*.pt``) holds the exact position: the run resumes
  from it, as after a preemption (a checkpoint of every epoch is the end of training: only the
  test split is evaluated).
- neither: nothing shows how far the run got (it may have finished with
  ``keep_after_finish: none``), so the trainer refuses rather than train it again.

The torn file is kept beside as ``run.json.torn``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweepkit.train.errors import UserError

TORN_SUFFIX = ".torn"


def run_json_problem(run_dir: Path) -> str | None:
    """Why ``run_dir``'s run.json cannot be read ("is empty", "is not valid JSON ..."), or None
    when it is absent or readable."""
    path = run_dir / "run.json"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise UserError(
            f"{path} cannot be read: {err.strerror or err}; check its permissions"
        ) from None
    if not raw.strip():
        return "is empty"
    try:
        data = json.loads(raw.decode())  # as read_run_json reads it: a BOM is not JSON
    except UnicodeDecodeError as err:
        return f"is not UTF-8 text (byte {err.start})"
    except json.JSONDecodeError as err:
        return f"is not valid JSON ({err.msg} at character {err.pos} of {len(err.doc)})"
    if not isinstance(data, dict):
        return "is not a JSON object"
    return None


@dataclass(frozen=True)
class Recovery:
    """What to do with a torn run.json: ``previous`` (the record to carry on from: rebuilt as
    finished, or ``{}`` to resume from checkpoints), the warning to print, or the refusal."""

    previous: dict[str, Any] | None = None
    warning: str = ""
    refusal: str = ""


def decide(run_dir: Path, problem: str) -> Recovery:
    """What the files beside a torn run.json show (the module's docstring); reads, writes nothing."""
    from sweepkit.train.checkpoint import FINAL_WEIGHTS, checkpoint_dir, newest_checkpoint_path

    path = run_dir / "run.json"
    kept = f"the torn file kept as {path.name}{TORN_SUFFIX}"
    newest = newest_checkpoint_path(run_dir)
    final = checkpoint_dir(run_dir) / FINAL_WEIGHTS
    if final.exists():
        return Recovery(
            previous={"state": "finished", "from": str(final), "resume": newest},
            warning=f"warning: {path} {problem}; checkpoints/{FINAL_WEIGHTS} shows the run "
            f"finished: run.json rebuilt as finished ({kept})",
        )
    if newest is not None:
        return Recovery(
            previous={},
            warning=f"warning: {path} {problem}; resuming from checkpoints/{Path(newest).name} "
            f"({kept})",
        )
    return Recovery(
        refusal=f"{path} {problem} and nothing else in {run_dir} shows how far the run got "
        "(no checkpoints/; it may have finished): restore run.json from a backup, or move it "
        f"aside (mv {path} {path}{TORN_SUFFIX}) to train the run from the start"
    )


def keep_torn(run_dir: Path) -> None:
    """Move the torn run.json aside, so that what is written next does not destroy it."""
    path = run_dir / "run.json"
    os.replace(path, path.with_name(path.name + TORN_SUFFIX))


def finished_record(record: Any, evidence: dict[str, Any]) -> None:
    """Fill the new ``RunRecord`` as the finished run the files show, and write it: epochs and
    summary from the resume checkpoint still there, if any (``keep_after_finish: all``)."""
    from sweepkit.train.checkpoint import load_checkpoint_file
    from sweepkit.train.epoch import EpochSums

    epochs: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    if evidence.get("resume"):
        state = load_checkpoint_file(Path(evidence["resume"]))
        if state is not None and state.get("history"):
            sums = EpochSums.from_checkpoint(state)
            epochs, summary = sums.history, sums.summary()
    record.data["recovered"] = {
        "from": evidence["from"],
        "why": "run.json was torn (kept as run.json.torn); the test metrics are not known",
    }
    record.update(state="finished", exit_code=0, epochs=epochs, summary=summary)


def previous_record(run_dir: Path, run_id: str, config: dict[str, Any]) -> dict[str, Any] | None:
    """run.json as the last attempt left it, None for a new run; a torn one recovered (the
    warning printed, the file kept aside, a finished run's record rebuilt) or refused in one line.
    Rank 0 alone calls it (it writes)."""
    import sys

    from sweepkit.train.runrecord import RunRecord, read_run_json

    previous = read_run_json(run_dir)
    problem = run_json_problem(run_dir) if previous is None else None
    if problem is None:
        return previous
    recovery = decide(run_dir, problem)
    if recovery.refusal or recovery.previous is None:
        raise UserError(recovery.refusal)
    print(recovery.warning, file=sys.stderr, flush=True)
    keep_torn(run_dir)
    if recovery.previous.get("state") != "finished":
        return {}
    finished_record(RunRecord(run_dir, run_id, config, {}), recovery.previous)
    return {"state": "finished", "config": config}
