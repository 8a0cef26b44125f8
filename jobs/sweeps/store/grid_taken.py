"""The grid points a sweep's runs hold, kept compactly in a snapshot's head, so that a fresh grid
claim reads the head and the journal after it, never the snapshot's body.

Every run holds its grid point whatever its state (as in W&B's grid search), so the points taken
are a pure function of the runs' first claims: the head keeps those of the runs it leaves unread
(``GridHead``), and a claim adds those of the runs it read (the open ones and the journal's tail
after the snapshot). Agents claim the first free points, so the taken indices are nearly one
block from 0: kept as sorted, disjoint ``[start, end)`` ranges (one pair at 20,000 runs in order).

A head's points are those of one grid order: the head names it by a fingerprint of the definition's
parameters (``fingerprint``), and a claim whose grid differs reads every run instead.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# (a grid's fingerprint, the index of the point a run (a fold.FoldedRun) holds in it, or None)
GridIndex = tuple[str, Callable[[Any], int | None]]


class GridTaken:
    """A set of grid indices as sorted, disjoint, non-adjacent ``[start, end)`` ranges."""

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()):
        self.ranges: list[tuple[int, int]] = list(ranges)
        self._starts = [start for start, _ in self.ranges]

    @classmethod
    def of(cls, indices: Iterable[int], base: GridTaken | None = None) -> GridTaken:
        """The indices, with ``base``'s if given, as ranges."""
        points = sorted(set(indices))
        ranges: list[tuple[int, int]] = []
        merged = sorted([*(base.ranges if base else []), *((i, i + 1) for i in points)])
        for start, end in merged:
            if ranges and start <= ranges[-1][1]:
                ranges[-1] = (ranges[-1][0], max(end, ranges[-1][1]))
            else:
                ranges.append((start, end))
        return cls(ranges)

    def __contains__(self, index: object) -> bool:
        if not isinstance(index, int):
            return False
        at = bisect.bisect_right(self._starts, index) - 1
        return at >= 0 and index < self.ranges[at][1]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GridTaken) and self.ranges == other.ranges

    def __repr__(self) -> str:
        return f"GridTaken({self.ranges})"

    def __len__(self) -> int:
        return sum(end - start for start, end in self.ranges)

    def first_free(self, n: int, size: int) -> list[int]:
        """The first ``n`` indices below ``size`` not taken: ranges skipped whole."""
        out: list[int] = []
        i = 0
        for start, end in self.ranges:
            while i < min(start, size) and len(out) < n:
                out.append(i)
                i += 1
            if len(out) >= n or i >= size:
                return out
            i = max(i, end)
        out.extend(range(i, min(size, i + n - len(out))))
        return out

    def to_doc(self) -> list[int]:
        """Flat ``[start, end, start, end, ...]`` (JSON)."""
        return [bound for pair in self.ranges for bound in pair]

    @classmethod
    def from_doc(cls, doc: list[Any]) -> GridTaken:
        bounds = [int(b) for b in doc]
        if len(bounds) % 2:
            raise ValueError("grid ranges: an odd number of bounds")
        return cls.of((), cls(zip(bounds[::2], bounds[1::2], strict=True)))


@dataclass(frozen=True)
class GridHead:
    """What a snapshot's head keeps of a grid sweep's unread runs: the points they hold, in the
    grid order named by ``fingerprint``."""

    fingerprint: str
    taken: GridTaken


def fingerprint(definition: Mapping[str, Any]) -> str:
    """A grid order's name: a digest of the definition's parameters (the order is theirs alone)."""
    text = json.dumps(definition.get("parameters") or {}, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def head_doc(runs: Iterable[Any], grid: GridIndex | None) -> list[Any] | None:
    """The head's ``grid`` entry for ``runs`` (None: not a grid sweep)."""
    if grid is None:
        return None
    name, index_of = grid
    taken = GridTaken.of(i for run in runs if (i := index_of(run)) is not None)
    return [name, taken.to_doc()]


def from_head_doc(doc: Any) -> GridHead | None:
    """The head's ``grid`` entry read back (None: the head keeps none)."""
    if doc is None:
        return None
    name, bounds = doc
    return GridHead(str(name), GridTaken.from_doc(list(bounds)))
