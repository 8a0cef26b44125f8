"""The messages a new user met that were wrong or unclear (issue 28's "Why"), each as it reads now:
`sweep create`'s next steps are commands that run, a size in words of the right number, a bad
parameter name in words, a half sweep folder naming what it lacks, a read-only folder never told
to free space, and an agent whose lease ran out told so."""

from __future__ import annotations

import argparse
import errno
import re
import shlex
from pathlib import Path

import pytest
import yaml
from sweep_fixtures import grid, write_program

from sweepkit.jobs.cli import main
from sweepkit.jobs.slurm import submit
from sweepkit.jobs.sweeps import store
from sweepkit.jobs.sweeps.agent import messages
from sweepkit.jobs.sweeps.definition.messages import PARAMETER_NAME_PATTERN
from sweepkit.train.errors import UserError
from sweepkit.train.write_errors import refusal_line

REPO = Path(__file__).resolve().parents[3]


def _create(
    tmp_path: Path, definition: dict, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump(definition))
    rc = main(["sweep", "create", str(spec), "--root", str(tmp_path / "sweeps")])
    out = capsys.readouterr()
    return rc, out.out.strip(), out.err


def _submit_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, list[str]]:
    """The sweep made, and the submit command its hint names, NAME and FILE filled in."""
    rc, path, err = _create(tmp_path, grid({"lr": [0.1]}, write_program(tmp_path)), capsys)
    assert rc == 0, err
    assert "(grid, 1 run)" in err and "1 runs" not in err, err
    hint = re.search(r"\(or on SLURM: (sweepkit submit .*?), NAME a profile in FILE\)", err)
    assert hint, err
    cluster = tmp_path / "cluster.yaml"
    profile = {"partition": "debug", "time": "00:10:00", "concurrency": 1, "runtime": "none"}
    cluster.write_text(yaml.safe_dump({"profiles": {"mine": profile}}))
    filled = {"NAME": "mine", "FILE": str(cluster)}
    return path, [filled.get(word, word) for word in shlex.split(hint.group(1))]


def test_create_says_1_run_and_hints_a_submit_its_parser_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, argv = _submit_hint(tmp_path, capsys)
    assert argv[:3] == ["sweepkit", "submit", path]
    parser = argparse.ArgumentParser()
    submit.add_arguments(parser)
    parsed = parser.parse_args(argv[2:])  # exits (SystemExit) where a required option is missing
    assert parsed.profile == "mine" and parsed.sweep == path


@pytest.mark.system  # submit --dry-run asks SLURM's tools what they are
def test_the_hinted_submit_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, argv = _submit_hint(tmp_path, capsys)
    assert main([*argv[1:], "--dry-run"]) == 0, capsys.readouterr().err
    assert "#SBATCH" in capsys.readouterr().out


def test_a_bad_parameter_name_is_said_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = grid({"lr": [0.1]}, write_program(tmp_path))
    definition["parameters"]["bad name!"] = {"values": [1, 2]}
    rc, _, err = _create(tmp_path, definition, capsys)
    (line,) = err.strip().splitlines()
    assert rc == 2 and "'bad name!' is not a valid parameter name" in line, line
    assert "starts with a letter or _" in line and "A-Za-z" not in line, line


def test_the_name_rule_in_words_is_w_and_bs_own() -> None:
    """The words describe this pattern: if W&B's schema changes it, they must change too."""
    from sweeps.config.schema import sweep_config_jsonschema as schema

    assert schema["definitions"]["parameters"]["propertyNames"]["pattern"] == PARAMETER_NAME_PATTERN


@pytest.mark.parametrize("missing", [["sweep.json"], ["sweep.yaml"], ["sweep.json", "sweep.yaml"]])
def test_a_half_sweep_folder_names_what_it_lacks(tmp_path: Path, missing: list[str]) -> None:
    half = tmp_path / "half"
    half.mkdir()
    for name in {"sweep.json", "sweep.yaml"} - set(missing):
        (half / name).write_text("{}")
    with pytest.raises(UserError) as refused:
        store.open_sweep(half)
    line = str(refused.value)
    assert f"it has no {' and no '.join(missing)};" in line, line
    assert "/" not in line.split("it has no")[1].split(";")[0], "names exactly what is missing"


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.EPERM])
def test_a_read_only_folder_is_not_told_to_free_space(code: int) -> None:
    err = OSError(code, "refused", "/sweeps/x/slurm")
    line = refusal_line(err, space_fix="free space there", then="nothing was submitted")
    assert "free space" not in line and line.endswith("; nothing was submitted"), line
    assert ("read-only" in line) == (code == errno.EROFS), line


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_gets_the_callers_space_fix(code: int) -> None:
    line = refusal_line(OSError(code, "full", "/s"), space_fix="free space in /s", then="so")
    assert line.endswith("; free space in /s; so"), line


def test_an_agent_whose_lease_ran_out_is_told_so() -> None:
    line = messages.lease_ran_out("abc12345", 30.0, "stopping it")
    assert "lease ran out" in line and "no heartbeat for 30 s" in line and "crashed" not in line


def test_the_readme_says_what_only_the_kits_trainer_adds_to_a_run_folder() -> None:
    text = (REPO / "README.md").read_text()
    bullet = " ".join(text.split("- `runs/<run id>/`:", 1)[1].split("\n- ", 1)[0].split())
    own, trainer = bullet.split("the kit's trainer adds", 1)
    assert "`output.log`" in own and "`wandb/`" in own, bullet
    assert "`run.json`" in trainer and "`checkpoints/`" in trainer, bullet
    assert "run.json" not in own and "checkpoints" not in own, bullet
