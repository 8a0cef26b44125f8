"""The reader of the files the kit writes (``load_kit_yaml``: a sweep folder's sweep.yaml, parsed
by libyaml) gives ``load_yaml``'s values, for any values the kit writes and for the plain scalars
YAML 1.1 and 1.2 read differently, and refuses a duplicate key alike."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from sweepkit.train.config import DuplicateKeyError, dump_yaml, load_kit_yaml, load_yaml

plain = st.from_regex(
    r"\A([-+]?[0-9]{1,3}(\.[0-9]{0,3})?([eE][-+]?[0-9]{1,3})?|0o[0-7]{1,3}|0x[0-9a-f]{1,3}"
    r"|0[0-7]{1,3}|[1-9]:[0-5][0-9]|yes|No|on|OFF|null|~|\.inf|-\.Inf|\.nan|1_000|e5|1e5x)\Z"
)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text() | plain
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types (NaN equal to NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@given(value=values)
def test_what_the_kit_writes_reads_back_alike(value: Any) -> None:
    text = dump_yaml({"v": value}, sort_keys=False)
    assert same(load_kit_yaml(text), load_yaml(text))


@given(items=st.lists(plain, min_size=1, max_size=5))
def test_plain_scalars_read_alike(items: list[str]) -> None:
    text = "parameters:\n  p:\n    values:\n" + "".join(f"    - {item}\n" for item in items)
    assert same(load_kit_yaml(text), load_yaml(text))


def test_a_duplicate_key_is_refused_alike() -> None:
    text = "method: grid\nparameters: {}\nmethod: random\n"
    with pytest.raises(DuplicateKeyError) as kit:
        load_kit_yaml(text)
    with pytest.raises(DuplicateKeyError) as user:
        load_yaml(text)
    assert str(kit.value) == str(user.value)


def test_libyaml_parses_it_here() -> None:
    """The point of it: this environment's PyYAML has libyaml (else it is load_yaml's parser)."""
    assert yaml.__with_libyaml__
