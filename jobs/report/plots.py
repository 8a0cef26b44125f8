"""The sweep report's figures, drawn with matplotlib.

Each figure becomes inline SVG for the HTML page (text kept as text, one ``<title>`` tooltip per
run line) and, with ``--png``, a PNG file. No pyplot: figures are built as ``Figure`` objects, so
no GUI backend or global state is involved. Callers only ask for a figure when there is data to
draw; every function here assumes at least one value to plot.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib import colormaps, rc_context
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sweepkit.jobs.report.analysis import (
    Analysis,
    Axis,
    RunLike,
    finite_metric,
    format_value,
)
from sweepkit.jobs.sweeps.definition.parameters import flatten
from sweepkit.jobs.sweeps.display import shown
from sweepkit.jobs.sweeps.vocabulary import METRIC_NAMES
from sweepkit.jobs.sweeps.wandb_run.metrics import is_finite_number, is_number

BEST_COLOUR = "#d62728"
NO_METRIC_COLOUR = "#9a9a9a"
STATE_STYLES = {"finished": "-", "stopped": "--", "running": "-", "preempted": "-."}
FAINT_ABOVE = 200  # parallel coordinates: past this many runs, all but the best drawn faint
VIVID_RUNS = 50
PER_EPOCH_FALLBACKS = tuple(reversed(METRIC_NAMES))  # accuracy first, then the losses


def metric_colours(analysis: Analysis) -> tuple[Colormap, Normalize]:
    """Colour map with the best end bright (yellow) whether the goal is max or min."""
    values = [finite_metric(r) or 0.0 for r in analysis.analysed]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    cmap = colormaps["viridis" if analysis.goal == "maximize" else "viridis_r"]
    return cmap, Normalize(lo, hi)


def parallel_coordinates(analysis: Analysis) -> tuple[Figure, dict[str, str]]:
    """One line per analysed run across every swept parameter and the metric.

    Returns the figure and, per line gid, the tooltip text for the SVG.
    """
    axes = [stat.axis for stat in _plot_order(analysis)]
    assert analysis.metric_axis is not None
    axes.append(analysis.metric_axis)
    width = max(7.0, 1.5 * len(axes) + 1.5)
    fig = Figure(figsize=(width, 4.8), layout="constrained")
    ax = fig.add_subplot()
    cmap, norm = metric_colours(analysis)

    def heights(run: Any) -> list[float]:
        params = flatten(run.params)
        ys = [axis.position(params.get(axis.name)) for axis in axes[:-1]]
        return [*ys, axes[-1].position(finite_metric(run) or 0.0)]

    # Worst first, so the best runs are drawn on top. Past FAINT_ABOVE runs, all but the best
    # VIVID_RUNS are one faint raster layer (no markers, no tooltips): thousands of vector lines
    # make a solid block and megabytes of SVG.
    ordered = list(reversed(analysis.analysed))
    faint = ordered[: len(ordered) - VIVID_RUNS] if len(ordered) > FAINT_ABOVE else []
    if faint:
        lines = [list(zip(range(len(axes)), heights(run), strict=True)) for run in faint]
        # one call for every colour: per run, the colour map's checks cost ~0.1 ms each
        colours = cmap(norm([finite_metric(run) or 0.0 for run in faint]))
        _draw_faint_lines(ax, lines, colours)
    tooltips: dict[str, str] = {}
    for index, run in enumerate(ordered[len(faint) :]):
        gid = f"run-{index}"
        _draw_run_line(
            ax, gid, heights(run), cmap(norm(finite_metric(run) or 0.0)), best=run is analysis.best
        )
        tooltips[gid] = _run_tooltip(analysis, run, axes[:-1])
    for x, axis in enumerate(axes):
        _draw_axis(ax, x, axis)
    ax.set_xlim(-0.6, len(axes) - 0.6)
    ax.set_ylim(-0.05, 1.05)
    ax.axis("off")
    colorbar = fig.colorbar(_mappable(cmap, norm), ax=ax, fraction=0.03, pad=0.02)
    colorbar.set_label(str(analysis.metric_name))
    return fig, tooltips


def _draw_faint_lines(ax: Axes, lines: list[list[tuple[int, float]]], colours: Any) -> None:
    """The runs past the vivid ones, as one faint raster layer."""
    from matplotlib.collections import LineCollection

    ax.add_collection(
        LineCollection(
            lines,
            colors=colours,
            linewidths=0.6,
            alpha=max(0.03, min(0.4, 40 / len(lines))),
            zorder=1.5,
            rasterized=True,
        )
    )


def _draw_run_line(ax: Axes, gid: str, ys: list[float], colour: Any, best: bool) -> None:
    """One run's line with markers, the best one thicker and on top."""
    ax.plot(
        range(len(ys)),
        ys,
        color=colour,
        linewidth=3.0 if best else 1.6,
        alpha=1.0 if best else 0.85,
        marker="o",
        markersize=3,
        gid=gid,
        zorder=3 if best else 2,
    )


def _run_tooltip(analysis: Analysis, run: RunLike, param_axes: list[Axis]) -> str:
    params = flatten(run.params)
    metric = finite_metric(run) or 0.0  # analysed runs all have a finite metric
    values = ", ".join(f"{a.name}={shown(format_value(params.get(a.name)))}" for a in param_axes)
    return f"{run.run_id}: {shown(analysis.metric_name)}={format_value(metric)} ({values})"


def _draw_axis(ax: Axes, x: int, axis: Axis) -> None:
    """A vertical axis at x: its line, ticks, tick labels and title."""
    ax.axvline(x, color="#333333", linewidth=1.0, zorder=1)
    for y, label in axis.ticks():
        ax.plot([x - 0.03, x], [y, y], color="#333333", linewidth=1.0, zorder=1)
        ax.text(
            x - 0.05,
            y,
            label,
            ha="right",
            va="center",
            fontsize=8,
            color="#222222",
            zorder=4,
            bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 0.6},
        )
    title = axis.name + (" (log)" if axis.log else "")
    ax.text(x, 1.06, _wrap(title), ha="center", va="bottom", fontsize=9, fontweight="bold")


def _plot_order(analysis: Analysis) -> list[Any]:
    """Parameters in the sweep definition's order (analysis.params is sorted by importance)."""
    return sorted(analysis.params, key=lambda s: analysis.param_order.index(s.name))


def _mappable(cmap: Colormap, norm: Normalize) -> Any:
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=norm, cmap=cmap)


def _wrap(text: str, width: int = 16) -> str:
    if len(text) <= width:
        return text
    parts = re.split(r"(?<=[._ ])", text)
    lines, line = [], ""
    for part in parts:
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    return "\n".join([*lines, line])


def per_epoch_metric(runs: Sequence[RunLike], preferred: str | None) -> str | None:
    """The metric to plot per epoch: the sweep metric when runs log it per epoch."""
    logged = {key for run in runs for epoch in run.epochs for key in epoch}
    for name in (preferred, *PER_EPOCH_FALLBACKS):
        if name and name in logged:
            return name
    return None


def left_out_points(runs: Sequence[RunLike], metric: str) -> int:
    """How many values of ``metric`` the per-epoch plot leaves out: NaN and the infinities, which
    have no place on its axis (the page says how many)."""
    return sum(
        1
        for run in runs
        for e in run.epochs
        if is_number(e.get(metric)) and not is_finite_number(e.get(metric))
    )


def metric_per_epoch(runs: Sequence[RunLike], metric: str, analysis: Analysis) -> Figure:
    """The per-epoch curve of ``metric`` for every run that logged it (markers: 1-epoch runs)."""
    fig = Figure(figsize=(10.0, 4.6), layout="constrained")
    ax = fig.add_subplot()
    cmap, norm = metric_colours(analysis)
    label_each = len(runs) <= 12
    last_epoch = 1.0
    for run in runs:
        points = [
            (e["epoch"], e[metric])
            for e in run.epochs
            if isinstance(e.get("epoch"), int | float) and is_finite_number(e.get(metric))
        ]
        if not points:
            continue
        last_epoch = max(last_epoch, *(float(p[0]) for p in points))
        final = finite_metric(run)
        best = run is analysis.best
        colour = cmap(norm(final)) if final is not None and analysis.analysed else NO_METRIC_COLOUR
        label = run.run_id + ("" if run.state == "finished" else f" ({run.state})")
        ax.plot(
            [p[0] for p in points],
            [p[1] for p in points],
            color=BEST_COLOUR if best else colour,
            linestyle=STATE_STYLES.get(run.state, ":"),
            linewidth=2.6 if best else 1.4,
            marker="o",
            markersize=5 if best else 3.5,
            label=(label + " (best)" if best else label) if label_each or best else None,
            zorder=3 if best else 2,
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    ax.set_xlim(0.5, last_epoch + 0.5)  # one-epoch sweeps: a column of points at epoch 1
    if last_epoch <= 20:
        ax.set_xticks(range(1, int(last_epoch) + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return fig


def importance_bars(analysis: Analysis) -> Figure:
    """Importance (random forest) and linear correlation per parameter, most important on top."""
    stats = list(reversed(analysis.params))
    height = max(2.2, 0.45 * len(stats) + 1.2)
    fig = Figure(figsize=(10.0, height), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True, width_ratios=(1, 1))
    names = [s.name for s in stats]
    rows = range(len(stats))
    left.barh(rows, [s.importance or 0.0 for s in stats], color="#4c72b0")
    left.set_yticks(list(rows), names)
    left.set_xlabel("importance (random forest)")
    left.set_xlim(0, max(0.05, max((s.importance or 0.0) for s in stats) * 1.1))
    correlations = [s.correlation for s in stats]
    right.barh(
        rows,
        [c or 0.0 for c in correlations],
        color=["#2ca02c" if (c or 0.0) >= 0 else "#d62728" for c in correlations],
    )
    for row, stat in zip(rows, stats, strict=True):
        if stat.correlation is None:
            reason = "categorical" if stat.axis.categorical else "constant"
            right.text(0, row, f" {reason}", va="center", fontsize=8, color="#555555")
    right.axvline(0, color="#333333", linewidth=0.8)
    right.set_xlim(-1, 1)
    right.set_xlabel(f"correlation with {analysis.metric_name}")
    for ax in (left, right):
        ax.grid(True, axis="x", alpha=0.3)
    return fig


def to_svg(fig: Figure, prefix: str, tooltips: Mapping[str, str] | None = None) -> str:
    """The figure as an ``<svg>`` element for inline use: ids prefixed so several can share a page."""
    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": prefix}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    svg = text[text.index("<svg") :]
    for gid, tip in (tooltips or {}).items():
        svg = svg.replace(f'<g id="{gid}">', f'<g id="{gid}"><title>{html.escape(tip)}</title>', 1)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', svg)
    return svg
