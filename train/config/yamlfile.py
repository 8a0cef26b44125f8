"""Reading a YAML file for the user, with one-line errors: missing, a folder, unreadable, not
UTF-8, or not valid YAML at line N. Shared with sweep definitions (jobs/sweeps)."""

from __future__ import annotations

from pathlib import Path

import yaml

from sweepkit.train.errors import UserError


def folder_hint(folder: Path) -> str:
    """How to fix passing a folder where a YAML file was wanted, naming a file inside it."""
    try:
        names = sorted(p.name for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    except OSError:
        names = []
    if names:
        return f"pass one of its YAML files, e.g. {folder / names[0]}"
    return "pass the path of a YAML file, not a folder"


def read_yaml_text(path: Path, what: str, suffix: str = "") -> str:
    """The text of the YAML file ``path``, or a one-line UserError, ``what`` first and ``suffix``
    last, that says why it cannot be read: missing, a folder, unreadable, or not UTF-8 text."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{what} not found; check the path{suffix}") from None
    except IsADirectoryError:
        raise UserError(f"{what} is a folder; {folder_hint(path)}{suffix}") from None
    except OSError as err:
        raise UserError(
            f"{what} cannot be read: {err.strerror or err}; check its permissions{suffix}"
        ) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UserError(
            f"{what} is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
            f"save it as UTF-8 YAML{suffix}"
        ) from None


def yaml_error_position(err: yaml.YAMLError, text: str) -> tuple[str, str]:
    """(" line N" or "", one-line problem) for a PyYAML error: scanner and parser errors carry a
    mark; a reader error (a control character) carries only an offset into ``text``."""
    mark = getattr(err, "problem_mark", None)
    if mark is not None:
        return f" line {mark.line + 1}", str(getattr(err, "problem", None) or "not valid YAML")
    if isinstance(err, yaml.reader.ReaderError):
        line = text.count("\n", 0, max(err.position, 0)) + 1
        char = err.character if isinstance(err.character, int) else ord(err.character)
        return f" line {line}", f"control character #x{char:04x} is not allowed"
    return "", str(err).splitlines()[0] if str(err) else "not valid YAML"
