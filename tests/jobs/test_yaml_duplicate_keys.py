"""A key given twice in any YAML file the kit reads is refused in one line naming the file, the key
and both lines (issue 28: ``method: grid`` then ``method: random`` made a random sweep with no
end, silently). Each kind of file goes through its command's real entry, in-process: the
trainer's config, a sweep definition, a cluster profile, a sweep folder's sweep.yaml, a ``--set``
value.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch  # noqa: F401 - the trainer imports it; at collection, where a process may start

from sweepkit.jobs.cli import main as sweepkit_main
from sweepkit.train.cli import main as train_main
from sweepkit.train.config import load_yaml
from sweepkit.train.config.shipped import sweep_path

GRID = sweep_path("digits_grid").read_text()


def one_line_error(capsys: pytest.CaptureFixture[str], code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.strip().count("\n") == 0 and "Traceback" not in err, err
    return err


def assert_names(err: str, file: Path | str, key: str, first: int, second: int) -> None:
    assert str(file) in err, err
    assert f"duplicate key {key!r} at lines {first} and {second}" in err, err


def test_sweep_definition_with_method_twice_is_refused(tmp_path, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_text(GRID + "method: random\n")
    first = GRID.splitlines().index("method: grid") + 1
    code = sweepkit_main(["sweep", "create", str(path), "--root", str(tmp_path / "sweeps")])
    last = len(GRID.splitlines()) + 1
    assert_names(one_line_error(capsys, code), path, "method", first, last)
    assert not (tmp_path / "sweeps").exists()  # nothing half-made


def test_duplicate_parameter_inside_a_nested_mapping_is_refused(tmp_path, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "method: grid\nparameters:\n  lr:\n    values: [1, 2]\n  lr:\n    value: 3\n"
        'command: ["${env}", "${interpreter}", "-m", "sweepkit.train", "${args}"]\n'
    )
    code = sweepkit_main(["sweep", "create", str(path), "--root", str(tmp_path / "sweeps")])
    assert_names(one_line_error(capsys, code), path, "lr", 3, 5)


def test_trainer_config_file_with_a_key_twice_is_refused(tmp_path, capsys):
    path = tmp_path / "preset.yaml"
    path.write_text("learning_rate: 0.1\nbatch_size: 32\nlearning_rate: 0.2\n")
    code = train_main(["--config", str(path), "--print-config"])
    assert_names(one_line_error(capsys, code), path, "learning_rate", 1, 3)


def test_set_value_with_a_key_twice_is_refused(tmp_path, capsys):
    code = train_main(["--set", "wandb={mode: offline, mode: online}", "--print-config"])
    err = one_line_error(capsys, code)
    assert "--set" in err and "duplicate key 'mode' at lines 1 and 1" in err, err


def test_cluster_profile_with_a_key_twice_is_refused(tmp_path, capsys):
    sweep_file = tmp_path / "grid.yaml"
    sweep_file.write_text(GRID)
    root = tmp_path / "sweeps"
    assert sweepkit_main(["sweep", "create", str(sweep_file), "--root", str(root)]) == 0
    (folder,) = root.iterdir()
    config = tmp_path / "cluster.yaml"
    config.write_text("profiles:\n  t:\n    partition: a\n    time: '00:10:00'\n    partition: b\n")
    capsys.readouterr()
    code = sweepkit_main(
        ["submit", str(folder), "--profile", "t", "--cluster-config", str(config), "--dry-run"]
    )
    assert_names(one_line_error(capsys, code), config, "partition", 3, 5)


def test_sweep_folder_whose_sweep_yaml_has_a_key_twice_is_refused(tmp_path, capsys):
    sweep_file = tmp_path / "grid.yaml"
    sweep_file.write_text(GRID)
    root = tmp_path / "sweeps"
    assert sweepkit_main(["sweep", "create", str(sweep_file), "--root", str(root)]) == 0
    (folder,) = root.iterdir()
    stored = folder / "sweep.yaml"
    stored.write_text(stored.read_text() + "method: random\n")
    capsys.readouterr()
    code = sweepkit_main(["status", str(folder)])
    err = one_line_error(capsys, code)
    assert "sweep.yaml" in err and str(folder) in err and "duplicate key 'method'" in err, err


@pytest.mark.parametrize(
    "text",
    [
        "base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  x: 3\n",  # a merge may be overridden
        "a: {x: 1}\nb: {x: 1}\n",  # the same key in two mappings
        "a: 1\nA: 2\n",
    ],
)
def test_what_yaml_allows_still_reads(text):
    assert isinstance(load_yaml(text), dict)
