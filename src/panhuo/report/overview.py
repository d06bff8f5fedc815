"""The self-contained HTML overview of account status, tiers and scores (zh-CN, English in small text).

One file, readable offline: inline CSS, charts drawn here as inline SVG (no script, no CDN, no
external asset). Every value reaches the page through Jinja2 with autoescape on. The geometry of
the charts is computed in Python; the template only places it.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from panhuo._io import atomic_write_text
from panhuo.errors import WarehouseError
from panhuo.report.charts import Bar, Column, bars, calibration_plot, stacked_columns
from panhuo.report.sections import (
    NEVER,
    PropensitySection,
    ScoreSection,
    TierSection,
    propensity_section,
    score_section,
    tier_section,
)
from panhuo.status.rules import STATUS_ZH, STATUSES

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace
    from panhuo.status.summary import StatusSummary

__all__ = ["COLORS", "STRATEGY_ZH", "TIER_PALETTE", "Bar", "TierView", "render_overview", "write_overview"]

COLORS = {"effective": "#2e7d32", "sleeping": "#f9a825", "dormant": "#6d4c41", "new_empty": "#1565c0"}
TIER_PALETTE = ("#6d4c41", "#1565c0", "#ef6c00", "#f9a825", "#8e24aa", "#5d4037", "#fbc02d", "#c62828",
                "#2e7d32", "#78909c")
STRATEGY_ZH = {"timing": "时点", "benefit": "权益", "channel": "渠道", "method": "方式"}
_TEMPLATES = Path(__file__).parent / "templates"


def _bars(items: list[tuple[str, str, int, str]], total: int, width: float = 420.0) -> list[Bar]:
    return bars(items, total, width)  # type: ignore[arg-type]


def _trend(summary: StatusSummary, height: float = 180.0, step: float = 56.0) -> list[Column]:
    labels = [p.date.strftime("%Y-%m-%d") for p in summary.trend]
    counts = {(p.date.strftime("%Y-%m-%d"), st): n for p in summary.trend for st, n in p.counts.items()}
    return stacked_columns(labels, counts, list(STATUSES), COLORS, height, step)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f}%"


@dataclass(frozen=True)
class TierView:
    """One tier as the page shows it."""

    id: str
    zh: str
    en: str
    customers: int
    share: float | None
    avg: str
    width: float
    color: str
    strategy: dict[str, str]


def _tier_views(section: TierSection, width: float = 300.0) -> list[TierView]:
    top = max((r.customers for r in section.rows), default=0) or 1
    out = []
    for i, r in enumerate(section.rows):
        tier = section.scheme.tier(r.id)
        avg = "n/a" if r.avg_total_assets is None else f"{r.avg_total_assets:,.2f}"
        out.append(TierView(r.id, r.zh, r.en, r.customers, r.share, avg, width * r.customers / top,
                            TIER_PALETTE[i % len(TIER_PALETTE)], tier.strategy.model_dump()))
    return out


def _score_charts(sec: ScoreSection) -> dict[str, Any]:
    order = list(STATUSES)
    p_labels = [*sec.p_alive_bins, NEVER]
    e_labels = [*sec.e90_bins, NEVER]
    return {
        "p_alive": stacked_columns(p_labels, sec.p_alive, order, COLORS, step=52.0),
        "e90": stacked_columns(e_labels, sec.e90, order, COLORS, step=60.0),
        "p_width": 80 + 52 * len(p_labels),
        "e_width": 80 + 60 * len(e_labels),
    }


def _propensity_charts(sec: PropensitySection) -> dict[str, Any]:
    pairs = [(c.predicted, c.observed, f"第{c.decile}组 decile {c.decile}: 预测 predicted {c.predicted:.3f}, "
              f"实际 observed {c.observed:.3f}" + (f", {c.customers:,} 人" if c.customers is not None else ""))
             for c in sec.calibration]
    total = sum(v for _, v in sec.importance) or 1.0
    imp = bars([(name, "", v, "#5c6bc0") for name, v in sec.importance], total, 360.0)
    return {"calibration": calibration_plot(pairs) if pairs else None, "importance": imp}


def render_overview(
    ws: Workspace,
    summary: StatusSummary,
    tiers: TierSection | None = None,
    scores: ScoreSection | None = None,
    propensity: PropensitySection | None = None,
) -> str:
    """The overview page of ``summary`` (and the tier, score and propensity sections given) as HTML text."""
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
        tiers=_tier_views(tiers) if tiers else None,
        tier_total=sum(r.customers for r in tiers.rows) if tiers else 0,
        strategy_zh=STRATEGY_ZH,
        sc=scores,
        score_charts=_score_charts(scores) if scores else None,
        never_zh="从未交易",
        prop=propensity,
        prop_charts=_propensity_charts(propensity) if propensity else None,
        workspace=ws.root.name,
        generated=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
    )


def _propensity_report(ws: Workspace) -> dict[str, Any] | None:
    """The stored propensity report, when this panhuo has the propensity model and it has been trained."""
    if importlib.util.find_spec("panhuo.scores.propensity") is None:
        return None
    from panhuo.scores import propensity

    if not hasattr(propensity, "propensity_report"):
        return None
    try:
        report: dict[str, Any] = propensity.propensity_report(ws)
    except WarehouseError:  # not trained yet
        return None
    return report


def write_overview(
    ws: Workspace,
    con: BaseBackend,
    as_of: dt.date | None = None,
    summary: StatusSummary | None = None,
    *,
    tiers: TierSection | None = None,
    scores: ScoreSection | None = None,
    propensity: dict[str, Any] | None = None,
    sections: bool = True,
) -> Path:
    """Write ``<workspace>/reports/overview-<as_of>.html`` (atomically) and return its path.

    Uses the stored status at ``as_of`` (default: the latest computed date); compute it first with
    :func:`panhuo.status.history.compute_status`. Pass what the caller already has (``summary``,
    the ``tiers`` it printed, the ``propensity`` report it just made) so nothing is computed
    twice; what is not given is read from the stored tags and scores when ``sections`` is true
    (a section whose inputs are not stored is left out of the page).
    """
    if summary is None:
        from panhuo.status.summary import summarize

        summary = summarize(ws, con, as_of)
    day = summary.as_of
    if sections:
        tiers = tiers if tiers is not None else tier_section(ws, con, day)
        scores = scores if scores is not None else score_section(ws, con, day)
        propensity = propensity if propensity is not None else _propensity_report(ws)
    path = ws.reports_dir / f"overview-{day.isoformat()}.html"
    atomic_write_text(path, render_overview(ws, summary, tiers, scores, propensity_section(propensity)))
    return path
