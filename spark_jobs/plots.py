"""Small PNG charts for asset metadata: Markdown with the image embedded as a data URI, which the
Dagster UI shows on the asset's page. Made from a few aggregated numbers the job already has (a
plot never scans a table of its own), with matplotlib's Agg backend (no display needed).

matplotlib is optional at run time: where it is missing (a cluster image without it) the charts
are left out and the job says so once in its log.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Mapping, Sequence

log = logging.getLogger(__name__)

WIDTH_IN, HEIGHT_IN, DPI = 6.0, 2.8, 80  # 480 x 224 pixels: readable on the asset page, ~15-30 KB
COLOURS = ("#4e79a7", "#59a14f", "#e15759", "#f28e2b", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")


class Markdown(str):
    """Metadata text the reporters hand to Dagster as Markdown (not plain text)."""


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the image
        if not getattr(_pyplot, "warned", False):
            log.warning("matplotlib is not installed: asset metadata goes without its charts")
            _pyplot.warned = True
        return None
    return plt


def _markdown(plt, figure, title: str) -> Markdown:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return Markdown(f"![{title}](data:image/png;base64,{encoded})")


def _figure(plt, title: str, xlabel: str, ylabel: str):
    figure, axes = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN))
    axes.set_title(title, fontsize=10)
    axes.set_xlabel(xlabel, fontsize=8)
    axes.set_ylabel(ylabel, fontsize=8)
    axes.tick_params(labelsize=7)
    axes.spines[["top", "right"]].set_visible(False)
    return figure, axes


def bars(
    title: str, values: Mapping[str, float], xlabel: str = "", ylabel: str = "", horizontal: bool = False
) -> Markdown | None:
    """One bar per key, in the mapping's order (horizontal: top to bottom, for a funnel)."""
    plt = _pyplot()
    if plt is None:
        return None
    figure, axes = _figure(plt, title, ylabel if horizontal else xlabel, xlabel if horizontal else ylabel)
    labels, heights = [str(k) for k in values], list(values.values())
    if horizontal:
        positions = range(len(labels))[::-1]
        axes.barh(list(positions), heights, color=COLOURS[0])
        axes.set_yticks(list(positions), labels)
    else:
        axes.bar(labels, heights, color=COLOURS[0])
        if len(labels) > 6:
            axes.tick_params(axis="x", labelrotation=30)
    return _markdown(plt, figure, title)


def histogram(
    title: str, counts: Mapping[float, int], bin_width: float, threshold: float | None = None, xlabel: str = ""
) -> Markdown | None:
    """A histogram from counts per bin (the bin's lower edge), with ``threshold`` as a dashed line."""
    plt = _pyplot()
    if plt is None:
        return None
    figure, axes = _figure(plt, title, xlabel, "count")
    axes.bar(list(counts), list(counts.values()), width=bin_width, align="edge", color=COLOURS[0])
    if threshold is not None:
        axes.axvline(threshold, color=COLOURS[2], linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
        axes.legend(fontsize=7, frameon=False)
    return _markdown(plt, figure, title)


def grouped_bars(
    title: str, categories: Sequence[str], series: Mapping[str, Sequence[float]], ylabel: str = ""
) -> Markdown | None:
    """Bars of every series side by side per category (received / accepted / quarantined per day)."""
    plt = _pyplot()
    if plt is None:
        return None
    figure, axes = _figure(plt, title, "", ylabel)
    width = 0.8 / max(len(series), 1)
    for i, (name, heights) in enumerate(series.items()):
        axes.bar([x + i * width for x in range(len(categories))], list(heights), width, label=name, color=COLOURS[i])
    axes.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(categories))], list(categories))
    if len(categories) > 6:
        axes.tick_params(axis="x", labelrotation=30)
    axes.legend(fontsize=7, frameon=False)
    return _markdown(plt, figure, title)


def lines(
    title: str, x: Sequence[str], series: Mapping[str, Sequence[float | None]], ylabel: str = ""
) -> Markdown | None:
    """One line per series over ``x`` (None: no point)."""
    plt = _pyplot()
    if plt is None:
        return None
    figure, axes = _figure(plt, title, "", ylabel)
    for i, (name, values) in enumerate(series.items()):
        points = [(xi, v) for xi, v in zip(x, values, strict=True) if v is not None]
        axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=name,
                  color=COLOURS[i % len(COLOURS)])  # fmt: skip
    if len(x) > 6:
        axes.tick_params(axis="x", labelrotation=30)
    axes.legend(fontsize=7, frameon=False, ncols=2)
    return _markdown(plt, figure, title)
