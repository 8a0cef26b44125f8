"""The launcher interface and what it reads of a script, in-process (the unit tier).

The local twin running tasks, and sbatch itself, are tested end to end in test_submit.py and
test_slurm.py; here: which launcher --launcher picks, the steps submit takes with it (keep the
script, record the submission, take it back when the record cannot be written), and the pure
readers of a rendered script.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweepkit.jobs.slurm import submit
from sweepkit.jobs.slurm.array import auto_arrays
from sweepkit.jobs.slurm.launcher import LAUNCHERS, Job, launcher_for
from sweepkit.jobs.slurm.launcher.directives import (
    expand_array,
    expand_output,
    gres_gpus,
    read_directives,
    signal_option,
)
from sweepkit.jobs.slurm.launcher.local import LocalLauncher
from sweepkit.jobs.slurm.launcher.sbatch import SbatchLauncher
from sweepkit.jobs.slurm.profiles import load_profile
from sweepkit.jobs.slurm.script import render, render_context
from sweepkit.jobs.slurm.target import SweepTarget, resolve_sweep
from sweepkit.jobs.sweeps.ref import SweepRef
from sweepkit.train.errors import UserError

PROFILE = {"partition": "debug", "time": "00:10:00", "concurrency": 2, "runtime": "none"}


def local_target(tmp_path: Path) -> SweepTarget:
    folder = tmp_path / "sweeps" / "ab12"
    folder.mkdir(parents=True)
    return SweepTarget(SweepRef(str(folder), path=folder), "ab12", folder / "slurm")


def context_for(tmp_path: Path, target: SweepTarget) -> dict[str, object]:
    config = tmp_path / "cluster.yaml"
    config.write_text(yaml.safe_dump({"profiles": {"t": PROFILE}}))
    return render_context(
        profile=load_profile("t", config),
        target=target,
        array="1-3%2",
        runs_per_task=1,
        workdir=tmp_path,
        log_dir=target.record_dir / "logs",
        job_name="sweepkit-ab12",
        image_digest=None,
        git_revision="abc123",
    )


# ----- picking a launcher --------------------------------------------------------------------
def test_launcher_is_picked_by_name_and_submit_offers_exactly_those() -> None:
    assert isinstance(launcher_for("slurm"), SbatchLauncher)
    assert isinstance(launcher_for("local"), LocalLauncher)
    assert {name: cls.name for name, cls in LAUNCHERS.items()} == {
        "slurm": "slurm",
        "local": "local",
    }
    with pytest.raises(ValueError, match="no launcher 'lsf'"):
        launcher_for("lsf")

    parser = argparse.ArgumentParser()
    submit.add_arguments(parser)
    action = next(a for a in parser._actions if a.dest == "launcher")
    assert tuple(action.choices or ()) == ("slurm", "local") and action.default == "slurm"


# ----- the steps submit takes with a launcher ------------------------------------------------
def test_local_submission_keeps_the_script_and_records_how_to_run_it_again(
    tmp_path: Path,
) -> None:
    target = local_target(tmp_path)
    context = context_for(tmp_path, target)
    script = render(context)
    job = submit.queue(LocalLauncher(), script, target, context)
    assert job.script == target.record_dir / f"{job.job_id}.sbatch" and job.job_id.isdigit()
    assert job.script.read_text() == script
    assert (target.record_dir / "logs").is_dir()  # sbatch would not make it; the job would die
    (entry,) = [json.loads(line) for line in (target.record_dir / "submissions.jsonl").open()]
    assert entry["launcher"] == "local" and entry["job_id"] == job.job_id
    assert entry["script"] == f"slurm/{job.job_id}.sbatch" and entry["array"] == "1-3%2"
    command = [sys.executable, "-m", "sweepkit.jobs.slurm.launcher", str(job.script), "--job-id"]
    assert entry["sbatch_command"] == [*command, job.job_id]
    # a second submission gets its own id: the first one's script is never overwritten
    assert submit.queue(LocalLauncher(), script, target, context).job_id != job.job_id


def test_a_local_submission_that_cannot_be_recorded_leaves_nothing(tmp_path: Path) -> None:
    target = local_target(tmp_path)
    context = context_for(tmp_path, target)
    target.record_dir.mkdir()
    (target.record_dir / "submissions.jsonl").mkdir()  # the record cannot be opened for append
    with pytest.raises(UserError, match="nothing was submitted"):
        submit.queue(LocalLauncher(), render(context), target, context)
    assert sorted(p.name for p in target.record_dir.iterdir()) == ["submissions.jsonl"]


def test_sbatch_cannot_take_a_queued_job_back_and_says_where_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = Job("4242", tmp_path / "4242.sbatch", ["sbatch", "--parsable", "x"])
    assert (
        SbatchLauncher().unrecorded(job) == "job 4242 is queued (squeue -j 4242) but not recorded"
    )
    target = local_target(tmp_path)
    context = context_for(tmp_path, target)
    assert SbatchLauncher().follow(job, context) == 0
    out = capsys.readouterr().out
    assert out.startswith("Submitted array job 4242 (tasks 1-3%2, 1 run(s) each)")
    assert f"logs:   {target.record_dir}/logs/sweepkit-ab12-4242_*.out" in out
    assert "squeue -j 4242" in out and "scancel 4242" in out


def test_a_chain_of_arrays_is_shown_in_one_block_with_every_job_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = local_target(tmp_path)
    context = context_for(tmp_path, target)
    contexts = [{**context, "array": spec} for spec in ("1-3%2", "1-3%2", "1-1%1")]
    jobs = [Job(n, tmp_path / f"{n}.sbatch", ["sbatch"]) for n in ("41", "42", "43")]
    assert SbatchLauncher().follow_chain(jobs, contexts) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Submitted 3 array jobs for sweep ")
    assert out[0].endswith("(--dependency=afterany), so at most 2 tasks run at once:")
    assert out[1:4] == [
        "  array job 41: tasks 1-3%2",
        "  array job 42: tasks 1-3%2, after 41",
        "  array job 43: tasks 1-1%1, after 42",
    ]
    assert "  watch:   squeue -j 41,42,43" in out[6] and out[7] == "  cancel:  scancel 41 42 43"


class RejectsSecond(LocalLauncher):
    """A scheduler that takes the first array and rejects the next (as sbatch may: a QOS's job
    limit); stands in for a cluster's refusal, which the tests' SLURM cannot be made to give."""

    def submit(self, script: str, record_dir: Path, context: dict[str, Any]) -> Job:
        if context["after"] is not None:
            raise UserError("sbatch rejected the job: QOSMaxSubmitJobPerUserLimit")
        return super().submit(script, record_dir, context)


def test_a_chain_that_fails_part_way_says_which_arrays_are_queued(tmp_path: Path) -> None:
    target = local_target(tmp_path)
    context = context_for(tmp_path, target)
    contexts = [{**context, "array": "1-3%2", "after": None} for _ in range(3)]
    scripts = [render(c) for c in contexts]
    with pytest.raises(UserError) as caught:
        submit.queue_chain(RejectsSecond(), scripts, target, contexts)
    (entry,) = [json.loads(line) for line in (target.record_dir / "submissions.jsonl").open()]
    first = entry["job_id"]
    assert str(caught.value) == (
        "sbatch rejected the job: QOSMaxSubmitJobPerUserLimit; array 2 of 3 was not submitted, "
        f"but job(s) {first} are queued and recorded: let them run and submit again for the runs "
        f"they leave, or scancel {first}"
    )
    assert contexts[1]["after"] == first  # the second waited for the first


# ----- the sweep a job runs ----------------------------------------------------------------------
def test_a_wandb_sweep_records_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    target = resolve_sweep("lab/cifar/abc123")
    assert not target.sweep.is_local and target.name == "lab/cifar/abc123"
    assert target.sweep_id == "abc123"
    assert target.record_dir == tmp_path / "sweeps" / "wandb" / "lab" / "cifar" / "abc123" / "slurm"
    with pytest.raises(UserError, match="neither a sweep folder nor a W&B sweep"):
        resolve_sweep("not a sweep")
    with pytest.raises(UserError, match="holds a control character"):
        resolve_sweep("lab/cifar/abc\n123")


# ----- what a launcher reads of the script -------------------------------------------------
def test_directives_are_read_until_the_first_command() -> None:
    text = "#!/bin/bash\n#SBATCH --array=1-4%2\n\n# a comment\n#SBATCH --requeue\necho hi\n"
    text += "#SBATCH --time=5\n"
    directives = read_directives(text)
    assert directives.options == {"--array": "1-4%2", "--requeue": ""}
    assert directives.get("--time") is None


def test_array_specs_expand_to_sorted_task_ids_and_a_limit() -> None:
    assert expand_array("1-10:2,15%3") == ([1, 3, 5, 7, 9, 15], 3)
    assert expand_array("3,1,2-3") == ([1, 2, 3], None)
    for bad, words in (("5-1", "is empty"), ("1-4:0", "is empty"), ("x", "is not N")):
        with pytest.raises(UserError, match=words):
            expand_array(bad)


def test_output_patterns_fill_in_known_letters_with_padding() -> None:
    values = {"x": "job", "A": "77", "a": "3", "j": "80"}
    assert expand_output("%x-%A_%a.out", values) == "job-77_3.out"
    assert expand_output("%4a-%j-%%-%N", values) == "0003-80-%-%N"  # no N given: kept


def test_gres_and_signal_options() -> None:
    assert [gres_gpus(v) for v in (None, "gpu:2", "gpu:a100:4", "gpu", "mps:1")] == [0, 2, 4, 1, 0]
    assert signal_option("B:USR1@300", "s") == ("SIGUSR1", 300)
    assert signal_option("SIGTERM", "s") == ("SIGTERM", 60)
    assert signal_option(None, "s") == (None, 0)
    with pytest.raises(UserError, match="s: --signal=usr1 is not"):
        signal_option("usr1", "s")


def test_auto_array_covers_the_remaining_runs_with_a_limit_never_above_the_task_count() -> None:
    assert auto_arrays(4, 1, 1, 2) == ["1-4%2"]
    assert auto_arrays(5, 3, 1, 2) == ["1-2%2"]
    assert auto_arrays(5, 1, 1, 8) == ["1-5%5"]
    assert auto_arrays(7, 1, 2, 4) == ["1-4%4"]  # two agents per task take two runs at once
