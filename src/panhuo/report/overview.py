"""The self-contained HTML overview of account status (zh-CN, English in small text).

One file, readable offline: inline CSS, charts drawn here as inline SVG (no script, no CDN, no
external asset). Every value reaches the page through Jinja2 with autoescape on. The geometry of
the charts is computed in Python; the template only places it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment, FileSystemLoader, select_autoescape

from panhuo._io import atomic_write_text
from panhuo.status.rules import STATUS_ZH, STATUSES

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace
    from panhuo.status.summary import StatusSummary

__all__ = ["COLORS", "Bar", "render_overview", "write_overview"]

COLORS = {"effective": "#2e7d32", "sleeping": "#f9a825", "dormant": "#6d4c41", "new_empty": "#1565c0"}
_TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Bar:
    """One horizontal bar: label, value, share and its drawn width (0..``width``)."""

    label: str
    sub: str
    value: int
    share: float
    width: float
    color: str


@dataclass(frozen=True)
class Segment:
    y: float
    height: float
    color: str
    status: str
    value: int


@dataclass(frozen=True)
class Column:
    x: float
    label: str
    total: int
    segments: list[Segment]


def _bars(items: list[tuple[str, str, int, str]], total: int, width: float = 420.0) -> list[Bar]:
    top = max((v for _, _, v, _ in items), default=0) or 1
    return [Bar(lab, sub, v, v / total if total else 0.0, width * v / top, c) for lab, sub, v, c in items]


def _trend(summary: StatusSummary, height: float = 180.0, step: float = 56.0) -> list[Column]:
    top = max((sum(p.counts.values()) for p in summary.trend), default=0) or 1
    cols = []
    for i, p in enumerate(summary.trend):
        y = height
        segs = []
        for s in STATUSES:
            h = height * p.counts.get(s, 0) / top
            y -= h
            segs.append(Segment(y, h, COLORS[s], s, p.counts.get(s, 0)))
        cols.append(Column(40 + i * step, p.date.strftime("%Y-%m-%d"), sum(p.counts.values()), segs))
    return cols


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f}%"


def render_overview(ws: Workspace, summary: StatusSummary) -> str:
    """The overview page of ``summary`` as HTML text."""
    env = Environment(
        loader=FileSystemLoader(str(_TEMPLATES)),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
    )
    env.filters["pct"] = _pct
    status_bars = _bars(
        [(STATUS_ZH[s], s, summary.counts.get(s, 0), COLORS[s]) for s in STATUSES], summary.customers
    )
    band_bars = _bars([(b.label, "RMB", b.customers, "#546e7a") for b in summary.bands], summary.customers)
    trend = _trend(summary)
    return env.get_template("overview.html").render(
        s=summary,
        status_bars=status_bars,
        band_bars=band_bars,
        trend=trend,
        trend_width=max(400, 80 + 56 * len(trend)),
        colors=COLORS,
        zh=STATUS_ZH,
        statuses=STATUSES,
        rules=ws.settings.status,
        workspace=ws.root.name,
        generated=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
    )


def write_overview(
    ws: Workspace, con: BaseBackend, as_of: dt.date | None = None, summary: StatusSummary | None = None
) -> Path:
    """Write ``<workspace>/reports/overview-<as_of>.html`` (atomically) and return its path.

    Uses the stored status at ``as_of`` (default: the latest computed date); compute it first with
    :func:`panhuo.status.history.compute_status`.
    """
    if summary is None:
        from panhuo.status.summary import summarize

        summary = summarize(ws, con, as_of)
    path = ws.reports_dir / f"overview-{summary.as_of.isoformat()}.html"
    atomic_write_text(path, render_overview(ws, summary))
    return path
