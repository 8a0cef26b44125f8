"""The wheel, installed as a login node would (issue 26): built from this checkout with
``pip wheel``, installed with ``pip install`` into a fresh venv without the extra ``train``. It
holds one import name, ``sweepkit``, brings no torch, says so where the trainer is asked for, and
runs a sweep of one's own script (README.md, "Your own script on your cluster") from a folder
outside the checkout: create, agent, status, report and ``submit --dry-run``.

pip resolves the dependencies from the package index (the pip cache makes a second run quick);
``constraints.txt`` pins them to the test environment's versions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from docs_blocks import blocks

REPO = Path(__file__).resolve().parents[2]
# what the wheel is built from: the project file, and the folders the package's links point at
SOURCES = ("pyproject.toml", "README.md", "sweepkit", "train", "jobs", "config")


@dataclass(frozen=True)
class Install:
    venv: Path
    site: Path  # the venv's site-packages
    env: dict[str, str]  # the venv's bin first on PATH; no checkout on the import path

    def run(self, *argv: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv), cwd=cwd, env=self.env, capture_output=True, text=True, timeout=timeout
        )


def build_wheel(into: Path) -> Path:
    """``pip wheel --no-deps`` of a copy of the checkout's sources (a build writes build/ and
    *.egg-info beside them: not into the checkout other tests read)."""
    source = into / "source"
    source.mkdir(parents=True)
    for name in SOURCES:
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(REPO / name, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(REPO / name, source / name)
    wheels = into / "wheels"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = wheels.glob("sweepkit-*.whl")
    return wheel


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Install:
    root = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(root)
    venv = root / "venv"
    base = getattr(sys, "_base_executable", sys.executable)  # not this venv's python
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-compile",  # no .pyc of every dependency: the test runs each module once
            "-c",
            str(REPO / "constraints.txt"),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    (site,) = (venv / "lib").glob("python3*/site-packages")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WANDB_", "SLURM_", "SWEEPKIT_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["WANDB_SILENT"] = "true"
    return Install(venv, site, env)


@pytest.mark.system
def test_the_wheel_installs_one_import_name_and_no_torch(install: Install, tmp_path: Path) -> None:
    top = {p.name.split(".")[0].split("-")[0] for p in install.site.iterdir()}
    assert "sweepkit" in top
    assert not top & {"train", "jobs"}, "the kit's parts install under sweepkit only"
    assert not top & {"torch", "torchvision"}, "torch is the extra 'train'"
    (dist,) = install.site.glob("sweepkit-*.dist-info")
    assert (dist / "top_level.txt").read_text().split() == ["sweepkit"]
    files = [line.split(",")[0] for line in (dist / "RECORD").read_text().splitlines()]
    assert all(f.startswith(("sweepkit/", "sweepkit-", "../../../bin/sweepkit")) for f in files)
    # the kit's YAML ships with it: presets and example sweeps by name, the own-script example
    shipped = install.site / "sweepkit" / "config"
    assert (shipped / "presets" / "digits.yaml").is_file()
    assert (shipped / "sweeps" / "digits_grid.yaml").is_file()
    assert (shipped / "byo" / "train_script.py").is_file()
    python = str(install.venv / "bin" / "python")
    no_torch = install.run(python, "-c", "import torch", cwd=tmp_path)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
    imports = install.run(python, "-c", "import sweepkit.jobs.cli, sweepkit.train", cwd=tmp_path)
    assert imports.returncode == 0, imports.stderr


@pytest.mark.system
def test_version_and_trainer_verbs_say_the_trainer_is_the_extra_train(
    install: Install, tmp_path: Path
) -> None:
    version = install.run("sweepkit", "--version", cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    facts = dict(line.split(None, 1) for line in version.stdout.splitlines())
    assert facts["sweepkit"] == "0.2.0" and facts["wandb"] != "-"
    assert facts["torch"] == "not installed (the trainer needs it: pip install 'sweepkit[train]')"
    assert facts["torchvision"] == facts["cuda"] == "-"
    for argv in (["sweepkit", "train"], ["python", "-m", "sweepkit.train"]):
        proc = install.run(*argv, cwd=tmp_path)
        assert proc.returncode == 2 and proc.stdout == "", argv
        assert proc.stderr == (
            "sweepkit train: error: needs torch, which this install lacks; the trainer is the "
            "extra 'train': pip install 'sweepkit[train]'\n"
        ), argv


def readme_profile() -> str:
    """The 6-line profile README.md's step 2 shows."""
    (profile,) = blocks("README.md", "Your own script on your cluster", lang="yaml")
    return profile.body


@pytest.mark.system
def test_an_own_script_sweep_runs_from_a_folder_outside_the_checkout(
    install: Install, tmp_path: Path
) -> None:
    work = tmp_path / "my-sweep"  # the example as the wheel ships it, copied as step 1 says
    shutil.copytree(install.site / "sweepkit" / "config" / "byo", work)
    (work / "my-cluster.yaml").write_text(readme_profile())
    create = install.run("sweepkit", "sweep", "create", "sweep_config.yaml", cwd=work)
    assert create.returncode == 0, create.stderr
    sweep = work / create.stdout.strip()
    assert (sweep / "sweep.yaml").is_file()
    one = install.run("sweepkit", "agent", "--count", "1", str(sweep), cwd=work)
    assert one.returncode == 0, one.stdout + one.stderr
    # one run left: the job script that would run it, from this venv's sweepkit
    dry = install.run(
        "sweepkit",
        "submit",
        str(sweep),
        "--profile",
        "mine",
        "--cluster-config",
        "my-cluster.yaml",
        "--dry-run",
        cwd=work,
    )
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("#!/bin/bash\n") and "#SBATCH --partition=cpu" in dry.stdout
    assert f"{install.venv / 'bin' / 'sweepkit'} agent --count 1" in dry.stdout
    assert not (sweep / "slurm").exists(), "a dry run writes nothing"
    rest = install.run("sweepkit", "agent", str(sweep), cwd=work)
    assert rest.returncode == 0, rest.stdout + rest.stderr
    status = install.run("sweepkit", "status", str(sweep), "--json", "--records", cwd=work)
    assert status.returncode == 0, status.stderr
    runs = json.loads(status.stdout)["runs"]
    assert sorted(r["params"]["learning_rate"] for r in runs) == [0.01, 0.1]
    assert {r["state"] for r in runs} == {"finished"}
    assert all(r["metric_source"] == "wandb" and len(r["epochs"]) == 5 for r in runs)
    report = install.run("sweepkit", "report", str(sweep), cwd=work)
    assert report.returncode == 0, report.stderr
    page = (sweep / "report.html").read_text()
    assert all(r["run_id"] in page for r in runs)
