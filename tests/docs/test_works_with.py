"""The "Works with" promise: docs/sweeps.md's table names each tested stack with the versions
constraints.txt pins (what tests/compat/ runs), and README's "Works with" names the same
frameworks, no more (a stack without a test is not listed)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pairs = (line.split("==") for line in lines if "==" in line and not line.startswith("#"))
    return {name.lower().replace("_", "-"): version for name, version in pairs}


def table_rows() -> list[list[tuple[str, str]]]:
    """Each row's "Tested with" cell of docs/sweeps.md's table, as (package, version) pairs."""
    section = (ROOT / "docs" / "sweeps.md").read_text().split("## Works with", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    cells = [row.rstrip(" |").rsplit("|", 1)[1] for row in rows[1:]]  # rows[0]: the header
    return [[pair(item) for item in cell.split(",")] for cell in cells]


def pair(item: str) -> tuple[str, str]:
    package, version = item.split()
    return package, version


def test_every_version_in_the_table_is_the_pinned_one() -> None:
    pinned = pins()
    rows = table_rows()
    assert len(rows) >= 6
    for row in rows:
        for package, version in row:
            assert package in pinned, f"{package} is not pinned in constraints.txt"
            assert f"{pinned[package]}.".startswith(f"{version}."), (package, version)


def test_readme_names_the_tested_frameworks_only() -> None:
    readme = (ROOT / "README.md").read_text()
    works_with = re.search(r"\*\*Works with\*\*(.+?)\n\n", readme, re.S)
    assert works_with, "README.md: no **Works with** paragraph"
    # the packages it names, in backticks: `lightning`, `hydra-core`, ...
    named = set(re.findall(r"`([a-z][a-z0-9-]*)`", works_with.group(1)))
    assert named == {row[0][0] for row in table_rows()}  # each cell's first package
