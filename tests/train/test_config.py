"""Config layering, typing and every error path (train/config/, python -m sweepkit.train)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sweepkit.train.config import SCHEMA, build_config, parse_agent_args
from sweepkit.train.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "config" / "config.yaml"


def write(path: Path, data: dict) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_base_config_reproduces_the_usual_scripts_experiment_with_fixes():
    cfg = build_config(base=BASE)
    assert (cfg.model_name, cfg.image_size, cfg.pretrained) == ("resnet50", 224, True)
    assert (cfg.optimizer, cfg.learning_rate, cfg.batch_size, cfg.num_epochs) == (
        "adam",
        5e-4,
        128,
        10,
    )
    assert cfg.loader == "device" and cfg.precision == "bf16"  # defect 9
    assert cfg.sources["learning_rate"] == str(BASE)


def test_every_shipped_yaml_validates():
    for preset in sorted((ROOT / "config" / "presets").glob("*.yaml")):
        build_config([str(preset)], base=BASE)
    # every schema key is documented in config.yaml (nested groups flattened)
    documented = yaml.safe_load(BASE.read_text())
    flat = {f"{k}.{kk}" for k, v in documented.items() if isinstance(v, dict) for kk in v}
    flat |= {k for k, v in documented.items() if not isinstance(v, dict)}
    assert flat == set(SCHEMA)


def test_precedence_base_preset_agent_wandb_set(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    preset = write(
        tmp_path / "p.yaml", {"learning_rate": 0.1, "batch_size": 32, "num_epochs": 2, "seed": 5}
    )
    cfg = build_config(
        [preset],
        agent_overrides={"batch_size": 16, "num_epochs": 3, "seed": 6},
        wandb_config={"num_epochs": 4, "seed": 7},
        sets=["seed=8"],
        base=BASE,
    )
    assert cfg.learning_rate == 0.1 and cfg.sources["learning_rate"] == f"--config {preset}"
    assert cfg.batch_size == 16 and cfg.sources["batch_size"] == "agent arguments"
    assert cfg.num_epochs == 4 and cfg.sources["num_epochs"] == "wandb.config"
    assert cfg.seed == 8 and cfg.sources["seed"] == "--set seed=8"
    assert cfg.model_name == "resnet50"  # from the base file


def test_agent_arguments_as_wandb_agent_passes_them(monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    overrides = parse_agent_args(
        ["--learning_rate=1e-3", "--finetune=True", "--scheduler=cosine", "--wandb.mode=disabled"]
    )
    cfg = build_config(agent_overrides=overrides, base=BASE)
    assert cfg.learning_rate == pytest.approx(1e-3)  # YAML reads "1e-3" as a string: still a float
    assert cfg.finetune is True and cfg.scheduler == "cosine"
    assert cfg["wandb.mode"] == "disabled" and cfg.nested()["wandb"]["mode"] == "disabled"


def test_nested_groups_and_the_usual_scripts_legacy_keys(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    legacy = write(
        tmp_path / "legacy.yaml",
        {"use_wandb": False, "wandb_project": "old", "checkpoint": {"keep": 5}},
    )
    cfg = build_config([legacy], base=BASE)
    assert (
        cfg["wandb.mode"] == "disabled"
        and cfg["wandb.project"] == "old"
        and cfg["checkpoint.keep"] == 5
    )


def test_bad_legacy_use_wandb_names_its_own_key(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    legacy = write(tmp_path / "legacy.yaml", {"use_wandb": "maybe"})
    with pytest.raises(
        UserError, match=r"^use_wandb='maybe' from .*legacy.yaml: expected true or false"
    ):
        build_config([legacy], base=BASE)


def test_wandb_mode_environment_is_an_agent_layer(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert build_config(base=BASE)["wandb.mode"] == "disabled"
    assert build_config(sets=["wandb.mode=offline"], base=BASE)["wandb.mode"] == "offline"


@pytest.mark.parametrize(
    "layer, expected",
    [
        (
            {"sets": ["learnin_rate=0.1"]},
            "unknown config key 'learnin_rate' in --set learnin_rate=0.1; did you mean 'learning_rate'?",
        ),
        (
            {"sets": ["batch_size=abc"]},
            "batch_size='abc' from --set batch_size=abc: expected an integer >= 1",
        ),
        (
            {"sets": ["batch_size=0"]},
            "batch_size=0 from --set batch_size=0: expected an integer >= 1",
        ),
        ({"sets": ["sample_ratio=1.5"]}, "expected a number > 0 and <= 1"),
        (
            {"sets": ["scheduler=linear"]},
            "scheduler='linear' from --set scheduler=linear: expected one of step, cosine, onecycle, none",
        ),
        ({"sets": ["finetune=maybe"]}, "expected true or false"),
        ({"agent_overrides": {"lr": 0.1}}, "unknown config key 'lr' in agent arguments"),
        ({"wandb_config": {"optimiser": "sgd"}}, "did you mean 'optimizer'?"),
        ({"sets": ["num_classes=100"]}, "dataset cifar10 has 10 classes"),
        ({"sets": ["nonsense"]}, "expected key=value"),
    ],
)
def test_errors_name_key_source_and_fix(layer, expected, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    with pytest.raises(UserError, match=None) as err:
        build_config(base=BASE, **layer)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_errors_in_files_name_the_file(tmp_path):
    bad_key = write(tmp_path / "typo.yaml", {"num_epoch": 3})
    with pytest.raises(
        UserError,
        match=r"unknown config key 'num_epoch' in --config .*typo.yaml; did you mean 'num_epochs'\?",
    ):
        build_config([bad_key], base=BASE)
    broken = tmp_path / "broken.yaml"
    broken.write_text("batch_size: [1,\n")
    with pytest.raises(UserError, match=r"broken.yaml line \d+ is not valid YAML"):
        build_config([str(broken)], base=BASE)
    with pytest.raises(UserError, match=r"config file .*missing.yaml not found"):
        build_config([str(tmp_path / "missing.yaml")], base=BASE)
    with pytest.raises(UserError, match="unexpected argument 'positional'"):
        parse_agent_args(["positional"])
    with pytest.raises(
        UserError, match="write --learning_rate=0.1 \\(or --set learning_rate=0.1\\)"
    ):
        parse_agent_args(["--learning_rate", "0.1"])


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, r"config file .*presets is a folder; pass one of its YAML files, e\.g\. .*\.yaml"),
        (
            b"\xff\xfe\x00bad",
            r"bad\.yaml is not UTF-8 text \(byte 0xff at offset 0\); save it as UTF-8",
        ),
        (b"a: 1\n\x07b: 2\n", r"bad\.yaml line 2 is not valid YAML: control character #x0007"),
    ],
)
def test_unreadable_config_file_is_one_line_naming_it(tmp_path, content, expected):
    if content is None:
        path = tmp_path / "presets"
        path.mkdir()
        (path / "digits.yaml").write_text("num_epochs: 1\n")
    else:
        path = tmp_path / "bad.yaml"
        path.write_bytes(content)
    with pytest.raises(UserError, match=expected) as err:
        build_config([str(path)], base=BASE)
    assert "\n" not in str(err.value)


@pytest.mark.system
def test_cli_config_folder_or_binary_file_is_one_line_exit_2(tmp_path):
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    for preset, words in (
        ("config/presets", "config/presets is a folder"),
        (str(binary), "is not UTF-8 text"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "sweepkit.train", "--config", preset, "--print-config"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
        assert words in proc.stderr and f"--config {preset}" in proc.stderr


@pytest.mark.system
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweepkit.train",
            "--set",
            "learnin_rate=0.1",
            "--run-dir",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "did you mean 'learning_rate'" in proc.stderr
    assert not (tmp_path / "run").exists()  # nothing half-made


@pytest.mark.system
def test_cli_print_config_shows_effective_values(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweepkit.train",
            "--config",
            "config/presets/digits.yaml",
            "--learning_rate=0.05",
            "--print-config",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    printed = yaml.safe_load(proc.stdout)
    assert printed["learning_rate"] == 0.05 and printed["dataset"] == "digits"
