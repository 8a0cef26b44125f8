"""A failed Hydra program's reason is Hydra's own error line, not OmegaConf's detail lines
(``full_key: ...``, ``object_type=dict``) that follow it. The output is a real Hydra program's
(hydra-core, the compat extra), run in each test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sweep_fixtures import create, sweepkit, write_definition

from sweepkit.jobs.sweeps.failure import error_line

pytest.importorskip("hydra", reason="the compat extra: pip install -e '.[compat]'")

APP = """
import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig


@hydra.main(config_path="conf", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    if cfg.lr > 1:
        raise ValueError(f"lr {cfg.lr} is too large")
    instantiate(cfg.datamodule)


if __name__ == "__main__":
    main()
"""
CONFIG = "lr: 0.1\ndatamodule:\n  _target_: TARGET\n  batch_size: 8\n"


def hydra_app(folder: Path, target: str = "collections.OrderedDict") -> Path:
    (folder / "conf").mkdir(parents=True)
    (folder / "conf" / "config.yaml").write_text(CONFIG.replace("TARGET", target))
    (folder / "app.py").write_text(APP)
    return folder / "app.py"


def run_hydra(app: Path, *overrides: str) -> str:
    result = subprocess.run(
        [sys.executable, str(app), *overrides],
        cwd=app.parent, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stdout + result.stderr


@pytest.mark.system
def test_hydra_errors_are_named_by_hydras_own_line(tmp_path: Path) -> None:
    app = hydra_app(tmp_path / "ok")
    wrong_key = run_hydra(app, "datamodule.batch_sizee=3")
    assert "object_type=dict" in wrong_key  # what the reason used to be
    assert error_line(wrong_key) == "Could not override 'datamodule.batch_sizee'."
    assert error_line(run_hydra(app, "lr=[1,2")) == "no viable alternative at input '[1,2'"
    missing = run_hydra(hydra_app(tmp_path / "missing", target="mypkg.data.Missing"))
    assert "full_key: datamodule" in missing
    assert error_line(missing).startswith("Error locating target 'mypkg.data.Missing'")
    # an exception in the task: Hydra prints its traceback; the exception line, as before
    assert error_line(run_hydra(app, "lr=2")) == "ValueError: lr 2 is too large"


@pytest.mark.system
def test_status_names_hydras_error_of_a_failed_run(tmp_path: Path) -> None:
    hydra_app(tmp_path)
    definition = {
        "program": "app.py",
        "method": "grid",
        "command": ["${env}", "${interpreter}", "${program}", "${args_no_hyphens}"],
        "parameters": {"batch_sizee": {"values": [3]}},
    }
    sweep = create(tmp_path, write_definition(tmp_path, definition))
    sweepkit("agent", sweep, cwd=tmp_path)
    status = sweepkit("status", sweep, cwd=tmp_path).stdout
    failed = [line for line in status.splitlines() if line.startswith("failed ")]
    assert len(failed) == 1 and failed[0].endswith(": Could not override 'batch_sizee'."), status
