"""The values of a sweep file, against what W&B makes of the same file.

The oracle is W&B's own path from file to server, as far as it runs in this environment:
``wandb sweep`` reads the file with ``load_sweep_config`` (``wandb/sdk/launch/sweeps/utils.py``,
PyYAML, YAML 1.1) and ``_upsert_sweep`` (``wandb/apis/public/sweeps.py``) writes it to the text it
sends (``NonOctalStringDumper``); both run here unchanged, only the GraphQL call is replaced by a
recorder of what it would send (W&B's server cannot be reached from a test). W&B's server reads
that text as YAML 1.2: here ruamel.yaml's YAML 1.2 safe loader stands for it. The kit's one YAML
reader (``sweepkit.train.config.load_yaml``) must give the values that chain gives, for every
plain scalar Hypothesis writes in a sweep file's ``values``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sweepkit.jobs.sweeps.definition import load_definition
from sweepkit.train.config import load_yaml

# plain scalars in the shapes YAML 1.1 and 1.2 read differently, and some they agree on
numbers = st.from_regex(r"\A[-+]?[0-9]{1,3}(\.[0-9]{0,3})?([eE][-+]?[0-9]{1,3})?\Z")
others = st.from_regex(r"\A(0o[0-7]{1,3}|0x[0-9a-fA-F]{1,3}|0[0-7]{1,3}|[1-9]:[0-5][0-9])\Z")
words = st.sampled_from(
    ["yes", "No", "on", "OFF", "true", "False", "null", "~", ".inf", "-.Inf", ".nan", "1_000",
     "abc", "1e5x", "e5", "1.2.3", "0", "-0", "+12"]
)  # fmt: skip
scalars = st.one_of(numbers, others, words)


def sweep_text(items: list[str]) -> str:
    listed = "".join(f"      - {item}\n" for item in items)
    return f"program: train.py\nmethod: grid\nparameters:\n  p:\n    values:\n{listed}"


class Recorder:
    """Stands in for W&B's API object: keeps the sweep text the GraphQL call would send."""

    settings = {"entity": "entity", "project": "project"}
    sent: list[str] = []

    class _service_api:  # noqa: N801 - the attribute W&B's code calls
        @staticmethod
        def execute_graphql(mutation: str, variables: dict[str, Any]) -> Any:
            Recorder.sent.append(variables["config"])
            return {"upsertSweep": {"sweep": {"name": "x"}, "configValidationWarnings": []}}


def wandb_reads(path: Path) -> Any:
    """The sweep as W&B's server gets it: client read, client write, YAML 1.2 read."""
    from ruamel.yaml import YAML
    from wandb.apis.public.sweeps import _upsert_sweep
    from wandb.sdk.launch.sweeps.utils import load_sweep_config

    config = load_sweep_config(str(path))
    Recorder.sent.clear()
    _upsert_sweep(Recorder(), config)  # type: ignore[arg-type]
    server = YAML(typ="safe", pure=True)
    server.version = (1, 2)
    return server.load(Recorder.sent[-1])


def same(kit: Any, oracle: Any) -> bool:
    if isinstance(kit, float) and isinstance(oracle, float) and math.isnan(kit):
        return math.isnan(oracle)
    if isinstance(kit, list) and isinstance(oracle, list):
        return len(kit) == len(oracle) and all(map(same, kit, oracle))
    return bool(kit == oracle) and type(kit) is type(oracle)


def check(path: Path, items: list[str]) -> None:
    path.write_text(sweep_text(items))
    oracle = wandb_reads(path)["parameters"]["p"]["values"]
    kit = load_yaml(path.read_text())["parameters"]["p"]["values"]
    assert same(kit, oracle), (items, kit, oracle)


@pytest.mark.parametrize(
    "items",
    [
        ["1e-1", "1e-3"],  # reach the runs as floats
        ["1E3", "+1e5", "1.0e5", "-2E-2"],
        ["yes", "off", "010", "1:30", "0x1F"],  # YAML 1.1's reading, which W&B's client applies
        ["0o17", "0e5", "012.5"],  # W&B's client quotes a string that starts with 0
    ],
)
def test_values_as_wandb_reads_them(tmp_path: Path, items: list[str]) -> None:
    check(tmp_path / "sweep.yaml", items)


def test_min_written_as_an_exponent_is_a_number_to_both(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "program: train.py\nmethod: random\nparameters:\n"
        "  lr: {distribution: log_uniform_values, min: 1e-5, max: 1e-1}\n"
    )
    (tmp_path / "train.py").write_text("")
    oracle = wandb_reads(path)["parameters"]["lr"]
    assert load_definition(path)["parameters"]["lr"] == oracle
    assert (oracle["min"], oracle["max"]) == (1e-5, 0.1)


@given(items=st.lists(scalars, min_size=1, max_size=6))
def test_any_plain_scalar_as_wandb_reads_it(tmp_path_factory: Any, items: list[str]) -> None:
    check(tmp_path_factory.mktemp("sweep") / "sweep.yaml", items)
