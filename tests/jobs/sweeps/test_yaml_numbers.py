"""YAML 1.2 numbers in every YAML file the kit reads, as W&B reads a sweep file.

``wandb sweep`` reads the file with PyYAML (YAML 1.1, where ``1e-5`` is a string) and sends it
re-written; W&B's server reads that as YAML 1.2, where ``1e-5`` is a float. The kit's one reader
(``sweepkit.train.config.load_yaml``) gives the values the runs get under W&B; the conformance
module (tests/conformance/test_yaml.py) checks it against W&B's own client code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sweep_fixtures import create, sweepkit, views

from sweepkit.jobs.slurm.profiles.load import read_profiles
from sweepkit.jobs.sweeps import store
from sweepkit.jobs.sweeps.definition import build_command, load_definition
from sweepkit.train.config import build_config, dump_yaml, load_yaml

SWEEP = """\
program: train.py
method: random
metric: {name: loss, goal: minimize}
parameters:
  lr: {min: 1e-5, max: 1e-1}
  wd: {values: [1e-1, 1e-3]}
  scale: {distribution: log_uniform_values, min: 1E-6, max: 1E3}
"""


def test_sweep_file_exponents_are_floats_and_min_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("")
    (tmp_path / "sweep.yaml").write_text(SWEEP)
    definition = load_definition(tmp_path / "sweep.yaml", program=False)
    params = definition["parameters"]
    assert params["lr"] == {"min": 1e-5, "max": 0.1}
    assert params["wd"]["values"] == [0.1, 0.001]
    assert all(type(v) is float for v in params["wd"]["values"])
    assert (params["scale"]["min"], params["scale"]["max"]) == (1e-6, 1000.0)
    argv = build_command(definition, {"wd": {"value": params["wd"]["values"][0]}}, Path("a"))
    assert argv[-1] == "--wd=0.1"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # YAML 1.2's number forms YAML 1.1 leaves strings
        ("1e-5", 1e-5),
        ("1E3", 1000.0),
        ("+1e5", 1e5),
        ("1.0e5", 1e5),
        ("0o17", "0o17"),  # W&B's client quotes a string that starts with 0
        ("0e5", "0e5"),
        # what YAML 1.1 resolves: W&B's client resolves it before its server sees the file
        ("yes", True),
        ("Off", False),
        ("010", 8),
        ("1:30", 90),
        ("0x1F", 31),
        ("1_000", 1000),
        (".inf", float("inf")),
        # quotes keep a string (W&B's re-writing would drop them: a documented difference)
        ('"1e-5"', "1e-5"),
        ("'yes'", "yes"),
        ("1e-5x", "1e-5x"),
    ],
)
def test_one_reader_for_every_file(text: str, value: Any) -> None:
    read = load_yaml(f"v: {text}\n")["v"]
    assert read == value and type(read) is type(value)


@pytest.mark.parametrize("value", ["1e-5", "1E3", "0o17", "yes", "010", 1e-5, 1000.0, True, 8])
def test_what_the_kit_writes_reads_back_identically(value: Any) -> None:
    data = {"v": value, "list": [value]}
    back = load_yaml(dump_yaml(data, sort_keys=False))
    assert back == data and type(back["v"]) is type(value)


def test_sweep_folder_keeps_strings_that_look_like_numbers(tmp_path: Path) -> None:
    definition = {
        "method": "grid",
        "command": ["${env}", "${interpreter}", "p.py", "${args}"],
        "parameters": {"tag": {"values": ["1e-5", "010", "yes"]}, "lr": {"values": [1e-5]}},
    }
    sweep = store.create_sweep(definition, tmp_path / "sweeps", source="test")
    reopened = store.open_sweep(sweep.path)
    assert reopened.definition["parameters"] == definition["parameters"]


def test_trainer_config_and_cluster_profile_read_exponents_as_numbers(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("learning_rate: 5E-3\nweight_decay: 1e-4\n")
    cfg = build_config([str(tmp_path / "c.yaml")])
    assert (cfg.learning_rate, cfg.weight_decay) == (0.005, 0.0001)
    (tmp_path / "cluster.yaml").write_text("profiles:\n  p: {partition: gpu, scale: 1e-3}\n")
    assert read_profiles(tmp_path / "cluster.yaml")["p"]["scale"] == 0.001


SEEN_PROGRAM = r"""
import json, os, sys, wandb
run = wandb.init()
seen = {"argv": sys.argv[1:], "types": {k: type(v).__name__ for k, v in run.config.items()}}
open(os.path.join(os.environ["SWEEPKIT_RUN_DIR"], "seen.json"), "w").write(json.dumps(seen))
run.log({"loss": 1.0})
run.finish()
"""


@pytest.mark.system
def test_exponent_values_reach_the_program_as_floats(tmp_path: Path) -> None:
    import json

    (tmp_path / "seen.py").write_text(SEEN_PROGRAM)
    (tmp_path / "sweep.yaml").write_text(
        "program: seen.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\n"
        "parameters:\n  lr: {values: [1e-1, 1e-3]}\n"
    )
    sweep = create(tmp_path, tmp_path / "sweep.yaml")
    result = sweepkit("agent", sweep, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    seen = [json.loads((Path(v.run_dir) / "seen.json").read_text()) for v in views(sweep, tmp_path)]
    assert sorted(s["argv"][0] for s in seen) == ["--lr=0.001", "--lr=0.1"]
    assert all(s["types"]["lr"] == "float" for s in seen)
