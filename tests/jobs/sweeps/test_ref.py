"""A sweep reference parsed once: a local sweep folder, a W&B entity/project/id, or one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweepkit.jobs.sweeps.ref import parse, parse_local
from sweepkit.train.errors import UserError


def test_a_folder_that_exists_is_a_local_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sweeps" / "ab12").mkdir(parents=True)
    ref = parse("sweeps/ab12")
    assert ref.is_local and ref.text == "sweeps/ab12"
    assert ref.folder == tmp_path / "sweeps" / "ab12" and ref.folder.is_absolute()
    assert parse_local("sweeps/ab12") == ref


def test_entity_project_id_is_a_wandb_sweep() -> None:
    ref = parse("my-team/my.project/ab12cd34")
    assert not ref.is_local
    assert (ref.entity, ref.project, ref.sweep_id) == ("my-team", "my.project", "ab12cd34")
    assert ref.wandb_path == "my-team/my.project/ab12cd34"
    assert ref.wandb_url == "https://wandb.ai/my-team/my.project/sweeps/ab12cd34"
    with pytest.raises(ValueError, match="is a W&B sweep and has no local folder"):
        _ = ref.folder


def test_a_local_folder_shaped_like_a_wandb_reference_stays_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    assert parse("a/b/c").is_local
    (tmp_path / "x" / "y").mkdir(parents=True)
    (tmp_path / "x" / "y" / "z").write_text("a file, neither a sweep folder nor a W&B sweep")
    with pytest.raises(UserError, match="no sweep folder at x/y/z, nor a W&B reference"):
        parse("x/y/z")


def test_anything_else_is_one_line_that_says_what_to_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as err:
        parse("sweeps/missing")
    assert str(err.value) == (
        "no sweep folder at sweeps/missing, nor a W&B reference entity/project/sweep_id; "
        "create one with: sweepkit sweep create config/sweep_config.yaml"
    )
    # a bare id is the name of a sweep's folder under sweeps/: that folder is suggested
    (tmp_path / "sweeps" / "ab12").mkdir(parents=True)
    (tmp_path / "sweeps" / "ab12" / "sweep.json").write_text("{}")
    with pytest.raises(UserError, match=r"^no sweep folder at ab12; did you mean sweeps/ab12\?"):
        parse_local("ab12")
    with pytest.raises(UserError, match="holds a control character"):
        parse("sweeps/ab12\x1b[2J")


def test_a_local_only_verb_refuses_a_wandb_sweep_with_its_page(tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        parse_local("ent/proj/abc123")
    assert str(err.value) == (
        "ent/proj/abc123 is a W&B sweep; this command needs a local sweep folder "
        "(the W&B sweep is at https://wandb.ai/ent/proj/sweeps/abc123)"
    )
    with pytest.raises(UserError, match=r"^no sweep folder at .*missing; create one with"):
        parse_local(tmp_path / "missing")
