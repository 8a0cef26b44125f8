"""``sweepkit report SWEEP [--out report.html] [--png]``: one self-contained HTML page per sweep.

The page carries what the W&B sweep view shows (parallel coordinates, parameter importance beside
correlation, the metric per epoch, the best run) and what a reviewer needs to rerun the sweep
(image digest, git revision, lock file hash, sweep definition, rendered sbatch scripts, dates).
Figures are inline SVG and the page has no scripts and no external links, so it opens anywhere
without a network. Reads the local store and each run's ``run.json``; a W&B reference
(entity/project/sweep_id) goes through the W&B public API (``sweepkit.jobs.report.wandb_source``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sweepkit.jobs.report.source import SweepSource, load_local
from sweepkit.jobs.sweeps.display import param_label, shown
from sweepkit.jobs.sweeps.ref import parse
from sweepkit.train.atomic import write_atomic
from sweepkit.train.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "sweep",
        metavar="SWEEP",
        help="local sweep folder (e.g. sweeps/ab12cd34) or W&B sweep entity/project/sweep_id",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="HTML file to write (default: SWEEP/report.html; for W&B, report-<sweep_id>.html)",
    )
    parser.add_argument(
        "--png",
        action="store_true",
        help="also write each figure as OUT_STEM-<figure>.png beside the HTML",
    )


def run(args: argparse.Namespace) -> int:
    if args.out is not None:
        check_out(args.out, f"--out {args.out}", png=args.png)  # before reading the sweep
    source = load_source(args.sweep)
    out = args.out or (
        source.path / "report.html" if source.path else Path(f"report-{source.sweep_id}.html")
    )
    if args.out is None:  # a given --out was checked above
        check_out(out, f"the report file {out}", png=args.png)
    written, analysis = write_report(source, out, png=args.png)
    for path in written:
        print(f"wrote {path}")
    if args.png and len(written) == 1:
        print("--png: no figure to write yet (figures need runs with values of the sweep's metric)")
    print(summary_text(source, analysis))
    return 0


def load_source(text: str) -> SweepSource:
    ref = parse(text)
    if ref.is_local:
        return load_local(Path(ref.text))
    from sweepkit.jobs.report.wandb_source import load_wandb

    return load_wandb(ref.wandb_path)


PNG_FIGURES = ("parallel-coordinates", "importance", "metric-per-epoch")


def csv_path(out: Path) -> Path:
    """Where a report of more runs than its table lists writes every run, beside the page."""
    return out.with_name(f"{out.stem}-runs.csv")


def png_path(out: Path, figure: str) -> Path:
    return out.with_name(f"{out.stem}-{figure}.png")


def check_out(out: Path, what: str, png: bool = False) -> None:
    """Refuse, in one line, an output path that cannot become a file: a folder (itself or, with
    --png, a figure's path), or a path below something that is not a folder. ``what`` names it
    (``--out FILE``). A parent folder that does not exist yet is made when the report is written."""
    if out.is_dir():
        raise UserError(
            f"{what} is a folder; pass the HTML file to write, e.g. --out {out / 'report.html'}"
        )
    for path in (png_path(out, name) for name in PNG_FIGURES if png):
        if path.is_dir():
            raise UserError(
                f"{what}: {path}, where --png writes a figure, is a folder; "
                "remove it or choose another --out"
            )
    parent = next((p for p in out.parents if p.exists() or p.is_symlink()), None)
    if parent is not None and not parent.is_dir():
        raise UserError(
            f"{what}: {parent} is not a folder, so nothing can be written below it; "
            "choose another --out path"
        )


def write_report(source: SweepSource, out: Path, png: bool = False) -> tuple[list[Path], Any]:
    """Write the HTML (and PNGs); returns the paths written and the analysis.

    Atomic: each file is written to a temp file and renamed, so a reader never sees half a page
    and a failed write leaves no temp file behind.
    """
    from sweepkit.jobs.report.render import TABLE_ROWS, render, runs_csv

    csv = csv_path(out) if len(source.runs) > TABLE_ROWS else None
    page, figures, analysis = render(source, csv.name if csv else None)
    written: list[Path] = []
    targets: list[tuple[Path, Any]] = [(out, page.encode("utf-8"))]
    if csv is not None:
        targets.append((csv, runs_csv(source, analysis)))
    if png:
        targets += [(png_path(out, name), _png_writer(fig)) for name, fig in figures.items()]
    for path, data in targets:
        try:
            write_atomic(path, data)
        except OSError as err:
            raise UserError(
                f"cannot write {path}: {err.strerror or err}; choose another --out path"
            ) from None
        written.append(path)
    return written, analysis


def _png_writer(fig: Any) -> Any:
    from sweepkit.jobs.report.figure_text import text_as_text

    def write(handle: Any) -> None:
        with text_as_text():  # tick labels are made as the figure is drawn
            fig.savefig(handle, format="png", dpi=150)

    return write


def summary_text(source: SweepSource, analysis: Any) -> str:
    """A few lines for the terminal: counts, best run, top parameters."""
    from sweepkit.jobs.report.analysis import STATE_LABELS, format_value

    counts = ", ".join(
        f"{n} {STATE_LABELS.get(state, state)}" for state, n in analysis.counts.items() if n
    )
    lines = [f"sweep {source.sweep_id}: {len(source.runs)} runs ({counts or 'none yet'})"]
    if analysis.best is not None:
        metric_name = analysis.metric_name or "metric"
        params = " ".join(
            f"{shown(param_label(k, (metric_name,)))}={shown(format_value(v))}"
            for k, v in analysis.best.params.items()
        )
        lines.append(
            f"best: {analysis.best.run_id} {shown(metric_name)}="
            f"{format_value(analysis.best.metric)} {params}"
        )
    if analysis.message:
        lines.append(analysis.message)
    for stat in analysis.params[:5]:
        corr = "" if stat.correlation is None else f", correlation {stat.correlation:+.2f}"
        lines.append(f"  {shown(stat.name)}: importance {stat.importance or 0.0:.2f}{corr}")
    return "\n".join(lines)
