"""The YAML files the kit ships, found by name from any folder.

In a checkout they are its ``config/``; an installed wheel carries the same files as
``sweepkit/config/`` (package data, through the link ``sweepkit/config -> ../config``). Either way
they sit beside the trainer's package: ``train/config/shipped.py`` -> ``<kit>/config``. A preset
(``--config digits``) is ``config/presets/digits.yaml``; a sweep file (``sweepkit sweep create
digits_grid``) is ``config/sweeps/digits_grid.yaml``.
"""

from __future__ import annotations

from pathlib import Path

from sweepkit.train.errors import UserError

KIT_CONFIG = Path(__file__).resolve().parents[2] / "config"
PRESETS = KIT_CONFIG / "presets"
SWEEPS = KIT_CONFIG / "sweeps"


def is_name(text: str) -> bool:
    """A bare name (``digits``), not a path: no folder and no file suffix."""
    return bool(text) and "/" not in text and "." not in text


def names(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def shipped(text: str, folder: Path, what: str, flag: str) -> Path:
    """``text`` as given when that file exists; a bare name as the kit's file of that name in
    ``folder``; else one line naming what there is."""
    path = Path(text)
    if path.is_file() or not is_name(text):
        return path
    named = folder / f"{text}.yaml"
    if named.is_file():
        return named
    raise UserError(
        f"{flag} {text}: no file {text} here and no {what} of that name in the kit "
        f"(the kit's: {', '.join(names(folder)) or 'none'}); give a YAML file's path or one of those names"
    )


def preset_path(text: str) -> Path:
    """A trainer preset (``--config``): a YAML file's path, or the name of one of the kit's presets."""
    return shipped(text, PRESETS, "preset", "--config")


def sweep_path(text: str) -> Path:
    """A sweep definition: a YAML file's path, or the name of one of the kit's example sweeps."""
    return shipped(text, SWEEPS, "example sweep", "sweep definition")
