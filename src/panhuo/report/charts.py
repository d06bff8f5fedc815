"""Chart geometry for the overview and the measurement report, computed in Python; the template only places it as inline SVG.

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
    "Interval",
    "Forest",
    "bars",
    "calibration_plot",
    "forest",
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


@dataclass(frozen=True)
class Interval:
    """One row of a forest plot: the estimate's marker and its 95% CI as a line (pixels), and its label."""

    y: float
    label: str
    x: float | None  # None: not estimable (no marker, the label says so)
    lo: float | None
    hi: float | None
    text: str
    significant: bool


@dataclass(frozen=True)
class Forest:
    """Estimates with 95% CIs on one horizontal axis; ``zero`` is the x of 0 (the no-effect line)."""

    width: float
    height: float
    left: float
    zero: float
    rows: list[Interval]
    ticks: list[Tick]


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    import math

    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    first = math.ceil(lo / step) * step
    out = []
    v = first
    while v <= hi + 1e-9 * step:
        out.append(round(v, 10))
        v += step
    return out


def forest(items: list[tuple[str, float | None, float | None, float | None, bool]], *, width: float = 640.0,
           left: float = 170.0, step: float = 26.0, fmt: str = "{:,.1f}") -> Forest:
    """A forest plot of ``(label, estimate, ci_low, ci_high, significant)``; the axis always includes 0."""
    vals = [v for _, e, lo, hi, _ in items for v in (e, lo, hi) if v is not None]
    lo_v, hi_v = min(vals + [0.0]), max(vals + [0.0])
    if hi_v == lo_v:
        hi_v = lo_v + 1.0
    pad = (hi_v - lo_v) * 0.05
    lo_v, hi_v = lo_v - pad, hi_v + pad
    plot = width - left - 20

    def sx(v: float) -> float:
        return round(left + plot * (v - lo_v) / (hi_v - lo_v), 1)

    rows = []
    for i, (label, est, lo, hi, sig) in enumerate(items):
        y = round(step * i + step / 2 + 4, 1)
        if est is None or lo is None or hi is None:
            rows.append(Interval(y, label, None, None, None, "—", False))
        else:
            rows.append(Interval(y, label, sx(est), sx(lo), sx(hi),
                                 f"{fmt.format(est)} [{fmt.format(lo)}, {fmt.format(hi)}]", sig))
    height = step * len(items) + 30
    ticks = [Tick(sx(v), fmt.format(v)) for v in _nice_ticks(lo_v, hi_v)]
    return Forest(width, height, left, sx(0.0), rows, ticks)
