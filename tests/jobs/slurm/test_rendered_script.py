"""The rendered sbatch script, byte for byte, against golden copies (the unit tier).

golden/local.sbatch and golden/wandb.sbatch were rendered before the sweep reference became a
SweepRef and the launchers moved behind one interface; the same inputs must still give the
same bytes. A deliberate change to the template renders new copies (the failure shows the diff).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from sweepkit.jobs.slurm.profiles import load_profile
from sweepkit.jobs.slurm.script import render, render_context
from sweepkit.jobs.slurm.target import SweepTarget
from sweepkit.jobs.sweeps.ref import SweepRef

GOLDEN = Path(__file__).resolve().parent / "golden"
PROFILE = {
    "partition": "gpu",
    "account": "lab",
    "time": "04:00:00",
    "concurrency": 2,
    "runtime": "apptainer",
    "image": "/shared/sweepkit.sif",
    "gpus": 2,
    "mem": "32G",
    "modules": ["apptainer/1.3"],
    "binds": ["/data:/data:ro"],
    "env": {"TORCH_HOME": "/cache/torch"},
    "sbatch_extra": ["--mail-type=FAIL"],
}
SWEEPS = {
    # a folder outside the working directory, so the container binds it
    "local": SweepRef("/shared/sweeps/ab12cd34", path=Path("/shared/sweeps/ab12cd34")),
    "wandb": SweepRef(
        "my-lab/cifar/ab12cd34", entity="my-lab", project="cifar", sweep_id="ab12cd34"
    ),
}


@pytest.mark.parametrize("kind", sorted(SWEEPS))
def test_the_script_renders_as_its_golden_copy(kind: str, tmp_path: Path) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text(yaml.safe_dump({"profiles": {"golden": PROFILE}}))
    profile = load_profile("golden", config)
    context = render_context(
        profile=dataclasses.replace(profile, source=Path("/config/cluster.yaml")),
        target=SweepTarget(SWEEPS[kind], "ab12cd34", Path("/tmp/rec")),
        array="1-4%2",
        runs_per_task=3,
        workdir=Path("/work/repo"),
        log_dir=Path("/shared/logs"),
        job_name="sweepkit-ab12cd34",
        image_digest="sha256:" + "0" * 64,
        git_revision="abc123",
    )
    context["rendered_at"] = "2026-12-04T00:00:00+00:00"
    assert render(context) == (GOLDEN / f"{kind}.sbatch").read_text()
