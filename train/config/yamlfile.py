"""Reading a YAML file for the user, with one-line errors: missing, a folder, unreadable, not
UTF-8, or not valid YAML at line N; and the one reader and writer of YAML values every file the
kit reads goes through (trainer configs, sweep definitions, cluster profiles, a sweep folder's
sweep.yaml). Shared with jobs/.

Numbers are read as W&B reads a sweep file. ``wandb sweep`` loads the file with PyYAML (YAML 1.1)
and sends it on re-written by PyYAML; W&B's server reads that text as YAML 1.2. A plain scalar
that YAML 1.1 leaves a string but YAML 1.2 reads as a number (``1e-5``, ``1E3``, ``+1e5``,
``1.0e5``, ``0o17``) is written back unquoted, so it reaches the runs as that number. Everything
YAML 1.1 already resolves (``yes``/``no``/``on``/``off`` booleans, ``010`` octal, ``1:30``
sexagesimal) the client resolves before the server sees it, so it stays as YAML 1.1 reads it. The
reader below is exactly that: PyYAML's YAML 1.1 resolver, then, for a plain scalar it leaves a
string, ruamel.yaml's YAML 1.2 resolver, except for a scalar that starts with ``0`` (``0o17``,
``0e5``): the client writes those quoted (``NonOctalStringDumper`` in
``wandb/apis/public/sweeps.py``), so they stay strings. One difference is deliberate: a quoted
scalar (``"1e-5"``) stays a string here, where W&B's re-writing drops the quotes.

A key given twice in one mapping is refused (``DuplicateKeyError``, naming the key and both
lines): PyYAML keeps the last silently, so ``method: grid`` then ``method: random`` made a random
sweep with no end. A merge (``<<: *base``) may still override a key, as YAML allows.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, ScalarNode

from sweepkit.train.errors import UserError

STR_TAG = "tag:yaml.org,2002:str"
NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
# a scalar YAML 1.1 leaves a string and YAML 1.2 reads as a number: built by YAML 1.2's
# constructor (PyYAML's would read -08 as octal)
YAML12_NUMBER_TAG = "tag:sweepkit,2026:yaml-1.2-number"


@cache
def _yaml12_resolver() -> Any:
    from ruamel.yaml.resolver import VersionedResolver

    return VersionedResolver(version=(1, 2))


@cache
def _yaml12_loader() -> Any:
    from ruamel.yaml import YAML

    loader = YAML(typ="safe", pure=True)
    loader.version = (1, 2)
    return loader


def _yaml12_number(loader: Any, node: ScalarNode) -> Any:
    return _yaml12_loader().load(node.value)


def _with_yaml12_numbers(tag: str, kind: Any, value: Any, implicit: Any) -> str:
    """``tag`` (PyYAML's YAML 1.1 reading), or YAML 1.2's number tag for a plain scalar that YAML
    1.1 leaves a string."""
    # W&B's client quotes a string that starts with 0 (its NonOctalStringDumper): still a string
    leading_zero = isinstance(value, str) and value.startswith("0") and len(value) > 1
    if kind is ScalarNode and implicit[0] and tag == STR_TAG and not leading_zero:
        from ruamel.yaml.nodes import ScalarNode as Yaml12Scalar

        tag12 = str(_yaml12_resolver().resolve(Yaml12Scalar, value, (True, False)))
        if tag12 in NUMBER_TAGS:
            return YAML12_NUMBER_TAG
    return tag


MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(ConstructorError):
    """A key given twice in one mapping; its ``problem`` names the key and both lines and how to
    fix it, its ``problem_mark`` is the second. Callers print ``f"{file}: {err}"``: one line."""

    def __str__(self) -> str:
        return str(self.problem)


if TYPE_CHECKING:  # what a _KitReading is mixed into (at run time: SafeLoader or CSafeLoader)
    _Loader = yaml.SafeLoader
else:
    _Loader = object


class _KitReading(_Loader):
    """Numbers as W&B reads them and duplicate keys refused (the module's docstring), over
    PyYAML's safe loader, pure Python or libyaml's."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        return _with_yaml12_numbers(super().resolve(kind, value, implicit), kind, value, implicit)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            self._refuse_duplicate_keys(node)
        return super().construct_mapping(node, deep=deep)

    def _refuse_duplicate_keys(self, node: MappingNode) -> None:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue  # merged keys may be overridden: checked where they are written
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first_line.get(key)
            except TypeError:
                continue  # an unhashable key: the safe constructor's own error names it
            line = key_node.start_mark.line + 1
            if seen is not None:
                raise DuplicateKeyError(
                    None,
                    None,
                    f"duplicate key {key!r} at lines {seen} and {line} (a YAML reader keeps "
                    "the last silently); keep one",
                    key_node.start_mark,
                )
            first_line[key] = line


class KitLoader(_KitReading, yaml.SafeLoader):
    """PyYAML's safe loader (pure Python: its syntax errors quote the line), the kit's reading."""


KitLoader.add_constructor(YAML12_NUMBER_TAG, _yaml12_number)


@cache
def _kit_c_loader() -> Any:
    """The kit's reading over libyaml's parser (PyYAML's CSafeLoader); KitLoader without it."""
    base = getattr(yaml, "CSafeLoader", None)
    if base is None:
        return KitLoader
    loader: type[yaml.SafeLoader] = type("KitCLoader", (_KitReading, base), {})
    loader.add_constructor(YAML12_NUMBER_TAG, _yaml12_number)
    return loader


def load_kit_yaml(text: str) -> Any:
    """A file the kit wrote (a sweep folder's sweep.yaml): ``load_yaml``'s values, parsed by
    libyaml where PyYAML has it, about 4x less CPU (0.16 s against 0.04 s for a 6,700-line grid
    definition, read at each agent's start). Its syntax errors are worded as libyaml words them,
    without the quoted line: for the files a user writes, ``load_yaml``."""
    return yaml.load(text, Loader=_kit_c_loader())  # noqa: S506 - a SafeLoader


class KitDumper(yaml.SafeDumper):
    """PyYAML's safe dumper with the loader's reading: a string the loader would take for a
    number (``'1e-5'``) is quoted, so whatever the kit writes reads back identically."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        return _with_yaml12_numbers(super().resolve(kind, value, implicit), kind, value, implicit)


def load_yaml(text: str) -> Any:
    """The values of YAML ``text`` as W&B reads a sweep file (see the module's docstring); raises
    ``yaml.YAMLError`` (give it to ``yaml_error_position``) on bad syntax."""
    return yaml.load(text, Loader=KitLoader)  # noqa: S506 - a SafeLoader


def dump_yaml(data: Any, **kwargs: Any) -> str:
    """``data`` as YAML that ``load_yaml`` reads back identically (``yaml.safe_dump``'s options)."""
    return str(yaml.dump(data, Dumper=KitDumper, **kwargs))


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
