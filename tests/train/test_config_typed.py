"""The typed Config against SCHEMA, and the pure config helpers (in process, no files but tmp)."""

from __future__ import annotations

import dataclasses
import types
import typing

import pytest
import yaml

from sweepkit.train.config import (
    SCHEMA,
    Config,
    build_config,
    coerce,
    flatten,
    nest,
    yaml_error_position,
)
from sweepkit.train.config.typed import SECTIONS
from sweepkit.train.errors import UserError

PYTHON_TYPE = {int: int, float: float, bool: bool, str: str, list: tuple}


def _typed_fields() -> dict[str, typing.Any]:
    """dotted key -> the annotation of its dataclass field"""
    out: dict[str, typing.Any] = {}
    for name, hint in typing.get_type_hints(Config).items():
        if name == "sources":
            continue
        if name in SECTIONS:
            for leaf, sub in typing.get_type_hints(SECTIONS[name]).items():
                out[f"{name}.{leaf}"] = sub
        else:
            out[name] = hint
    return out


def test_config_has_one_typed_field_per_schema_key_in_schema_order():
    hints = _typed_fields()
    assert list(hints) == list(SCHEMA)
    for key, hint in hints.items():
        spec = SCHEMA[key]
        if spec.choices:
            assert typing.get_origin(hint) is typing.Literal, key
            assert typing.get_args(hint) == spec.choices, key
            continue
        optional = isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)
        assert optional == spec.nullable, key
        if optional:
            (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
        assert (typing.get_origin(hint) or hint) is PYTHON_TYPE[spec.type], key


def test_defaults_build_a_frozen_config_whose_flat_view_is_the_schema_defaults(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    (tmp_path / "empty.yaml").write_text("")
    cfg = build_config(base=tmp_path / "empty.yaml")
    assert cfg.flat() == {key: spec.default for key, spec in SCHEMA.items()}
    assert cfg.checkpoint.keep == SCHEMA["checkpoint.keep"].default
    assert cfg.wandb.tags == () and cfg["wandb.tags"] == []
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.batch_size = 3  # type: ignore[misc]
    assert all(source == "default" for source in cfg.sources.values())


def test_nested_round_trips_through_yaml_and_keeps_the_group_order():
    cfg = build_config(base=None, sets=["wandb.tags=[a, b]", "checkpoint.keep=3"])
    nested = cfg.nested()
    assert list(nested)[-2:] == ["checkpoint", "wandb"]
    assert nested["wandb"]["tags"] == ["a", "b"] and nested["checkpoint"]["keep"] == 3
    assert yaml.safe_load(yaml.safe_dump(nested, sort_keys=False)) == nested
    again = build_config(base=None, agent_overrides=nested)
    assert again == cfg


def test_flatten_and_nest_are_inverse_and_leaves_stay_whole():
    data = {"a": 1, "g": {"x": 2, "h": {"y": 3}}, "m": {"k": 1}}
    flat = flatten(data, leaves={"m"})
    assert flat == {"a": 1, "g.x": 2, "g.h.y": 3, "m": {"k": 1}}
    assert nest(flatten(data)) == data


def test_coerce_converts_and_refuses_in_one_line():
    assert coerce("learning_rate", "1e-3", "x") == 0.001
    assert coerce("batch_size", 16.0, "x") == 16
    assert coerce("compile", "off", "x") is False
    assert coerce("wandb.tags", "a, b,", "x") == ["a", "b"]
    assert coerce("wandb.entity", None, "x") is None
    with pytest.raises(UserError, match=r"^batch_size=True from x: expected an integer >= 1$"):
        coerce("batch_size", True, "x")
    with pytest.raises(UserError, match=r"^gamma=0 from x: expected a number > 0 and <= 1$"):
        coerce("gamma", 0, "x")


def test_yaml_error_position_names_the_line_of_a_scanner_and_a_reader_error():
    text = "a: 1\nb: [1, 2\n"
    with pytest.raises(yaml.YAMLError) as err:
        yaml.safe_load(text)
    where, problem = yaml_error_position(err.value, text)
    assert where == " line 3" and problem
    text = "a: 1\nb: \x07\n"
    with pytest.raises(yaml.YAMLError) as err:
        yaml.safe_load(text)
    assert yaml_error_position(err.value, text) == (
        " line 2",
        "control character #x0007 is not allowed",
    )
