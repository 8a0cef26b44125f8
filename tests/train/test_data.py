"""Datasets (sweepkit.train.data) and staging (sweepkit.train.staging, ``sweepkit data``), offline.

CIFAR-10 is a tiny archive in the real format (tests/support/cifar_fixture.py) whose md5 list is passed
explicitly; downloads are exercised with local files and ``file://`` URLs. No test touches the
network.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from cifar_fixture import make_cifar, make_cifar_archive

from sweepkit.jobs.cli import main as sweepkit
from sweepkit.train import staged, staging
from sweepkit.train.data import load_splits
from sweepkit.train.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = dict(
    split_seed=0, val_fraction=0.2, sample_ratio=1.0, synthetic_size=100, num_classes=10
)


def load(dataset: str, data_path: str | Path = "", **overrides):
    return load_splits(dataset, str(data_path), **{**DEFAULTS, **overrides})  # type: ignore[arg-type]


def rows(x: torch.Tensor, y: torch.Tensor) -> list[tuple[bytes, int]]:
    return sorted((img.numpy().tobytes(), int(label)) for img, label in zip(x, y, strict=True))


# ---------------------------------------------------------------------------------------------
# CIFAR-10 reader
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def cifar(tmp_path):
    return make_cifar(tmp_path / "data", per_batch=20, test_size=30)


def test_cifar_round_trip_shapes_dtypes_labels(cifar):
    splits = load("cifar10", cifar.root, md5_file=cifar.md5_file)
    assert splits.dataset == "cifar10" and splits.num_classes == 10
    assert splits.class_names[0] == "airplane" and len(splits.class_names) == 10
    assert (len(splits.train_y), len(splits.val_y), len(splits.test_y)) == (80, 20, 30)
    for x, y in [(splits.train_x, splits.train_y), (splits.val_x, splits.val_y)]:
        assert x.dtype == torch.uint8 and x.shape[1:] == (3, 32, 32) and x.is_contiguous()
        assert y.dtype == torch.int64 and x.device.type == "cpu"
    # the test set is test_batch, in file order; train + validation are exactly the five batches
    assert torch.equal(splits.test_x, torch.from_numpy(cifar.test_x))
    assert torch.equal(splits.test_y, torch.from_numpy(cifar.test_y))
    both_x = torch.cat([splits.train_x, splits.val_x])
    both_y = torch.cat([splits.train_y, splits.val_y])
    assert rows(both_x, both_y) == rows(
        torch.from_numpy(cifar.train_x), torch.from_numpy(cifar.train_y)
    )


def test_cifar_data_path_may_name_the_batches_folder_and_env_names_the_md5_list(cifar, monkeypatch):
    monkeypatch.setenv(staged.MD5_FILE_ENV, str(cifar.md5_file))
    direct = load("cifar10", cifar.folder)
    parent = load("cifar10", cifar.root)
    assert torch.equal(direct.val_x, parent.val_x) and torch.equal(direct.train_y, parent.train_y)


def test_generated_archive_fails_torchvision_md5s_unless_its_list_is_named(cifar, monkeypatch):
    monkeypatch.delenv(staged.MD5_FILE_ENV, raising=False)
    with pytest.raises(UserError, match="data_batch_1 md5 mismatch.*md5 from torchvision"):
        load("cifar10", cifar.root)


def test_one_corrupt_byte_is_an_md5_error_naming_file_path_and_command(cifar):
    target = cifar.folder / "data_batch_3"
    content = bytearray(target.read_bytes())
    content[-100] ^= 0xFF
    target.write_bytes(bytes(content))
    with pytest.raises(UserError) as err:
        load("cifar10", cifar.root, md5_file=cifar.md5_file)
    message = str(err.value)
    assert "data_batch_3 md5 mismatch" in message and "data_batch_1" not in message
    assert str(cifar.folder) in message
    assert f"sweepkit data cifar10 --root {cifar.root}" in message
    assert "\n" not in message


def test_missing_dataset_names_path_and_staging_command(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(UserError) as err:
        load("cifar10", missing)
    assert str(missing) in str(err.value)
    assert f"sweepkit data cifar10 --root {missing}" in str(err.value)


def test_missing_batch_file_is_named(cifar):
    (cifar.folder / "test_batch").unlink()
    with pytest.raises(UserError, match="test_batch missing"):
        load("cifar10", cifar.root, md5_file=cifar.md5_file)


def test_md5_list_must_cover_every_file(cifar, tmp_path):
    partial = tmp_path / "partial.md5"
    partial.write_text("".join(cifar.md5_file.read_text().splitlines(keepends=True)[:3]))
    with pytest.raises(UserError, match="no entry for data_batch_4"):
        load("cifar10", cifar.root, md5_file=partial)


def test_reader_refuses_pickles_that_call_functions(cifar):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    target = cifar.folder / "data_batch_2"
    target.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2))
    # a list whose md5s match the tampered file: only the unpickler stands in the way
    lines = [
        f"{hashlib.md5(target.read_bytes()).hexdigest()}  data_batch_2"
        if line.endswith(" data_batch_2")
        else line
        for line in cifar.md5_file.read_text().splitlines()
    ]
    cifar.md5_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        UserError, match=r"data_batch_2: (__builtin__|builtins)\.print is not allowed"
    ):
        load("cifar10", cifar.root, md5_file=cifar.md5_file)


@pytest.mark.parametrize("dataset", ["cifar10", "digits"])
def test_num_classes_must_match_the_dataset(cifar, dataset):
    with pytest.raises(UserError, match="num_classes is 100 .* set num_classes: 10"):
        load(dataset, cifar.root, num_classes=100, md5_file=cifar.md5_file)


@pytest.mark.parametrize(
    "overrides, key",
    [({"val_fraction": 0.0}, "val_fraction"), ({"sample_ratio": 1.5}, "sample_ratio")],
)
def test_out_of_range_split_settings_name_the_key(overrides, key):
    with pytest.raises(UserError, match=key):
        load("digits", **overrides)


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(UserError, match="cifar10, digits, synthetic"):
        load("mnist")


# ---------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------


def test_split_is_a_function_of_split_seed(cifar):
    first = load("cifar10", cifar.root, split_seed=7, md5_file=cifar.md5_file)
    again = load("cifar10", cifar.root, split_seed=7, md5_file=cifar.md5_file)
    other = load("cifar10", cifar.root, split_seed=8, md5_file=cifar.md5_file)
    assert torch.equal(first.val_x, again.val_x) and torch.equal(first.train_y, again.train_y)
    assert not torch.equal(first.val_x, other.val_x)
    assert torch.equal(first.test_x, other.test_x)  # the test set never moves


def test_digits_splits_determinism_and_fixed_test_set():
    first, again, other = (
        load("digits", split_seed=1),
        load("digits", split_seed=1),
        load("digits", split_seed=2),
    )
    assert torch.equal(first.val_x, again.val_x) and torch.equal(first.train_x, again.train_x)
    assert rows(first.val_x, first.val_y) != rows(other.val_x, other.val_y)
    assert torch.equal(first.test_x, other.test_x) and torch.equal(first.test_y, other.test_y)


def test_sample_ratio_subsamples_training_only_and_nests():
    full, half, tenth = (load("digits", sample_ratio=r) for r in (1.0, 0.5, 0.1))
    assert len(half.train_y) == round(len(full.train_y) * 0.5)
    assert len(tenth.train_y) == round(len(full.train_y) * 0.1)
    assert torch.equal(full.val_x, tenth.val_x) and torch.equal(full.test_x, tenth.test_x)
    half_rows = set(rows(half.train_x, half.train_y))
    assert (
        set(rows(tenth.train_x, tenth.train_y))
        <= half_rows
        <= set(rows(full.train_x, full.train_y))
    )


def test_digits_are_1797_real_images_at_32x32x3():
    splits = load("digits")
    total = len(splits.train_y) + len(splits.val_y) + len(splits.test_y)
    assert total == 1797 and len(splits.test_y) == round(1797 * 0.2)
    x = torch.cat([splits.train_x, splits.val_x, splits.test_x])
    y = torch.cat([splits.train_y, splits.val_y, splits.test_y])
    assert x.dtype == torch.uint8 and x.shape == (1797, 3, 32, 32)
    assert torch.equal(torch.bincount(y, minlength=10) > 150, torch.ones(10, dtype=torch.bool))
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])  # grey in 3 channels
    assert x.max() == 255 and x[:, :, :4].max() == 0 and x[:, :, :, -4:].max() == 0  # black border
    # legible: the mean image of each digit differs clearly from every other digit's
    means = torch.stack([x[y == d].float().mean(0) for d in range(10)]).flatten(1)
    distances = torch.cdist(means, means) + torch.eye(10) * 1e9
    assert distances.min() > 100


def test_synthetic_is_seeded_and_small_in_evaluation():
    a = load("synthetic", synthetic_size=200, num_classes=100, split_seed=3)
    b = load("synthetic", synthetic_size=200, num_classes=100, split_seed=3)
    assert torch.equal(a.train_x, b.train_x) and a.train_y.max() < 100
    assert (len(a.train_y), len(a.val_y), len(a.test_y)) == (200, 20, 20)
    assert a.train_x.dtype == torch.uint8 and a.train_x.shape[1:] == (3, 32, 32)
    assert len(load("synthetic", synthetic_size=200, sample_ratio=0.25).train_y) == 50


# ---------------------------------------------------------------------------------------------
# sweepkit data cifar10
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def archive(tmp_path):
    return make_cifar_archive(
        tmp_path / "mirror" / "cifar-10-python.tar.gz", per_batch=10, test_size=10
    )


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def test_stage_cifar_from_a_local_archive_prints_bind_and_config_and_is_idempotent(
    tmp_path, archive, capsys
):
    tarball, md5_file = archive
    root = tmp_path / "datasets"
    argv = [
        "data",
        "cifar10",
        "--root",
        str(root),
        "--from-archive",
        str(tarball),
        "--md5-file",
        str(md5_file),
    ]
    assert sweepkit(argv) == 0
    out = capsys.readouterr().out
    assert f"staged and verified (md5 from {md5_file}): {root / 'cifar-10-batches-py'}" in out
    assert f"--bind {root}:/data/cifar10" in out
    assert "data_path: /data/cifar10" in out and f"data_path: {root}" in out
    assert tarball.exists() and leftovers(root) == []  # the user's archive is kept, no temp left
    splits = load("cifar10", root, md5_file=md5_file)
    assert len(splits.train_y) + len(splits.val_y) == 50
    assert sweepkit(argv) == 0
    assert "already staged and verified" in capsys.readouterr().out


def test_stage_cifar_downloads_from_a_url_and_removes_the_download(tmp_path, archive):
    tarball, md5_file = archive
    root = tmp_path / "datasets"
    out = io.StringIO()
    staging.stage_cifar(root, source=tarball.as_uri(), md5_file=str(md5_file), out=out)
    assert f"downloading {tarball.as_uri()}" in out.getvalue()
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py"]
    assert staged.verify_cifar(root, md5_file) == root / "cifar-10-batches-py"


def test_stage_cifar_replaces_a_corrupt_folder(tmp_path, archive):
    tarball, md5_file = archive
    root = tmp_path / "datasets"
    staging.stage_cifar(root, source=str(tarball), md5_file=str(md5_file), out=io.StringIO())
    (root / "cifar-10-batches-py" / "data_batch_5").write_bytes(b"truncated")
    out = io.StringIO()
    staging.stage_cifar(root, source=str(tarball), md5_file=str(md5_file), out=out)
    assert (
        "staging a fresh copy" in out.getvalue() and "data_batch_5 md5 mismatch" in out.getvalue()
    )
    staged.verify_cifar(root, md5_file)
    assert leftovers(root) == []


def test_corrupt_archive_is_refused_and_leaves_nothing(tmp_path, archive, capsys):
    tarball, md5_file = archive
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(tarball.read_bytes()[:-10])
    root = tmp_path / "datasets"
    code = sweepkit(
        ["data", "cifar10", "--root", str(root), "--url", bad.as_uri(), "--md5-file", str(md5_file)]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "md5 mismatch for cifar-10-python.tar.gz" in err
    assert list(root.iterdir()) == []


def test_unreachable_source_is_one_line(tmp_path, capsys):
    missing = (tmp_path / "absent.tar.gz").as_uri()
    code = sweepkit(["data", "cifar10", "--root", str(tmp_path / "d"), "--url", missing])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"cannot fetch {missing}" in err
    assert leftovers(tmp_path / "d") == []


def test_extraction_ignores_members_outside_the_batches_folder(tmp_path, archive):
    tarball, md5_file = archive
    hostile = tmp_path / "hostile.tar.gz"
    with tarfile.open(tarball) as src, tarfile.open(hostile, "w:gz") as dst:
        for member in src:
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        for name in ("../escaped.txt", "cifar-10-batches-py/../../escaped.txt", "/tmp/abs.txt"):
            info = tarfile.TarInfo(name)
            info.size = 3
            dst.addfile(info, io.BytesIO(b"bad"))
    lines = [line for line in md5_file.read_text().splitlines() if not line.endswith(".tar.gz")]
    digest = hashlib.md5(hostile.read_bytes()).hexdigest()
    hostile_md5 = tmp_path / "hostile.md5"
    hostile_md5.write_text("\n".join([*lines, f"{digest}  cifar-10-python.tar.gz"]) + "\n")
    root = tmp_path / "a" / "b"
    staging.stage_cifar(root, source=str(hostile), md5_file=str(hostile_md5), out=io.StringIO())
    assert not list(tmp_path.rglob("escaped.txt"))
    assert "escaped.txt" not in {p.name for p in (root / "cifar-10-batches-py").iterdir()}


# ---------------------------------------------------------------------------------------------
# sweepkit data weights
# ---------------------------------------------------------------------------------------------


def test_weights_file_follows_the_torch_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    expected = tmp_path / "th" / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    assert staged.weights_file("resnet50") == expected
    assert staged.weights_file("resnet50", tmp_path / "th") == expected
    assert staged.weights_url("resnet18").endswith("/resnet18-f37072fd.pth")
    with pytest.raises(UserError, match="resnet18, resnet34, resnet50, resnet101"):
        staged.weights_url("vgg16")


def test_missing_or_corrupt_weights_name_the_path_and_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    with pytest.raises(UserError) as err:
        staged.require_weights("resnet50")
    assert str(path) in str(err.value) and "sweepkit data weights resnet50" in str(err.value)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="sha256 mismatch.*sweepkit data weights resnet50"):
        staged.require_weights("resnet50")


def hash_named(folder: Path, content: bytes) -> Path:
    """A file named like torchvision's weights, NAME-<sha256 prefix>.pth, for its own content."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"toy-{hashlib.sha256(content).hexdigest()[:8]}.pth"
    path.write_bytes(content)
    return path


def test_stage_checkpoint_verifies_installs_and_is_idempotent(tmp_path):
    source = hash_named(tmp_path / "mirror", b"weights" * 1000)
    dest = tmp_path / "th" / "hub" / "checkpoints" / source.name
    out = io.StringIO()
    assert staging.stage_checkpoint(source.as_uri(), dest, out=out) == dest
    assert dest.read_bytes() == source.read_bytes() and "staged and verified" in out.getvalue()
    source.unlink()  # a second run must not fetch again
    out = io.StringIO()
    staging.stage_checkpoint(source.as_uri(), dest, out=out)
    assert "already staged and verified" in out.getvalue()


def test_stage_checkpoint_refuses_content_that_does_not_match_the_name(tmp_path):
    other = tmp_path / "other.pth"
    other.write_bytes(b"something else")
    dest = tmp_path / "hub" / "checkpoints" / "toy-0123abcd.pth"
    with pytest.raises(UserError, match="sha256 mismatch.*not installed"):
        staging.stage_checkpoint(str(other), dest, out=io.StringIO())
    assert list(dest.parent.iterdir()) == []


def test_weights_cli_refuses_a_wrong_file_in_one_line(tmp_path, capsys):
    wrong = tmp_path / "resnet50.pth"
    wrong.write_bytes(b"not the weights")
    home = tmp_path / "th"
    code = sweepkit(
        ["data", "weights", "resnet50", "--torch-home", str(home), "--from-file", str(wrong)]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "sha256 mismatch (expected prefix 0676ba61" in err
    assert list((home / "hub" / "checkpoints").iterdir()) == []


def test_weights_usage_lines_bind_the_cache_and_set_torch_home(tmp_path):
    text = "\n".join(staging.weights_usage_lines(tmp_path / "th"))
    assert f"--bind {tmp_path / 'th'}:/cache/torch" in text and "TORCH_HOME=/cache/torch" in text


@pytest.mark.system
def test_data_verb_imports_neither_torch_nor_wandb_at_start():
    code = "import sys, sweepkit.train.staging, sweepkit.train.staged; assert not {'torch', 'wandb'} & set(sys.modules), sys.modules.keys()"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.system
def test_data_cifar_is_documented_in_help():
    result = subprocess.run(
        [sys.executable, "-m", "sweepkit.jobs.cli", "data", "cifar10", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert "--from-archive" in result.stdout and "--md5-file" in result.stdout


def test_fixture_matches_the_real_layout(cifar):
    names = sorted(p.name for p in cifar.folder.iterdir())
    assert {"data_batch_1", "data_batch_5", "test_batch", "batches.meta"} <= set(names)
    with open(cifar.folder / "data_batch_1", "rb") as handle:
        batch = pickle.load(handle, encoding="bytes")
    assert isinstance(batch[b"data"], np.ndarray) and batch[b"data"].shape == (20, 3072)
    assert batch[b"data"].dtype == np.uint8 and isinstance(batch[b"labels"], list)
