"""Cluster profiles: every error names the profile and the key; every rendered script lints."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from slurm_fixture import REPO, fast_sweep, sweepkit

from sweepkit.jobs.slurm import script as sbatch_script
from sweepkit.jobs.slurm.profiles import Profile, load_all, load_profile, parse_time_s
from sweepkit.jobs.slurm.target import SweepTarget
from sweepkit.jobs.sweeps.ref import SweepRef
from sweepkit.train.errors import UserError

CLUSTER = REPO / "config" / "cluster.yaml"
GOOD: dict[str, Any] = {
    "partition": "gpu",
    "time": "04:00:00",
    "concurrency": 2,
    "runtime": "apptainer",
    "image": "/shared/sweepkit.sif",
}


def write(tmp_path: Path, profiles: dict[str, Any]) -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({"profiles": profiles}))
    return path


def load_one(tmp_path: Path, **changes: Any) -> Profile:
    raw = {**GOOD, **changes}
    raw = {k: v for k, v in raw.items() if v is not None}
    return load_profile("p1", write(tmp_path, {"p1": raw}))


def shellcheck(text: str, tmp_path: Path, name: str = "job.sbatch") -> None:
    # Only the tests that lint need shellcheck; the module's unit tests run without it.
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck missing: apt-get install shellcheck (make system-deps)")
    path = tmp_path / name
    path.write_text(text)
    result = subprocess.run(["shellcheck", "-s", "bash", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


# ----- loading --------------------------------------------------------------------------------
def test_shipped_profiles_load_with_their_values() -> None:
    profiles = load_all(CLUSTER)
    assert {"gpu", "gpu-4x", "preemptible", "cpu", "local-test"} <= set(profiles)
    gpu = profiles["gpu"]
    assert (gpu.runtime, gpu.gpus, gpu.concurrency, gpu.time_s) == ("apptainer", 1, 2, 4 * 3600)
    assert profiles["gpu-4x"].gpus == 4 and profiles["gpu-4x"].partition == "gpu"  # anchor merge
    assert profiles["local-test"].runtime == "none" and profiles["local-test"].image is None
    assert (profiles["gpu-podman"].runtime, profiles["gpu-podman"].gpus) == ("podman", 1)
    assert profiles["local-podman"].runtime == "podman" and profiles["local-podman"].gpus == 0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 1800),
        ("10:30", 630),
        ("01:00:00", 3600),
        ("2-00", 172800),
        ("1-02:03", 93780),
        ("1-00:00:05", 86405),
    ],
)
def test_slurm_time_formats(text: str, seconds: int) -> None:
    assert parse_time_s(text) == seconds


ERRORS = [
    # (changes, key named in the message, words in the message)
    ({"partition": None}, "partition", "is missing"),
    ({"time": None}, "time", "is missing"),
    ({"concurrency": None}, "concurrency", "is missing"),
    ({"runtime": None}, "runtime", "is missing"),
    ({"image": None}, "image", "is missing"),
    ({"partition": "gpu\n#SBATCH --account=other"}, "partition", "newline"),
    ({"account": "lab;rm -rf ~"}, "account", "inject"),
    ({"qos": "normal`id`"}, "qos", "inject"),
    ({"constraint": "a100$(id)"}, "constraint", "inject"),
    ({"partition": "gpu a100"}, "partition", "inject"),
    ({"job_name": "x'y"}, "job_name", "inject"),
    ({"env": {"A": "1\nrm -rf /"}}, "env.A", "newline"),
    ({"env": {"1BAD": "x"}}, "env.1BAD", "variable name"),
    ({"modules": ["cuda\nid"]}, "modules[0]", "newline"),
    ({"time": "4h"}, "time", "not a SLURM time limit"),
    ({"time": "00:05:00", "signal_lead_s": 300}, "signal_lead_s", "not shorter"),
    ({"mem": "lots"}, "mem", "memory size"),
    # a bare number is megabytes to sbatch: 64 would be 64 MB; the line says which unit is meant
    ({"mem": 64}, "mem", "no unit, and SLURM would read it as 64 MB; write 64G for gigabytes"),
    ({"env": {"DATA": "$(id)/data"}}, "env.DATA", "command substitution"),
    ({"env": {"DATA": "`id`/data"}}, "env.DATA", "command substitution"),
    ({"gpus": -1}, "gpus", "is -1"),
    ({"gpus": "two"}, "gpus", "whole number"),
    ({"concurrency": 0}, "concurrency", "is 0"),
    ({"requeue": "yes"}, "requeue", "true or false"),
    ({"runtime": "docker"}, "runtime", "not known"),
    ({"runtime": "none"}, "image", "runtime is none"),
    ({"binds": ["data:/data"]}, "binds[0]", "SRC[:DST"),
    ({"binds": ["/d:/d:rx"]}, "binds[0]", "ro or rw"),
    ({"binds": "/data"}, "binds", "must be a list"),
    ({"image": "$(curl evil)/x.sif"}, "image", "command substitution"),
    ({"image": "$SWEEPKIT_UNSET_VAR_FOR_TEST/x.sif"}, "image", "not set"),
    ({"sbatch_extra": ["--array=1-100"]}, "sbatch_extra[0]", "profile key or by sweepkit submit"),
    ({"sbatch_extra": ["--mail-type=FAIL;id"]}, "sbatch_extra[0]", "shell characters"),
    ({"sbatch_extra": ["mail-type=FAIL"]}, "sbatch_extra[0]", "one --option"),
    ({"log_name": "logs/%x.out"}, "log_name", "log_dir"),
    ({"log_dir": "/scratch/my logs"}, "log_dir", "inject"),
    ({"partiton": "gpu"}, "partiton", "not a profile key"),
]


@pytest.mark.parametrize(
    ("changes", "key", "words"), ERRORS, ids=[e[1] + ":" + e[2] for e in ERRORS]
)
def test_profile_error_names_profile_and_key(
    tmp_path: Path, changes: dict[str, Any], key: str, words: str
) -> None:
    with pytest.raises(UserError) as err:
        load_one(tmp_path, **changes)
    message = str(err.value)
    assert "profile 'p1'" in message and f"key {key!r}" in message and words in message, message
    assert "\n" not in message.replace(repr(changes.get(key.split("[")[0].split(".")[0])), "")


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found; pass --cluster-config"):
        load_profile("x", tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("profiles:\n  a: [\n")
    with pytest.raises(UserError, match="line .*not valid YAML"):
        load_profile("a", bad)
    bad.write_text("gpu: {partition: x}\n")
    with pytest.raises(UserError, match="top-level `profiles:`"):
        load_profile("gpu", bad)
    path = write(tmp_path, {"gpu": GOOD, "bad name": GOOD, "scalar": 3})
    with pytest.raises(UserError, match=r"no profile 'cpu' \(profiles: bad name, gpu, scalar\)"):
        load_profile("cpu", path)
    with pytest.raises(UserError, match="profile name 'bad name'"):
        load_profile("bad name", path)
    with pytest.raises(UserError, match="profile 'scalar' must be a mapping"):
        load_profile("scalar", path)


def test_paths_expand_home_and_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRATCH", "/scratch/me")
    profile = load_one(
        tmp_path,
        image="$SCRATCH/img.sif",
        binds=["$SCRATCH/data:/data:ro"],
        log_dir="~/logs",
        env={"FLAG": True, "N": 3},
    )
    assert profile.image == Path("/scratch/me/img.sif")
    assert profile.binds == ("/scratch/me/data:/data:ro",)
    assert profile.log_dir == Path.home() / "logs"
    assert profile.env == {"FLAG": "true", "N": "3"}


@pytest.mark.system
def test_cli_reports_a_profile_error_as_one_line(tmp_path: Path) -> None:
    ref = fast_sweep(tmp_path, points=1, steps=1, step_s=0)
    config = write(tmp_path, {"bad": {**GOOD, "account": "lab;id"}})
    result = sweepkit(
        "submit", ref, "--profile", "bad", "--cluster-config", str(config), "--dry-run"
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "profile 'bad', key 'account'" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


# ----- rendering ------------------------------------------------------------------------------
def sweep_ref(kind: str, ref: str) -> SweepRef:
    """A reference to a sweep that need not exist here: a local folder, or entity/project/id."""
    if kind == "local":
        return SweepRef(ref, path=Path(ref))
    entity, project, sweep_id = ref.split("/")
    return SweepRef(ref, entity=entity, project=project, sweep_id=sweep_id)


def render(profile: Profile, kind: str, ref: str, tmp_path: Path, **extra: Any) -> str:
    target = SweepTarget(sweep_ref(kind, ref), ref.rsplit("/", 1)[-1], tmp_path / "slurm")
    context = sbatch_script.render_context(
        profile=profile,
        target=target,
        array=extra.get("array", "1-4%2"),
        runs_per_task=extra.get("runs_per_task", 1),
        workdir=REPO,
        log_dir=tmp_path / "logs",
        job_name="sweepkit-test",
        image_digest="sha256:" + "0" * 64 if profile.image else None,
        git_revision="abc123",
    )
    return sbatch_script.render(context)


@pytest.mark.system
@pytest.mark.parametrize("name", sorted(load_all(CLUSTER)))
@pytest.mark.parametrize("kind", ["local", "wandb"])
def test_every_shipped_profile_renders_a_script_that_passes_shellcheck(
    name: str, kind: str, tmp_path: Path
) -> None:
    profile = load_all(CLUSTER)[name]
    ref = "/shared/sweeps/ab12cd34" if kind == "local" else "my-lab/cifar/ab12cd34"
    text = render(profile, kind, ref, tmp_path, runs_per_task=3)
    shellcheck(text, tmp_path)
    assert text.startswith("#!/bin/bash\n") and "set -euo pipefail" in text
    assert f"#SBATCH --partition={profile.partition}\n" in text
    assert f"#SBATCH --time={profile.time}\n" in text
    assert "#SBATCH --array=1-4%2\n" in text
    assert f"#SBATCH --signal=B:USR1@{profile.signal_lead_s}\n" in text
    assert ("#SBATCH --requeue\n" in text) == profile.requeue
    assert "#SBATCH --open-mode=append\n" in text
    launch = text.split("launch=(\n", 1)[1].split("\n)\n", 1)[0]
    # The command in the container (after the image; Podman's entry point named before it).
    entry = re.search(r"--entrypoint (\S+)", launch)
    command = " ".join(
        ([entry.group(1)] if entry else []) + launch.split('"$IMAGE"', 1)[-1].split()
    )
    if kind == "wandb":
        assert "wandb agent --forward-signals --count 3" in command and "sweepkit" not in command
        assert "KEY_FILE=" in text and 'WANDB_API_KEY=$(<"$KEY_FILE")' in text
    else:
        assert "sweepkit agent --count 3" in command and "wandb agent" not in command
        assert "WANDB_API_KEY" not in text
    if not profile.container:  # ${interpreter} (python from PATH) is this environment's python
        assert f"export PATH={shlex.quote(str(Path(sys.executable).parent))}$" in text
    if profile.runtime == "podman":
        assert launch.lstrip().startswith('"$PODMAN" run --rm --network host "${podman_flags[@]}"')
        assert ("--device nvidia.com/gpu=all" in launch) == (profile.gpus > 0)
        assert all(f"--volume {bind}" in launch for bind in profile.binds if ":" in bind)
        assert f"--volume {REPO}:{REPO}" in launch and f"--workdir {REPO}" in launch
        assert "--env 'SLURM_*'" in launch and "--env 'SWEEPKIT_*'" in launch
        assert all(f"--env {name}" in launch for name in profile.env)
        entry = "wandb" if kind == "wandb" else "sweepkit"
        assert f'--entrypoint {entry} "$IMAGE"' in launch and f"IMAGE={profile.image}" in text
        assert 'if ! "$PODMAN" image exists "$IMAGE"; then' in text
        assert "SWEEPKIT_NODE=" in text and "--userns=keep-id" in text
    elif profile.container:
        assert launch.lstrip().startswith(f"{profile.runtime} exec")
        assert ("--nv" in launch) == (profile.gpus > 0)
        assert all(f"--bind {bind}" in launch for bind in profile.binds)
        assert '"$IMAGE"' in launch and f"IMAGE={profile.image}" in text
    else:
        assert "exec" not in launch and "--bind" not in launch
    if profile.gpus:
        assert f"#SBATCH --gres=gpu:{profile.gpus}\n" in text
    else:
        assert "--gres" not in text
    for module in profile.modules:
        assert f"module load {module}" in text
    # Directives come before the first command, or sbatch ignores them.
    first_command = next(
        i for i, line in enumerate(text.splitlines()[1:]) if line and not line.startswith("#")
    )
    assert all(
        i < first_command
        for i, line in enumerate(text.splitlines()[1:])
        if line.startswith("#SBATCH")
    )


@pytest.mark.system
def test_gpu_type_account_extra_and_modules_render(tmp_path: Path) -> None:
    profile = load_one(
        tmp_path,
        gpus=2,
        gpu_type="a100",
        account="lab",
        qos="high",
        constraint="a100&ib",
        mem="64G",
        modules=["apptainer/1.3", "cuda/12.4"],
        sbatch_extra=["--mail-type=FAIL", "--exclusive"],
        env={"TORCH_HOME": "/cache/torch dir"},
    )
    text = render(profile, "local", "/shared/sweeps/ab12cd34", tmp_path)
    shellcheck(text, tmp_path)
    for line in (
        "#SBATCH --gres=gpu:a100:2",
        "#SBATCH --account=lab",
        "#SBATCH --qos=high",
        "#SBATCH --constraint=a100&ib",
        "#SBATCH --mem=64G",
        "#SBATCH --mail-type=FAIL",
        "#SBATCH --exclusive",
        "module load apptainer/1.3 cuda/12.4",
        'export TORCH_HOME="/cache/torch dir"',
    ):
        assert line + "\n" in text, line


@pytest.mark.system
def test_no_signal_lead_and_no_requeue(tmp_path: Path) -> None:
    text = render(load_one(tmp_path, signal_lead_s=0, requeue=False), "local", "/s/ab", tmp_path)
    shellcheck(text, tmp_path)
    assert "--signal" not in text and "#SBATCH --no-requeue\n" in text
    assert "requeue_wanted=0\n" in text.split("on_usr1() {", 1)[1]


def test_strict_template_refuses_an_undefined_value(tmp_path: Path) -> None:
    profile = load_one(tmp_path)
    target = SweepTarget(sweep_ref("local", "/s/ab"), "ab", tmp_path)
    context = sbatch_script.render_context(
        profile=profile,
        target=target,
        array="1-2%1",
        runs_per_task=1,
        workdir=REPO,
        log_dir=tmp_path,
        job_name="j",
        image_digest=None,
        git_revision="x",
    )
    del context["git_revision"]
    with pytest.raises(UserError, match="'git_revision' is undefined"):
        sbatch_script.render(context)


def test_paths_that_cannot_go_in_a_directive_are_refused(tmp_path: Path) -> None:
    profile = load_one(tmp_path)
    target = SweepTarget(sweep_ref("local", "/s/ab"), "ab", tmp_path)
    with pytest.raises(UserError, match="working directory .* #SBATCH line cannot hold"):
        sbatch_script.render_context(
            profile=profile,
            target=target,
            array="1",
            runs_per_task=1,
            workdir=Path("/home/me/my project"),
            log_dir=tmp_path,
            job_name="j",
            image_digest=None,
            git_revision="x",
        )


@pytest.mark.system
def test_slurm_scripts_pass_shellcheck() -> None:
    scripts = sorted((REPO / "tests" / "slurm").glob("*.sh"))
    assert [p.name for p in scripts] == [
        "common.sh",
        "nodes-down.sh",
        "nodes-up.sh",
        "slurm-down.sh",
        "slurm-up.sh",
    ]
    # -x: follow the up scripts' `source common.sh`
    result = subprocess.run(
        ["shellcheck", "-x", *map(str, scripts)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
