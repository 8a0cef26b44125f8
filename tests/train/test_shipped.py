"""The YAML files the kit ships, found by name from any folder (sweepkit.train.config.shipped):
a bare name is the kit's file of that name; a path is taken as given; an unknown name is one line
that lists the kit's names."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweepkit.jobs.cli import main
from sweepkit.train.config import shipped
from sweepkit.train.errors import UserError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder without the kit's config/."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_kits_files_are_its_config_folder() -> None:
    assert (REPO / "config").resolve() == shipped.KIT_CONFIG
    assert shipped.names(shipped.PRESETS) == ["cifar32", "digits"]
    assert shipped.names(shipped.SWEEPS) == ["bayes_hyperband", "digits_grid", "random"]
    assert shipped.names(Path("absent")) == []


def test_a_name_is_the_kits_file_of_that_name_from_any_folder() -> None:
    assert shipped.preset_path("digits") == shipped.PRESETS / "digits.yaml"
    assert shipped.sweep_path("digits_grid") == shipped.SWEEPS / "digits_grid.yaml"
    assert shipped.preset_path("digits").is_file()


@pytest.mark.parametrize(
    "text, name",
    [
        ("digits", True),
        ("digits_grid", True),
        ("digits.yaml", False),
        ("config/presets/digits", False),
        ("./digits", False),
        ("", False),
    ],
)
def test_a_name_has_no_folder_and_no_suffix(text: str, name: bool) -> None:
    assert shipped.is_name(text) is name


def test_a_path_is_taken_as_given(elsewhere: Path) -> None:
    assert shipped.preset_path("config/presets/digits.yaml") == Path("config/presets/digits.yaml")
    assert shipped.preset_path("mine.yaml") == Path("mine.yaml")  # missing: the caller says so
    # a file of that name here is the user's, before the kit's file of the same name
    (elsewhere / "digits").write_text("num_epochs: 1\n")
    assert shipped.preset_path("digits") == Path("digits")


def test_an_unknown_name_is_one_line_listing_the_kits_names() -> None:
    with pytest.raises(UserError) as preset:
        shipped.preset_path("digit")
    assert str(preset.value) == (
        "--config digit: no file digit here and no preset of that name in the kit "
        "(the kit's: cifar32, digits); give a YAML file's path or one of those names"
    )
    with pytest.raises(UserError) as sweep:
        shipped.sweep_path("grid")
    assert "(the kit's: bayes_hyperband, digits_grid, random)" in str(sweep.value)
    assert "\n" not in str(preset.value) + str(sweep.value)


def test_the_commands_say_an_unknown_name_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "create", "grid"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sweepkit sweep: error: sweep definition grid:")
    assert "digits_grid" in err and not Path("sweeps").exists()
