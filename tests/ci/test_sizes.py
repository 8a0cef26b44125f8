"""The size limits of docs/development.md, by an AST walk (in-process): a package module (train/,
jobs/, sweepkit/, bench/) at most 400 lines and each of its functions at most 60 (from the ``def``
line to the last line of the body, nested functions counted in their outer one too); a Python
file under tests/ at most 500 lines. A failure lists every file and function over its limit."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("train", "jobs", "sweepkit", "bench")
PACKAGE_MODULE_LINES = 400
FUNCTION_LINES = 60
TEST_MODULE_LINES = 500


def python_files(top: Path) -> Iterator[Path]:
    # os.walk does not follow links: sweepkit/train and sweepkit/jobs are links to train/ and jobs/,
    # which are walked once, as themselves.
    for folder, _, files in os.walk(top):
        for name in sorted(files):
            if name.endswith(".py"):
                yield Path(folder) / name


def package_files() -> list[Path]:
    return [path for top in PACKAGES for path in python_files(ROOT / top)]


def shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def long_modules(paths: list[Path], limit: int) -> list[str]:
    found = []
    for path in paths:
        lines = len(path.read_text().splitlines())
        if lines > limit:
            found.append(f"{shown(path)}: {lines} lines (limit {limit})")
    return found


def long_functions(paths: list[Path], limit: int) -> list[str]:
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > limit:
                    where = f"{shown(path)}:{node.lineno} {node.name}"
                    found.append(f"{where}: {lines} lines (limit {limit})")
    return found


def test_the_walk_sees_every_package_once() -> None:
    paths = package_files()
    assert len(paths) == len({p.resolve() for p in paths}), "a package file walked twice"
    for top in ("train", "jobs"):
        assert any(p.parts[len(ROOT.parts)] == top for p in paths), f"no file of {top}/ walked"


def test_the_checks_find_what_is_over_the_limit(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(59))
    (tmp_path / "m.py").write_text(f"def fits():\n{body}\n\n\ndef over():\n{body}\n    x = 1\n")
    path = tmp_path / "m.py"
    messages = long_functions([path], FUNCTION_LINES)
    assert [m.split(": ", 1)[1] for m in messages] == ["61 lines (limit 60)"]
    assert messages[0].endswith("over: 61 lines (limit 60)")
    assert long_modules([path], 123) == [] and long_modules([path], 122) != []


def test_package_modules_are_at_most_400_lines() -> None:
    found = long_modules(package_files(), PACKAGE_MODULE_LINES)
    assert not found, "package modules over the limit; split them by concern:\n" + "\n".join(found)


def test_package_functions_are_at_most_60_lines() -> None:
    found = long_functions(package_files(), FUNCTION_LINES)
    assert not found, "package functions over the limit; split them:\n" + "\n".join(found)


def test_test_modules_are_at_most_500_lines() -> None:
    found = long_modules(list(python_files(ROOT / "tests")), TEST_MODULE_LINES)
    assert not found, "test modules over the limit; split them by concern:\n" + "\n".join(found)
