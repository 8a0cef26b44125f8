"""A sweep reference, parsed once: a local sweep folder, or a W&B sweep ``entity/project/id``.

Every verb that takes a sweep (agent, status, report, submit, sync) turns its argument into a
:class:`SweepRef` with :func:`parse` and branches on ``ref.is_local`` from then on, so the rule
"a folder that exists is a local sweep, else entity/project/id" and its error wording live here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sweepkit.train.errors import UserError

DEFAULT_ROOT = "sweeps"  # where `sweep create` puts sweep folders unless told --root

# W&B entity and project names are letters, digits, '-', '_' and '.'; sweep ids are base-36.
WANDB_REF = re.compile(r"^[\w.-]+/[\w.-]+/[A-Za-z0-9]+$")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SweepRef:
    """Where a sweep lives. ``text`` is what the user typed; for a local sweep ``path`` is its
    folder made absolute, for a W&B sweep ``entity``/``project``/``sweep_id`` are its parts."""

    text: str
    path: Path | None = None
    entity: str = ""
    project: str = ""
    sweep_id: str = ""

    @property
    def is_local(self) -> bool:
        return self.path is not None

    @property
    def folder(self) -> Path:
        """The local sweep's folder; a W&B reference has none."""
        if self.path is None:
            raise ValueError(f"{self.text} is a W&B sweep and has no local folder")
        return self.path

    @property
    def wandb_path(self) -> str:
        """``entity/project/sweep_id``, as `wandb agent` and the W&B API take it."""
        return f"{self.entity}/{self.project}/{self.sweep_id}"

    @property
    def wandb_url(self) -> str:
        return f"https://wandb.ai/{self.entity}/{self.project}/sweeps/{self.sweep_id}"


def parse(text: str | Path) -> SweepRef:
    """The reference ``text`` names. A folder that exists is a local sweep (whether it holds a
    sweep is for the store to check); else ``entity/project/sweep_id`` is a W&B sweep; anything
    else is refused in one line that says what to pass instead."""
    ref = _parsed(str(text))
    if ref is None:
        raise no_sweep_at(text, ", nor a W&B reference entity/project/sweep_id")
    return ref


def parse_local(text: str | Path) -> SweepRef:
    """Like :func:`parse`, for verbs that only work on a local sweep folder: a W&B reference is
    refused with its page on W&B, anything else that is no folder as no sweep folder."""
    ref = _parsed(str(text))
    if ref is None:
        raise no_sweep_at(text)
    if not ref.is_local:
        raise UserError(
            f"{ref.text} is a W&B sweep; this command needs a local sweep folder "
            f"(the W&B sweep is at {ref.wandb_url})"
        )
    return ref


def _parsed(text: str) -> SweepRef | None:
    if _CONTROL_CHARS.search(text):
        raise UserError(f"sweep reference {text!r} holds a control character")
    path = Path(text)
    if path.is_dir():
        return SweepRef(text, path=path.resolve())
    if WANDB_REF.match(text) and not path.exists():
        entity, project, sweep_id = text.split("/")
        return SweepRef(text, entity=entity, project=project, sweep_id=sweep_id)
    return None


def no_sweep_at(ref: str | Path, what_else: str = "") -> UserError:
    """The one wording every verb uses for a sweep reference that is no sweep folder; a bare id
    (what the sweep's folder is named) gets its folder under the default root suggested."""
    guess = Path(DEFAULT_ROOT) / Path(ref).name
    if str(ref) != str(guess) and (guess / "sweep.json").is_file():
        hint = f"did you mean {guess}? (sweep create prints the sweep's folder)"
    else:
        hint = "create one with: sweepkit sweep create config/sweep_config.yaml"
    return UserError(f"no sweep folder at {ref}{what_else}; {hint}")
