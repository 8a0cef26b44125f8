"""Every command README.md and docs/*.md show: run here, or (cluster, internet, engine) linted.

One module for every page. A ```bash block is run: by this module (RUN_HERE) or by the tests of
its area, named in RUN_BY, which read the same block through tests/support/docs_blocks.py. A
```bash block under a line a reader sees ("> Needs ...: the tests ...") needs a real cluster, the
internet or a container engine (docs_blocks calls it a cluster block); here its commands are shellchecked
and parsed: each `sweepkit` command by that verb's own argument parser, each script it names
checked to exist, `apptainer` lines against where ci/build-image.sh writes the image, `make`
targets against the Makefile, `pytest` selections collected. The site builds with
`mkdocs build --strict`, so a broken link or a page missing from the nav fails here.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from docs_blocks import NOTE, ROOT, Block, blocks, pages, sections, text

from sweepkit.jobs.cli import VERBS
from sweepkit.jobs.slurm.profiles import load_all

# (page, section) of plain ```bash blocks and the test file that runs them as shown.
RUN_BY = {
    ("README.md", "Quick start"): "test_readme.py",
    ("README.md", "Your own script on your cluster"): "test_byo_example.py",
    ("docs/sweeps.md", "Offline, with no W&B server"): "test_sweep_e2e.py",
    ("docs/sync.md", "What `sweepkit sync` does"): "test_sweep_e2e.py",
    ("docs/report.md", "(top)"): "test_report_cli.py",
    ("docs/containers.md", "CI"): "test_containers_doc_commands.py",
}
# ... and those this module runs itself.
RUN_HERE = {
    ("docs/trainer.md", "(top)"),
    ("docs/trainer.md", "Smoke test and versions"),
    ("docs/development.md", "The documentation's commands"),
}
KINDS = {"bash", "text", "yaml", "python", ""}
SITE = "--site-dir /tmp/sweepkit-site"


def shell_blocks(tag: str | None = None) -> list[Block]:
    return [b for b in blocks(lang="bash") if tag is None or b.tag == tag]


def test_every_block_is_of_a_known_kind() -> None:
    for block in blocks():
        assert block.lang in KINDS and not block.extra, (block.page, block.section, block.lang)


def test_every_visible_note_stands_right_above_a_shell_block() -> None:
    for block in blocks():
        assert block.note is None or block.lang == "bash", (block.page, block.section)
    for page in pages():
        notes = [line for line in text(page).splitlines() if NOTE.match(line)]
        assert len(notes) == len([b for b in blocks(page) if b.note]), f"{page}: a stray note"


def _test_file(name: str) -> Path:
    found = sorted((ROOT / "tests").rglob(name))
    assert len(found) == 1, f"no single tests/**/{name}: {found}"
    return found[0]


def test_every_plain_shell_block_is_run_by_a_named_test() -> None:
    seen = set()
    for block in shell_blocks(tag=""):
        where = (block.page, block.section)
        seen.add(where)
        assert where in RUN_BY or where in RUN_HERE, f"{where}: shows commands no test runs"
    assert seen == set(RUN_BY) | RUN_HERE, "RUN_BY / RUN_HERE name a section without commands"
    for (page, section), name in RUN_BY.items():
        source = _test_file(name).read_text()
        assert page in source and section in source, f"{name} must run {page} ({section})"


def parse_sweepkit(command: str) -> None:
    argv = shlex.split(command)
    argv = argv[argv.index(next(a for a in argv if a.endswith("sweepkit"))) + 1 :]
    verb, rest = argv[0], argv[1:]
    assert verb in VERBS, command
    module = importlib.import_module(VERBS[verb][0])
    parser = argparse.ArgumentParser(prog=f"sweepkit {verb}", exit_on_error=False)
    module.add_arguments(parser)
    parse = getattr(module, "parse_args", None)
    parse(parser, rest) if parse else parser.parse_args(rest)


def check_apptainer(command: str) -> None:
    argv = shlex.split(command)
    verb, *rest = argv[1:]
    assert verb in ("inspect", "test", "run", "exec"), command
    image = next(a for a in rest if a.endswith(".sif"))
    build = (ROOT / "ci" / "build-image.sh").read_text()
    assert image.startswith("build/sweepkit-") and "build/sweepkit-$short.sif" in build, command
    for flag, value in zip(rest, rest[1:], strict=False):
        if flag == "--bind":
            source, dest, *mode = value.split(":")
            assert source.startswith("/") and dest in ("/data", "/cache/torch"), command
            assert mode in ([], ["ro"]), command
    if verb == "run":
        assert rest[rest.index(image) + 1] in VERBS, command  # the runscript is sweepkit


def check_command(command: str, tmp_path: Path) -> None:
    argv = shlex.split(command.replace("$(", "").replace(")", ""))
    head = argv[0]
    if re.match(r"^(\S*/)?sweepkit$", head):
        parse_sweepkit(command)
    elif head == "apptainer":
        check_apptainer(command)
    elif head == "make":
        assert re.search(rf"^{argv[1]}:", (ROOT / "Makefile").read_text(), re.M), command
    elif head == "python" and argv[1:3] == ["-m", "pytest"]:
        collect = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", *argv[3:]],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert collect.returncode == 0 and " collected" in collect.stdout, collect.stdout[-2000:]
    else:
        for word in argv:  # every script of this checkout a line names is there to run
            if re.match(r"^(ci|tests|bench|containers)/\S+\.(sh|py)$", word):
                assert os.access(ROOT / word, os.X_OK) or word.endswith(".py"), command


@pytest.mark.system  # starts processes
def test_cluster_blocks_lint_and_parse(tmp_path: Path) -> None:
    cluster = shell_blocks(tag="cluster")
    assert cluster, "the pages show cluster-only commands"
    for block in cluster:
        script = tmp_path / "block.sh"
        script.write_text("#!/usr/bin/env bash\n" + block.body)
        syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert syntax.returncode == 0, (block.page, syntax.stderr)
        if shutil.which("shellcheck"):
            lint = subprocess.run(
                ["shellcheck", "-S", "warning", str(script)], capture_output=True, text=True
            )
            assert lint.returncode == 0, (block.page, lint.stdout)
        for command in block.commands:
            check_command(command, tmp_path)


def test_profiles_shown_pass_the_profile_checks(tmp_path: Path) -> None:
    shown = [b for b in blocks(lang="yaml") if "profiles:" in b.body]
    assert {b.page for b in shown} == {"README.md", "docs/slurm.md"}
    for number, block in enumerate(shown):
        path = tmp_path / f"profile{number}.yaml"
        path.write_text(block.body)
        profiles = load_all(path)
        assert profiles and all(p.partition for p in profiles.values()), block.page
    (readme,) = [b for b in shown if b.page == "README.md"]
    assert len(readme.body.strip().splitlines()) == 6, "the README promises a 6-line profile"


def docs_env() -> dict[str, str]:
    """The shell the pages assume: the pinned venv activated, no job or W&B variables."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "SLURM_", "SWEEPKIT_"))
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.system  # starts processes
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_trainer_page_commands_run(tmp_path: Path) -> None:
    """docs/trainer.md's commands (sections "(top)" and "Smoke test and versions"), in a folder
    shaped like a clone (config/ beside them)."""
    os.symlink(ROOT / "config", tmp_path / "config")
    shown = [b for b in blocks("docs/trainer.md", lang="bash") if b.tag == ""]
    assert {b.section for b in shown} == {"(top)", "Smoke test and versions"}
    out = ""
    for block in shown:
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block.body],
            cwd=tmp_path,
            env=docs_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, f"{block.body}\n{proc.stdout}\n{proc.stderr}"
        out += proc.stdout
    assert (tmp_path / "runs" / "readme-digits" / "run.json").is_file()
    assert "0.05" in out and "torch" in out


def test_every_file_a_page_names_is_there() -> None:
    """A path of this checkout in backticks exists; a test file named alone exists under tests/."""
    top = "bench|ci|config|containers|docs|jobs|sweepkit|tests|train"
    for page in pages():
        for name in re.findall(rf"`((?:{top})/[^`\s<*]*)`", text(page)):
            assert (ROOT / name).exists(), (page, name)
        for name in re.findall(r"`(test_\w+\.py|\w+_fixture\.py)`", text(page)):
            assert list((ROOT / "tests").rglob(name)), (page, name)


GOAL_UP = """method: grid
metric: {name: Validation Accuracy, goal: up}
command: ["${env}", "${interpreter}", -m, sweepkit.train, --config, config/presets/digits.yaml, "${args}"]
parameters:
  learning_rate: {values: [0.1]}
"""
# Error lines the pages show, each from the command and input that print it here; the other error
# lines are compared by the tests of their area (test_program_check.py, test_submit.py).
ERRORS = {
    ("docs/trainer.md", "sweepkit train: error: unknown config key"): (
        ["train", "--set", "learnin_rate=0.1"],
        None,
    ),
    ("docs/sweeps.md", "sweepkit sweep: error: sweep.yaml: metric.goal"): (
        ["sweep", "create", "sweep.yaml", "--root", "sweeps"],
        GOAL_UP,
    ),
    ("docs/sweeps.md", "sweepkit status: error: my-team/sweepkit/ab12cd34 is a W&B sweep"): (
        ["status", "my-team/sweepkit/ab12cd34"],
        None,
    ),
}


@pytest.mark.system  # starts processes
def test_error_lines_shown_are_what_the_commands_print(tmp_path: Path) -> None:
    os.symlink(ROOT / "config", tmp_path / "config")
    for (page, start), (argv, definition) in ERRORS.items():
        (shown,) = [
            line for b in blocks(page, lang="text") for line in b.commands if line.startswith(start)
        ]
        if definition:
            (tmp_path / "sweep.yaml").write_text(definition)
        done = subprocess.run(
            [str(Path(sys.executable).parent / "sweepkit"), *argv],
            cwd=tmp_path,
            env=docs_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 2 and done.stderr.strip() == shown, (page, done.stderr)
    assert not (tmp_path / "sweeps").exists() and not (tmp_path / "runs").exists()


def test_no_page_speaks_of_the_seed() -> None:
    """ "The seed" was this project's private name for the usual single-file W&B script."""
    for page in pages():
        found = re.findall(r"[^\n]*\b(?:the seed|seed's|seed-style)\b[^\n]*", text(page), re.I)
        assert not found, (page, found)


def test_the_readme_is_a_quick_start_with_a_glossary() -> None:
    readme = sections("README.md")
    prose = re.sub(r"^```.*?^```", "", text("README.md"), flags=re.S | re.M)
    assert len(prose.split()) <= 1050, len(prose.split())  # "about 1,000 words"
    glossary = readme["Glossary"]
    for term in ("**store**", "**run folder**", "**hyperband stop**", "**`--lease`**", "**agent**"):
        assert term in glossary, term
    assert "Preempted or timed out? Run `sweepkit submit` again." in text("README.md")
    steps = re.findall(r"^### (\d+)\. ", readme["Your own script on your cluster"], re.M)
    assert steps == [str(n) for n in range(1, len(steps) + 1)] and len(steps) >= 6


def mkdocs(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=config.parent,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.system  # starts processes
def test_the_site_builds_strict(tmp_path: Path) -> None:
    (block,) = blocks("docs/development.md", "The documentation's commands", "bash")
    assert block.commands == [f"mkdocs build --strict {SITE}"]
    built = mkdocs(ROOT / "mkdocs.yml", tmp_path / "site")
    assert built.returncode == 0, built.stderr
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    listed = {path for entry in nav for path in entry.values()}
    assert listed == {"README.md", "bench/RESULTS.md", *pages()[1:]}, "every page is in the nav"
    for page in pages():  # every fenced block rendered as one: none swallowed as text
        html = tmp_path / "site" / re.sub(r"(README)?\.md$", "", page) / "index.html"
        assert html.read_text().count("<pre") == len(blocks(page)), page


@pytest.mark.system  # starts processes
def test_a_broken_link_fails_the_site_build(tmp_path: Path) -> None:
    for part in ("mkdocs.yml", "README.md", "docs", "bench/RESULTS.md", "ci/mkdocs_pages.py"):
        target = tmp_path / part
        target.parent.mkdir(parents=True, exist_ok=True)
        copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copy2
        copy(ROOT / part, target)
    page = tmp_path / "docs" / "sync.md"
    page.write_text(page.read_text() + "\nSee [the missing page](missing.md).\n")
    built = mkdocs(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert built.returncode != 0 and "missing.md" in built.stderr, built.stderr
