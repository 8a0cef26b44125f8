"""Turn a sweep (``sweepkit.jobs.report.SweepSource``) into the report page: analysis, figures, template.

The template (``jobs/report/templates/report.html.j2``) is rendered with autoescaping on; only the SVG
figures that matplotlib wrote are passed through as markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from sweepkit.jobs.report.analysis import (
    STATE_LABELS,
    Analysis,
    analyse,
    finite_metric,
    format_value,
)
from sweepkit.jobs.sweeps.definition.parameters import flatten
from sweepkit.jobs.sweeps.display import shown
from sweepkit.jobs.sweeps.failure import error_line
from sweepkit.jobs.sweeps.vocabulary import rank_key
from sweepkit.jobs.sweeps.wandb_run.metrics import is_number
from sweepkit.train.config import dump_yaml

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sweepkit.jobs.report.source import SweepSource

TEMPLATES = Path(__file__).parent / "templates"


# The page's table lists at most this many runs (the analysed ones first, best first); a bigger
# sweep's every run goes to a CSV file beside the page, which the page links.
TABLE_ROWS = 100
CSV_COLUMNS = ("run_id", "state", "metric", "epochs", "train_s", "host", "job", "attempts", "error")


def render(
    source: SweepSource, csv_name: str | None = None
) -> tuple[str, dict[str, Figure], Analysis]:
    """The HTML page, the figures drawn (for ``--png``) and the analysis behind them. ``csv_name``:
    the CSV of every run beside the page, which it links when its table is cut to TABLE_ROWS."""
    from sweepkit.jobs.report import plots
    from sweepkit.jobs.report.figure_text import text_as_text

    analysis = analyse(source.runs, source.definition)
    figures: dict[str, Figure] = {}
    svgs: dict[str, Markup] = {}
    epoch_runs, epoch_note = runs_per_epoch(source.runs, analysis)
    epoch_metric = plots.per_epoch_metric(epoch_runs, analysis.metric_name)
    with text_as_text():
        if analysis.enough:
            fig, tips = plots.parallel_coordinates(analysis)
            figures["parallel-coordinates"] = fig
            svgs["parallel-coordinates"] = Markup(plots.to_svg(fig, "pc", tips))
            if analysis.params:
                figures["importance"] = plots.importance_bars(analysis)
                svgs["importance"] = Markup(plots.to_svg(figures["importance"], "imp"))
        if epoch_metric is not None:
            figures["metric-per-epoch"] = plots.metric_per_epoch(epoch_runs, epoch_metric, analysis)
            svgs["metric-per-epoch"] = Markup(plots.to_svg(figures["metric-per-epoch"], "epoch"))
    left_out = plots.left_out_points(epoch_runs, epoch_metric) if epoch_metric else 0
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    page = env.get_template("report.html.j2").render(
        **context(source, analysis, epoch_metric),
        figures=svgs,
        epoch_note=epoch_note,
        epoch_left_out=left_out,
        csv_name=csv_name,
        faint_runs=len(analysis.analysed) > plots.FAINT_ABOVE and plots.VIVID_RUNS,
    )
    return page, figures, analysis


def runs_per_epoch(runs: list[Any], analysis: Analysis) -> tuple[list[Any], str | None]:
    """The runs whose curves the per-epoch plot draws: every run in a sweep of up to
    ``EPOCH_RUNS`` runs; above, the ``EPOCH_BEST`` best (by the sweep's metric) and as many of the
    running runs, the best so far (a note says so)."""
    from sweepkit.jobs.report.source import EPOCH_BEST, EPOCH_RUNS

    if len(runs) <= EPOCH_RUNS:
        return runs, None
    best = analysis.analysed[:EPOCH_BEST]
    running = [r for r in runs if r.state == "running"]
    running.sort(key=lambda r: rank_key(r.metric, analysis.goal))
    chosen = best + running[:EPOCH_BEST]
    note = f"the {len(best)} best of {len(analysis.analysed)} runs with a value"
    if running:
        note += f" and {min(len(running), EPOCH_BEST)} of the {len(running)} running runs"
    return chosen, note


def context(source: SweepSource, analysis: Analysis, epoch_metric: str | None) -> dict[str, Any]:
    from sweepkit.jobs.report.source import provenance, rerun_command

    definition = source.definition
    names = analysis.param_order
    return {
        "sweep_id": source.sweep_id,
        "ref": source.ref,
        "method": definition.get("method", "?"),
        "metric_name": analysis.metric_name,
        "goal": analysis.goal,
        "message": analysis.message,
        "excluded": analysis.excluded,
        "total_runs": len(source.runs),
        "planned_runs": source.planned_runs,
        "counts": [
            {"state": state, "label": STATE_LABELS.get(state, state), "n": n}
            for state, n in analysis.counts.items()
        ],
        "best": best_context(source, analysis, rerun_command),
        "importance": [
            {
                "name": s.name,
                "importance": "—" if s.importance is None else f"{s.importance:.3f}",
                "bar": max(0.0, min(1.0, s.importance or 0.0)) * 100,
                "correlation": _correlation_text(s),
                "scale": "categorical"
                if s.axis.categorical
                else ("log" if s.axis.log else "linear"),
                "distinct": s.distinct,
                "note": s.note,
            }
            for s in analysis.params
        ],
        "importance_runs": analysis.importance_runs,
        "analysed_runs": len(analysis.analysed),
        "fixed": [(name, shown(format_value(value))) for name, value in analysis.fixed.items()],
        "epoch_metric": epoch_metric,
        "param_names": names,
        "runs": [shown_row(row) for row in run_rows(source, analysis, names)[:TABLE_ROWS]],
        "provenance": provenance(source),
        "definition_yaml": source.definition_text
        or dump_yaml(definition, sort_keys=False, default_flow_style=False),
        "submissions": [
            {
                "job_id": s.job_id,
                "script_name": s.script_name,
                "script": s.script,
                "info": {k: format_value(v) for k, v in s.info.items() if k != "script"},
            }
            for s in source.submissions
        ],
    }


def _correlation_text(stat: Any) -> str:
    if stat.level_correlations:
        return ", ".join(
            f"{shown(level)}: {'—' if r is None else f'{r:+.2f}'}"
            for level, r in stat.level_correlations
        )
    if stat.correlation is None:
        return "—"
    scale = " (of log10)" if stat.axis.log else ""
    return f"{stat.correlation:+.2f}{scale}"


def best_context(source: SweepSource, analysis: Analysis, rerun: Any) -> dict[str, Any] | None:
    best = analysis.best
    if best is None:
        return None
    # the effective config: run.json's (our trainer's), else the one the run's W&B records hold
    config = best.record.get("config") or getattr(best, "config", None)
    return {
        "run_id": best.run_id,
        "metric": format_value(finite_metric(best)),
        "state": best.state,
        "params": [(k, shown(format_value(v))) for k, v in flatten(best.params).items()],
        "command": rerun(source.definition, best.params),
        "config_yaml": dump_yaml(config, sort_keys=False) if config else None,
        "run_dir": str(best.run_dir or ""),
    }


def runs_csv(source: SweepSource, analysis: Analysis) -> bytes:
    """Every run as the page's table has it (plus each swept value), one CSV row per run."""
    import csv
    import io

    names = analysis.param_order
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*CSV_COLUMNS[:3], *names, *CSV_COLUMNS[3:]])
    for row in run_rows(source, analysis, names):
        cells = [row[c] for c in CSV_COLUMNS]
        writer.writerow([*cells[:3], *row["params"], *cells[3:]])
    return buffer.getvalue().encode()


def shown_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row of ``run_rows`` as the page's table shows it: long values cut (the CSV has them
    whole), characters that do not print escaped."""
    return {
        **row,
        "params": [shown(value) for value in row["params"]],
        "host": shown(row["host"]),
        "error": shown(row["error"], 300),
    }


def run_rows(source: SweepSource, analysis: Analysis, names: list[str]) -> list[dict[str, Any]]:
    """Every run, the analysed ones first (best first), then the rest by run id."""
    ranked = {id(r): i for i, r in enumerate(analysis.analysed)}
    runs = sorted(source.runs, key=lambda r: (ranked.get(id(r), len(ranked)), str(r.run_id)))
    rows = []
    for run in runs:
        params = flatten(run.params)
        record = run.record
        train_s = (record.get("timings") or {}).get("train_s")
        slurm = run.slurm or record.get("slurm") or {}
        job = slurm.get("array_job_id") or slurm.get("job_id")
        task = slurm.get("array_task_id")
        rows.append(
            {
                "run_id": run.run_id,
                "state": run.state,
                "best": run is analysis.best,
                # NaN and inf shown as such (nan, inf, -inf); only a missing value is a dash
                "metric": format_value(run.metric) if is_number(run.metric) else "—",
                "params": [format_value(params[n]) if n in params else "" for n in names],
                "epochs": run.epoch_count or len(run.epochs or []),
                "train_s": f"{train_s:.1f}" if isinstance(train_s, int | float) else "",
                "host": run.host or record.get("host") or "",
                "job": f"{job}_{task}" if job and task else (job or ""),
                "attempts": run.attempts or record.get("attempt") or "",
                "error": error_line(run.error or record.get("error") or "")[:300],
            }
        )
    return rows
