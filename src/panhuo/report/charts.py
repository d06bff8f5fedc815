"""Chart geometry for the overview, computed in Python; the template only places it as inline SVG.

No script, no external asset: every chart is a handful of ``<rect>``, ``<circle>``, ``<line>``
and ``<text>`` elements whose coordinates come from here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Bar",
    "Column",
    "Point",
    "Scatter",
    "Segment",
    "Tick",
    "bars",
    "calibration_plot",
    "stacked_columns",
]


@dataclass(frozen=True)
class Bar:
    """One horizontal bar: label, value, share and its drawn width (0..``width``)."""

    label: str
    sub: str
    value: float
    share: float
    width: float
    color: str


@dataclass(frozen=True)
class Segment:
    """One coloured piece of a stacked column."""

    y: float
    height: float
    color: str
    status: str
    value: int


@dataclass(frozen=True)
class Column:
    """A stacked column at ``x`` with its label and total."""

    x: float
    label: str
    total: int
    segments: list[Segment]


@dataclass(frozen=True)
class Tick:
    """An axis tick: position and text."""

    pos: float
    text: str


@dataclass(frozen=True)
class Point:
    """A plotted point with its tooltip."""

    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Scatter:
    """A square plot: points, the line through them, axis ticks; ``size`` pixels, origin bottom-left at ``pad``."""

    size: float
    pad: float
    points: list[Point]
    path: str
    ticks: list[Tick]
    top: float


def bars(items: list[tuple[str, str, float, str]], total: float, width: float = 420.0) -> list[Bar]:
    """Bars scaled to the largest value; ``share`` is value / ``total``."""
    top = max((v for _, _, v, _ in items), default=0) or 1
    return [Bar(lab, sub, v, v / total if total else 0.0, width * v / top, c) for lab, sub, v, c in items]


def stacked_columns(
    labels: list[str],
    counts: dict[tuple[str, str], int],
    order: list[str],
    colors: dict[str, str],
    height: float = 180.0,
    step: float = 56.0,
    left: float = 40.0,
) -> list[Column]:
    """One column per label, stacked by ``order`` (bottom first); ``counts[(label, key)]``."""
    totals = [sum(counts.get((lab, k), 0) for k in order) for lab in labels]
    top = max(totals, default=0) or 1
    cols = []
    for i, lab in enumerate(labels):
        y = height
        segs = []
        for k in order:
            v = counts.get((lab, k), 0)
            h = height * v / top
            y -= h
            segs.append(Segment(y, h, colors.get(k, "#90a4ae"), k, v))
        cols.append(Column(left + i * step, lab, totals[i], segs))
    return cols


def calibration_plot(pairs: list[tuple[float, float, str]], size: float = 260.0, pad: float = 40.0) -> Scatter:
    """Predicted (x) against observed (y), both 0..top, with ticks; top is the next 0.1 above the data."""
    hi = max([max(p, o) for p, o, _ in pairs] + [0.1])
    top = min(1.0, -(-round(hi * 10, 6) // 1) / 10)

    def sx(v: float) -> float:
        return pad + size * min(max(v, 0.0), top) / top

    def sy(v: float) -> float:
        return pad + size - size * min(max(v, 0.0), top) / top

    points = [Point(round(sx(p), 1), round(sy(o), 1), t) for p, o, t in pairs]
    path = " ".join(f"{'M' if i == 0 else 'L'}{pt.x:.1f},{pt.y:.1f}" for i, pt in enumerate(points))
    ticks = [Tick(round(size * i / 5, 1), f"{top * i / 5:.2f}") for i in range(6)]
    return Scatter(size, pad, points, path, ticks, top)
