"""Any value shown safely (issue 28, item 6): a newline, an escape sequence or a 20,000-character
value in a parameter keeps every status row, best line, agent line and report cell on one line of
bounded length, whole in ``status --json``; a parameter that shares the metric's name is told
apart; a metric logged as a string gets the hint that fits it. In-process: a real store, claimed
and ended through its own API, as agents do."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from sweepkit.jobs.report.command import summary_text, write_report
from sweepkit.jobs.report.source import load_local
from sweepkit.jobs.sweeps import status
from sweepkit.jobs.sweeps.agent import messages
from sweepkit.jobs.sweeps.display import CELL_CHARS, escaped, shown
from sweepkit.jobs.sweeps.store import AgentIdentity, Claim, LocalSweep, create_sweep
from sweepkit.jobs.sweeps.wandb_run.metrics import RunMetrics, RunMetricsReader

LONG = "x" * 20_000
ODD = ["two\nlines", LONG, "\x1b[2J\x1b[Hcleared", "tab\there\u2028sep"]


def _sweep(tmp_path: Path, notes: list[str]) -> LocalSweep:
    """A finished grid over ``notes`` and a parameter ``acc`` named like the metric ``acc``."""
    definition = {
        "program": "p.py",
        "method": "grid",
        "metric": {"name": "acc", "goal": "maximize"},
        "parameters": {"note": {"values": notes}, "acc": {"values": [99]}},
    }
    sweep = create_sweep(definition, tmp_path / "sweeps", source="test")
    me = AgentIdentity()
    for i in range(len(notes)):
        claim = sweep.claim(me)
        assert isinstance(claim, Claim)
        metric = float(i + 1)
        sweep.finish(claim, me, "finished", metric=metric, history=[metric], epochs=1, summary={})
    return sweep


def test_status_rows_stay_one_line_each_and_bounded(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, ODD)
    lines = status.render(sweep).splitlines()
    # title, header, one row per run, counts, best, complete: nothing split a row
    assert len(lines) == 2 + len(ODD) + 3, lines
    assert all("\x1b" not in line and "\t" not in line for line in lines)
    assert all(len(line) < 300 for line in lines), max(map(len, lines))
    table = "\n".join(lines)
    assert "two\\nlines" in table and "\\x1b[2J\\x1b[Hcleared" in table
    assert "tab\\there\\u2028sep" in table
    assert "x" * (CELL_CHARS - 3) + "..." in table and "x" * CELL_CHARS not in table


def test_status_json_keeps_every_value_whole(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, ODD)
    out = io.StringIO()
    status.write_json(sweep, out)
    notes = [run["params"]["note"] for run in json.loads(out.getvalue())["runs"]]
    assert sorted(notes) == sorted(ODD)


def test_a_parameter_named_like_the_metric_is_told_apart(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, ["a", "b"])
    lines = status.render(sweep).splitlines()
    assert lines[1].split()[:4] == ["run", "state", "note", "param:acc"], lines[1]
    (best,) = [line for line in lines if line.startswith("best:")]
    assert " acc=2 (maximize) " in best and "param:acc=99" in best and " acc=99" not in best


def test_the_report_cuts_and_escapes_what_it_shows(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, ODD)
    source = load_local(sweep.path)
    written, analysis = write_report(source, tmp_path / "r.html")
    summary = summary_text(source, analysis)
    assert all(len(line) < 300 and "\x1b" not in line for line in summary.splitlines())
    assert "acc=4 param:acc=99 note=tab\\there\\u2028sep" in summary, summary
    page = written[0].read_text()
    # whole only in the sweep's definition, shown as written
    assert page.count(LONG) == 1 and "\x1b" not in page


def test_the_agents_lines_show_values_escaped_and_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A function agent (in this process, in a thread) runs the sweep: every line it says is one
    line, bounded."""
    import sweepkit

    definition = {
        "method": "grid",
        "parameters": {"note": {"values": ODD}},
    }
    sweep = create_sweep(definition, tmp_path / "sweeps", source="test")
    assert sweepkit.agent(str(sweep.path), function=lambda: None) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if "sweepkit agent:" in line]
    starts = [line for line in said if "starting run" in line]
    assert len(starts) == len(ODD), said
    assert all(len(line) < 300 and "\x1b" not in line for line in said), said
    assert any(line.endswith("note=two\\nlines") for line in starts), starts


@pytest.mark.parametrize("text", ["plain", "日本語 ok", "a b"])
def test_printable_text_in_any_script_is_left_as_it_is(text: str) -> None:
    assert escaped(text) == text == shown(text)


def _metrics(**fields: Any) -> RunMetrics:
    return RunMetrics(**fields)


@pytest.mark.parametrize("source", ["wandb", "run.json"])
def test_a_string_metric_is_told_to_log_a_number_not_to_check_its_name(source: str) -> None:
    logged = _metrics(source=source, logged=["acc"], not_numbers=["high", "low"])
    line = messages.no_metric("r1", "acc", logged, "offline", Path("/r"), Path("/s"))
    assert "check metric.name" not in line, line
    assert "not numbers" in line and "'high'" in line and "log a number" in line, line


def test_run_json_strings_under_the_metric_count_as_not_numbers(tmp_path: Path) -> None:
    record = {"epochs": [{"epoch": 1, "acc": "high"}], "summary": {"acc": "high"}}
    (tmp_path / "run.json").write_text(json.dumps(record))
    read = RunMetricsReader("acc", "maximize").read(tmp_path, final=True)
    assert read.metric is None and read.not_numbers == ["high", "high"], read
