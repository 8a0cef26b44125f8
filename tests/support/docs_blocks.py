"""The one reader of the documentation's fenced blocks (README.md and docs/*.md).

Every test that runs, renders or lints what a page shows finds its blocks here, so where a
command is documented (page, section) is known in one place. Conventions the pages follow:

- ```bash: a shell block a test runs here (tests/docs/test_commands.py names which test);
- a ```bash block right below a line a reader sees, "> Needs ...: the tests ...", needs a real
  cluster, the internet or a container engine; the line says what the tests do with it instead
  (render, parse, lint). Such a block's tag is "cluster". The info string holds the language
  alone: mkdocs does not render a fence whose info string has more words;
- ```text: what a command prints; ```yaml, ```python: files and programs a test uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```[ \t]*$", re.S | re.M)
NOTE = re.compile(r"^> Needs (?P<what>[^:\n]+): the tests (?P<instead>[^\n]+)$")


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root, e.g. "docs/slurm.md"
    section: str  # the "## " heading above the block, "(top)" before the first one
    lang: str  # "bash", "text", "yaml", "python" or "" (a diagram)
    tag: str  # "cluster" under a "> Needs ..." line, else ""
    body: str
    note: str | None  # the visible "> Needs ...: the tests ..." line right above, if any
    extra: str = ""  # words after the language in the info string (none are allowed)

    @property
    def commands(self) -> list[str]:
        return commands(self.body)


def pages() -> list[str]:
    """Every page the documentation consists of: the README first, then docs/ by name."""
    return ["README.md", *(f"docs/{p.name}" for p in sorted((ROOT / "docs").glob("*.md")))]


def text(page: str) -> str:
    return (ROOT / page).read_text()


def sections(page: str) -> dict[str, str]:
    """A page's "## " sections by heading; what precedes the first heading is "(top)"."""
    parts = re.split(r"^## (.+)$", text(page), flags=re.M)
    found = {"(top)": parts[0]}
    found.update({parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)})
    return found


def _blocks_of(page: str, section: str, chunk: str) -> list[Block]:
    found = []
    for match in FENCE.finditer(chunk):
        before = chunk[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        note = before if NOTE.match(before) else None
        lang, extra = match.group(1), match.group(2).strip()
        tag = "cluster" if note else ""
        found.append(Block(page, section, lang, tag, match.group(3), note, extra))
    return found


def blocks(
    page: str | None = None, section: str | None = None, lang: str | None = None
) -> list[Block]:
    """Fenced blocks, in page order, of one page (or all) and one section (or all)."""
    found = []
    for name in [page] if page else pages():
        for heading, chunk in sections(name).items():
            if section is None or heading == section:
                found += _blocks_of(name, heading, chunk)
    return [b for b in found if lang is None or b.lang == lang]


def commands(body: str) -> list[str]:
    """A shell block's command lines: comments (whole-line or after " #") and blanks dropped."""
    lines = [line.split(" #")[0].strip() for line in body.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]
