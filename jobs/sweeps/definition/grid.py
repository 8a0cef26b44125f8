"""A grid sweep's points in the engine's order, any one of them by its index, without the engine.

W&B's grid search (``sweeps.grid_search.grid_search_next_runs``) lists every point of the product
(``list(itertools.product(...))``: 16 s and about 1 GB for a 10^7-point grid, on every call) and
hands out the first ones no run holds yet. ``GridOrder`` gives the same points in the same order
from their index alone, the last parameter varying fastest, so that a claim costs what the sweep's
runs cost, whatever the grid's size. What it follows of the engine (checked against it on generated
grids, ``tests/jobs/sweeps/test_grid_order.py``):

- the parameters: sorted by name at every level of nesting (``HyperParameterSet.from_config``);
  ``value:`` ones are in every point; ``int_uniform`` is ``range(min, max + 1)``, ``q_uniform`` is
  ``numpy.arange(min, max, q)``;
- a value's identity is its ``yaml_hash`` (YAML with sorted keys, an integral float as the int):
  values with the same hash are one grid value, at the place of the first, holding the last
  (``value_hash_lookup`` is a dict of the hashes); a run's dict value counts only the keys the
  grid's dict values have;
- a point is ``{name: {value: v}}``, nested parameters as nested dicts, in ``to_config``'s order.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

# the engine's name for a nested parameter (``HyperParameterSet.NESTING_DELIMITER``)
NESTING_DELIMITER = ".wbnest[599c28ca25da]."


def yaml_hash(value: Any) -> str:
    """``sweeps.grid_search.yaml_hash``: how the engine tells grid values apart."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 3e6 in a sweep file and 3000000 in a run's config are one value
    dumped = _dumped_number(value)
    if dumped is None:
        import yaml

        dumped = yaml.dump(value, default_flow_style=True, sort_keys=True)
    return hashlib.md5(dumped.encode("ascii")).hexdigest()


def _dumped_number(value: Any) -> str | None:
    """``yaml.dump(value)`` of a bool, int or float, as PyYAML's representer writes it (a plain
    scalar, then the document's end), without the emitter: ~40 us a value, which a grid of
    thousands of values pays at each agent's start. None for any other value."""
    kind = type(value)
    if kind is bool:
        text = "true" if value else "false"
    elif kind is int:
        text = str(value)
    elif kind is float:
        if value != value:
            text = ".nan"
        elif value in (float("inf"), float("-inf")):
            text = ".inf" if value > 0 else "-.inf"
        else:
            text = repr(value).lower()
            if "." not in text and "e" in text:
                text = text.replace("e", ".0e", 1)  # SafeRepresenter.represent_float
    else:
        return None
    return f"{text}\n...\n"


class _Values:
    """One parameter's grid values, deduplicated by hash, in the engine's order."""

    def __init__(self, values: list[Any]):
        self.index: dict[str, int] = {}
        self.values: list[Any] = []
        for value in values:
            digest = yaml_hash(value)
            if digest in self.index:
                self.values[self.index[digest]] = value  # the engine keeps the last
            else:
                self.index[digest] = len(self.values)
                self.values.append(value)
        dicts = [v for v in values if isinstance(v, dict)]
        # the engine strips a run's dict to these keys only if there are any
        self.known_keys = set().union(*dicts) or None
        # by (type, repr), as the engine memoises it: runs share values, and a hash is ~40 us
        self._memo: dict[tuple[type, str], int | None] = {}

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, j: int) -> Any:
        return self.values[j]

    def index_of(self, value: Any) -> int | None:
        if self.known_keys is not None and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k in self.known_keys}
        key = (type(value), repr(value))
        if key not in self._memo:
            self._memo[key] = self.index.get(yaml_hash(value))
        return self._memo[key]


class _IntRange:
    """``int_uniform``'s values, ``range(min, max + 1)``, none of them held in memory."""

    def __init__(self, low: int, high: int):
        self.range = range(low, high + 1)

    def __len__(self) -> int:
        return len(self.range)

    def __getitem__(self, j: int) -> Any:
        return self.range[j]

    def index_of(self, value: Any) -> int | None:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # the same hash as the int
        if type(value) is not int or value not in self.range:  # a bool's hash is not 1's
            return None
        return self.range.index(value)


class _QRange:
    """``q_uniform``'s values, ``numpy.arange(min, max, q)``: increasing, so each is its own."""

    def __init__(self, low: float, high: float, q: float):
        import numpy as np

        self.array = np.arange(low, high, q)

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, j: int) -> Any:
        return self.array[j].item()

    def index_of(self, value: Any) -> int | None:
        import numpy as np

        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        j = int(np.searchsorted(self.array, value))
        if j < len(self.array) and yaml_hash(self[j]) == yaml_hash(value):
            return j
        return None


def _axis(spec: Mapping[str, Any]) -> Any:
    if "values" in spec:
        return _Values(list(spec["values"]))
    if spec.get("distribution") == "q_uniform":
        return _QRange(spec["min"], spec["max"], spec.get("q", 1.0))
    return _IntRange(spec["min"], spec["max"])


def flat_specs(parameters: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(engine name, spec) of every parameter, in the engine's order."""
    for key, spec in sorted(parameters.items()):
        if isinstance(spec.get("parameters"), Mapping):
            yield from flat_specs(spec["parameters"], f"{prefix}{key}{NESTING_DELIMITER}")
        else:
            yield f"{prefix}{key}", spec


class GridOrder:
    """The points of a (validated) grid definition, by index, in the engine's order."""

    def __init__(self, definition: Mapping[str, Any]):
        self.names: list[str] = []  # every parameter, constants included
        self.constants: dict[str, Any] = {}
        self.axes: list[tuple[str, Any]] = []  # the swept ones: (name, values)
        for name, spec in flat_specs(definition.get("parameters") or {}):
            self.names.append(name)
            if "value" in spec and not {"values", "min", "max"} & set(spec):
                self.constants[name] = spec["value"]
            else:
                self.axes.append((name, _axis(spec)))
        self.size = 1
        for _, values in self.axes:
            self.size *= len(values)

    def point(self, i: int) -> dict[str, Any]:
        """The ``i``-th point (0-based) as the engine makes it: ``{name: {value: v}}``."""
        flat = dict(self.constants)
        for name, values in reversed(self.axes):  # the last parameter varies fastest
            i, j = divmod(i, len(values))
            flat[name] = values[j]
        ordered = {name: flat[name] for name in self.names}
        return {k: {"value": v} for k, v in renested(copy.deepcopy(ordered)).items()}

    def index_of(self, params: Mapping[str, Any]) -> int | None:
        """The index of the point a run's ``{name: {value: v}}`` holds, as the engine matches
        it (None: the run holds no point of this grid)."""
        i = 0
        for name, values in self.axes:
            top, *rest = name.split(NESTING_DELIMITER)
            value: Any = params
            for key in [top, "value", *rest]:
                if not isinstance(value, Mapping) or key not in value:
                    return None
                value = value[key]
            j = values.index_of(value)
            if j is None:
                return None
            i = i * len(values) + j
        return i

    def first_free(self, taken: Iterable[int], n: int) -> list[int]:
        """The first ``n`` indices not in ``taken`` (fewer at the grid's end)."""
        taken = set(taken)
        out: list[int] = []
        i = 0
        while len(out) < n and i < self.size:
            if i not in taken:
                out.append(i)
            i += 1
        return out


def renested(flat: dict[str, Any]) -> dict[str, Any]:
    """``HyperParameterSet.to_config``'s ``_renest``: nested names as nested dicts, in the
    order it makes them."""
    for k in sorted(flat):
        if NESTING_DELIMITER not in k:
            continue
        sub = flat
        *parents, last = k.split(NESTING_DELIMITER)
        for part in parents:
            if part not in sub:
                sub[part] = {}
            sub = sub[part]
            if not isinstance(sub, dict):
                raise ValueError(f"while nesting, found key {part} which conflicts with {k}")
        sub[last] = flat.pop(k)
    return flat
