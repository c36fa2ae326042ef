"""PNG figures of a run, drawn with matplotlib's Agg canvas (no display, no pyplot global state).

The object-oriented API (`Figure` + `FigureCanvasAgg`) is used on purpose: a library that called
`matplotlib.use("Agg")` or pyplot would switch the backend of a user's notebook or leak figures.

- `heatmap`: rounds x difficulties, exact match (paper figures 1, 3, 5, 6, 11, drawn as one heatmap);
  the supervised range D_0 is boxed.
- `grid`: exact match over n x m digit pairs after one round (multiplication, figures 7 and 34).
- `lines`: one value per round per series (data accuracy per round; members and their mean).
- `scatter`: data accuracy of D_r against exact match one level further (figure 12), with y = x.
- `histogram`: counts per whole number (figure 29: longest carry chains in a round's labels).
- `steps`: a whole number per round per series (figure 9's margin, figure 10's reach), optionally with
  a dashed reference line (figure 10: one level a round).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

CMAP = "viridis"
DPI = 110


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path | None) -> Path | bytes:
    """The PNG, written atomically to `path` (a reader never sees half of it), or its bytes for None."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    if path is None:
        return buffer.getvalue()
    from si_hf import atomic  # here: drawing alone needs nothing of si_hf (tests load this file alone)

    return atomic.write_bytes(path, buffer.getvalue())


def _cells(ax, values: np.ndarray, *, annotate: bool):
    """Draw `values` in [0, 1] (NaN = not evaluated, grey), optionally with % in each cell."""
    import matplotlib

    cmap = matplotlib.colormaps[CMAP].with_extremes(bad="#d9d9d9")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    if annotate:
        for (i, j), v in np.ndenumerate(values):
            if not math.isnan(v):
                color = "white" if v < 0.6 else "black"
                ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=7, color=color)
    return image


def _ticks(ax, axis: str, labels: list[str], limit: int = 40) -> None:
    step = max(1, math.ceil(len(labels) / limit))
    positions = list(range(0, len(labels), step))
    getattr(ax, f"set_{axis}ticks")(positions, [labels[p] for p in positions])


def _boxes(ax, columns: list[bool], rows: int) -> None:
    """One dashed box per contiguous run of supervised columns."""
    from matplotlib.patches import Rectangle

    j = 0
    while j < len(columns):
        if not columns[j]:
            j += 1
            continue
        start = j
        while j < len(columns) and columns[j]:
            j += 1
        box = Rectangle((start - 0.5, -0.5), j - start, rows, fill=False, ec="red", lw=2.0, ls="--")
        ax.add_patch(box)


def heatmap(
    accuracy: dict[int, dict[str, float]],
    keys: list[str],
    path: str | Path,
    *,
    supervised=(),
    title: str,
    xlabel: str = "difficulty",
) -> Path:
    """Rounds (rows, round 0 on top) x difficulties (columns): exact match, with a colour bar."""
    rounds = sorted(accuracy)
    if not rounds or not keys:
        raise ValueError(f"heatmap needs at least one round and one difficulty, got {rounds} x {keys}")
    values = np.array([[accuracy[r].get(k, np.nan) for k in keys] for r in rounds], dtype=float)
    fig = _figure(min(24.0, max(6.0, 3.0 + 0.42 * len(keys))), min(18.0, max(3.2, 2.2 + 0.38 * len(rounds))))
    ax = fig.add_subplot()
    image = _cells(ax, values, annotate=len(keys) <= 32 and len(rounds) <= 30)
    _ticks(ax, "x", [str(k) for k in keys])
    _ticks(ax, "y", [str(r) for r in rounds], limit=30)
    marked = [k in supervised for k in keys]
    for label, mark in zip(ax.get_xticklabels(), [marked[int(t)] for t in ax.get_xticks()]):
        if mark:
            label.set_color("red")
    _boxes(ax, marked, len(rounds))
    note = " (red dashed box: supervised range D_0)" if any(marked) else ""
    ax.set_xlabel(xlabel + note)
    ax.set_ylabel("self-improvement round")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="exact match", fraction=0.05, pad=0.02)
    return _save(fig, path)


def grid(accuracy: dict[str, float], path: str | Path, *, supervised=(), title: str) -> Path:
    """Exact match over "n x m" difficulties: rows n (digits of the first operand), columns m."""
    pairs = {}
    for k, v in accuracy.items():
        parts = str(k).split("x")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ValueError(f"grid needs 'n x m' difficulty keys such as '5x6', got {k!r}")
        pairs[int(parts[0]), int(parts[1])] = v
    if not pairs:
        raise ValueError("grid needs at least one 'n x m' difficulty")
    n, m = max(p[0] for p in pairs), max(p[1] for p in pairs)
    values = np.full((n, m), np.nan)
    for (i, j), v in pairs.items():
        values[i - 1, j - 1] = v
    fig = _figure(max(5.5, 2.2 + 0.55 * m), max(4.0, 1.6 + 0.5 * n))
    ax = fig.add_subplot()
    image = _cells(ax, values, annotate=n * m <= 400)
    ax.set_xticks(range(m), [str(j) for j in range(1, m + 1)])
    ax.set_yticks(range(n), [str(i) for i in range(1, n + 1)])
    from matplotlib.patches import Rectangle

    for k in supervised:
        parts = str(k).split("x")
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            i, j = int(parts[0]), int(parts[1])
            if i <= n and j <= m:
                ax.add_patch(Rectangle((j - 1.5, i - 1.5), 1, 1, fill=False, ec="red", lw=1.5, ls="--"))
    note = " (red dashed: supervised D_0)" if supervised else ""
    ax.set_xlabel(f"m: digits of the second operand{note}")
    ax.set_ylabel("n: digits of the first operand")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="exact match", fraction=0.05, pad=0.02)
    return _save(fig, path)


def _plot_series(ax, series: dict[str, dict[int, float]]) -> None:
    """One line with markers per series, x ascending; a series named "mean" thick and black."""
    for name, points in series.items():
        xs = sorted(points)
        style = {"color": "black", "lw": 2.5} if name == "mean" else {"lw": 1.2, "alpha": 0.8}
        ax.plot(xs, [points[x] for x in xs], marker="o", label=name, **style)


def lines(
    series: dict[str, dict[int, float]],
    path: str | Path,
    *,
    title: str,
    ylabel: str,
    xlabel: str = "self-improvement round",
) -> Path:
    """One line per series over rounds (or another whole-number axis, e.g. the longest carry chain); a
    series named "mean" is drawn thick and black."""
    if not any(series.values()):
        raise ValueError(f"lines needs at least one point, got {series}")
    fig = _figure(7.0, 4.2)
    ax = fig.add_subplot()
    _plot_series(ax, series)
    rounds = sorted({x for points in series.values() for x in points})
    ax.set_xticks(rounds[:: max(1, math.ceil(len(rounds) / 25))])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    return _save(fig, path)


def scatter(
    series: dict[str, list[tuple[int, float, float]]],
    path: str | Path,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
) -> Path:
    """Points (round, x, y) per series, the y = x diagonal dashed, each point labelled with its round."""
    if not any(series.values()):
        raise ValueError(f"scatter needs at least one point, got {series}")
    fig = _figure(5.6, 5.2)
    ax = fig.add_subplot()
    # zoomed to the points (a square window ending at 1): the paper's points crowd near the top
    lowest = min(v for points in series.values() for p in points for v in p[1:])
    lo = max(0.0, math.floor((lowest - 0.02) * 10) / 10)
    ax.plot([lo, 1], [lo, 1], ls="--", color="grey", lw=1, label="y = x")
    for name, points in series.items():
        style = {"color": "black", "s": 40, "zorder": 3} if name == "mean" else {"s": 22, "alpha": 0.8}
        ax.scatter([p[1] for p in points], [p[2] for p in points], label=name, **style)
        if name == "mean" or len(series) == 1:
            for r, x, y in points[:40]:
                offset = (-16, 4) if x > lo + 0.9 * (1 - lo) else (4, 3)
                ax.annotate(f"r{r}", (x, y), textcoords="offset points", xytext=offset, fontsize=7)
    pad = 0.02 * (1 - lo)
    ax.set_xlim(lo - pad, 1 + pad)
    ax.set_ylim(lo - pad, 1 + pad)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    return _save(fig, path)


def steps(
    series: dict[str, dict[int, int]],
    path: str | Path,
    *,
    title: str,
    ylabel: str,
    reference: tuple[str, dict[int, int]] | None = None,
    xlabel: str = "self-improvement round",
) -> Path:
    """One line of whole numbers per series over rounds (or minutes); `reference` (name, points) is
    drawn dashed grey. A series named "mean" is drawn thick and black."""
    if not any(series.values()):
        raise ValueError(f"steps needs at least one point, got {series}")
    fig = _figure(6.4, 4.2)
    ax = fig.add_subplot()
    if reference is not None and reference[1]:
        xs = sorted(reference[1])
        ax.plot(xs, [reference[1][x] for x in xs], ls="--", color="grey", lw=1.2, label=reference[0])
    _plot_series(ax, series)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if xlabel.endswith("round"):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    return _save(fig, path)


def histogram(counts: dict[int, int], path: str | Path, *, title: str, xlabel: str) -> Path:
    """Bars of counts per whole number, the share of the total written over each bar."""
    if not counts:
        raise ValueError("histogram needs at least one count, got none")
    fig = _figure(6.4, 4.0)
    ax = fig.add_subplot()
    xs, total = sorted(counts), sum(counts.values())
    bars = ax.bar(xs, [counts[x] for x in xs], color="tab:blue")
    for bar, x in zip(bars, xs):
        ax.annotate(f"{100 * counts[x] / total:.1f}%", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=7)  # fmt: skip
    ax.set_xticks(xs)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("examples")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)
