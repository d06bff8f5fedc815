"""Chart geometry and table rows for the console's pages: server-side SVG, no script, no external asset.

The geometry comes from :mod:`panhuo.report.charts` (the offline overview's bars and stacked columns,
with its colours); this module only picks what each page draws: status bars and the monthly trend,
reactivations by month, a run's funnel, tiers, and the measured report's arms with their 95% CIs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from panhuo.report.charts import Bar, Column, bars, stacked_columns
from panhuo.report.overview import COLORS, TIER_PALETTE
from panhuo.service.console.queries import Reactivation, rmb
from panhuo.status.rules import STATUS_ZH, STATUSES
from panhuo.status.summary import StatusSummary

__all__ = ["COLORS", "STAGE_ZH", "CiBar", "funnel_bars", "stage_zh", "reactivation_columns", "report_view", "roi_rows", "status_bars",
           "tier_rows", "trend"]

FUNNEL_ZH = {"candidates": "候选客户", "holdout": "对照组", "sends": "发送"}
#: the guardrails and late stages of a run's funnel (``after <name>``), as the console labels them
STAGE_ZH = {"global_control": "全局对照组", "reentry": "重复进入", "consent": "授权同意", "pipl": "拒绝个性化",
            "dormant": "休眠户仅激活", "suitability": "适当性", "frequency": "频次上限", "send_window": "发送窗口",
            "one_per_run": "每次一条", "content": "文案审查", "benefit": "权益库存与预算"}


def stage_zh(stage: str) -> str:
    """``after consent`` -> ``经授权同意``; known stage names in Chinese, others as they are."""
    if stage in FUNNEL_ZH:
        return FUNNEL_ZH[stage]
    if stage.startswith("after "):
        name = stage[len("after "):]
        return f"经{STAGE_ZH.get(name, name)}"
    return stage


def status_bars(s: StatusSummary) -> list[Bar]:
    """Customers per status, scaled to the largest."""
    return bars([(STATUS_ZH[st], st, s.counts.get(st, 0), COLORS[st]) for st in STATUSES], s.customers, 420.0)


def trend(s: StatusSummary) -> dict[str, Any]:
    """The stacked status columns of every computed month-end and the as-of date."""
    labels = [p.date.strftime("%Y-%m-%d") for p in s.trend]
    counts = {(p.date.strftime("%Y-%m-%d"), st): n for p in s.trend for st, n in p.counts.items()}
    cols = stacked_columns(labels, counts, list(STATUSES), COLORS, 180.0, 56.0)
    return {"cols": cols, "width": max(400, 80 + 56 * len(cols))}


def reactivation_columns(rows: list[Reactivation]) -> dict[str, Any]:
    """One column per status date: customers reactivated then (height), with their commission since."""
    labels = [r.date.isoformat() for r in rows]
    cols: list[Column] = stacked_columns(labels, {(r.date.isoformat(), "n"): r.customers for r in rows}, ["n"],
                                         {"n": COLORS["effective"]}, 150.0, 56.0)
    return {"cols": list(zip(cols, rows, strict=True)), "width": max(400, 80 + 56 * len(cols))}


def funnel_bars(stages: list[tuple[str, int]]) -> list[Bar]:
    """A run's funnel: one bar per stage, share of the candidates."""
    total = stages[0][1] if stages else 0
    return bars([(stage_zh(k), k, n, "#1565c0" if k in ("candidates", "sends") else "#90a4ae")
                 for k, n in stages], total, 380.0)


def tier_rows(scheme: Any, rows: list[dict[str, Any]], width: float = 300.0) -> list[dict[str, Any]]:
    """Tiers (:func:`panhuo.service.views.tiers` rows) with bar width, colour, rule and suggested strategy."""
    from decimal import Decimal

    top = max((r["customers"] for r in rows), default=0) or 1
    known = {t.id: t for t in scheme.tiers}
    out = []
    for i, r in enumerate(rows):
        tier = known.get(r["id"])
        avg = r.get("avg_total_assets_rmb")
        out.append({**r, "avg": "—" if avg is None else f"{Decimal(avg):,.2f}元",
                    "width": width * r["customers"] / top, "color": TIER_PALETTE[i % len(TIER_PALETTE)],
                    "strategy": tier.strategy.model_dump() if tier else {},
                    "rule": " ".join(tier.rule.text.split()) if tier else ""})
    return out


@dataclass(frozen=True)
class CiBar:
    """An estimate with its 95% CI on a shared axis: x positions of low, estimate and high, and the zero line."""

    label: str
    estimate: float | None
    low: float | None
    high: float | None
    x_low: float
    x_est: float
    x_high: float
    x_zero: float
    significant: bool


def _ci_bars(items: list[tuple[str, dict[str, Any] | None, bool]], width: float = 360.0, left: float = 10.0
             ) -> list[CiBar]:
    vals = [v for _, e, _ in items if e for v in (e.get("ci_low"), e.get("ci_high"), e.get("estimate"))
            if v is not None]
    lo, hi = min([0.0, *vals]), max([0.0, *vals])
    span = (hi - lo) or 1.0

    def x(v: float) -> float:
        return round(left + width * (v - lo) / span, 1)

    out = []
    for label, e, sig in items:
        if not e or e.get("estimate") is None:
            out.append(CiBar(label, None, None, None, 0, 0, 0, x(0.0), False))
            continue
        out.append(CiBar(label, e["estimate"], e.get("ci_low"), e.get("ci_high"),
                         x(e.get("ci_low", e["estimate"])), x(e["estimate"]), x(e.get("ci_high", e["estimate"])),
                         x(0.0), sig))
    return out


def _group_label(g: dict[str, Any]) -> str:
    """An arm's groups by arm id, a tier's by 分层·<tier> (the report breaks down by arm, tier and both)."""
    tier = g.get("tier", "all")
    return g["arm"] if tier == "all" else f"分层·{tier}"


def report_view(item: dict[str, Any]) -> dict[str, Any]:
    """One report item (``panhuo.report/1``) with its conversion bars and CI charts per arm and per tier.

    The arm x tier cells stay in the table of the full report (``panhuo report``): charted, they would be
    too many bars to read.
    """
    groups = [g for g in item.get("groups") or [] if g.get("tier", "all") == "all" or g.get("arm") == "all"]
    conv = []
    for g in groups:
        rate = g.get("conversion_rate") or {}
        for side, zh, color in (("treated", "触达组", "#1565c0"), ("holdout", "对照组", "#90a4ae")):
            v = rate.get(side)
            if v is not None:
                conv.append((f"{_group_label(g)} · {zh}", side, float(v), color))
    conv_bars = bars(conv, 1.0, 300.0) if conv else []
    inc = _ci_bars([(_group_label(g), g.get("incremental_conversions"),
                     bool((g.get("significant") or {}).get("conversions"))) for g in groups])
    com = _ci_bars([(_group_label(g), g.get("incremental_commission_rmb"),
                     bool((g.get("significant") or {}).get("commission"))) for g in groups])
    return {"item": item, "groups": groups, "conv_bars": conv_bars, "inc": inc, "com": com}


_ROI_NOTE_ZH = {
    "costs unknown here": "成本未知",
    "not estimable": "无法估计",
    "no cost recorded: ROI undefined": "未记录成本，ROI 无定义",
    "incremental commission not significant (95% CI includes 0): no ROI is claimed": "增量佣金不显著（95% 置信区间含 0），不给出 ROI",
}


def roi_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per playbook (arm and tier "all"): incremental commission, cost (benefits and messages) and the report's
    ROI (incremental commission / cost, given only when the increment is significant; otherwise its note)."""
    out = []
    for item in report.get("items", []):
        g = next((g for g in item.get("groups") or []
                  if g.get("arm") == "all" and g.get("tier", "all") == "all"), None)
        if g is None:
            continue
        est = (g.get("incremental_commission_rmb") or {}).get("estimate")
        roi = (g.get("roi") or {}).get("estimate")
        note = g.get("roi_note")
        out.append({"id": item["id"], "final": item.get("final"), "incremental_commission": rmb(est),
                    "cost": rmb(g.get("cost_rmb")), "roi": roi, "roi_note": _ROI_NOTE_ZH.get(note, note),
                    "not_estimable": g.get("not_estimable"),
                    "cpir": rmb(g.get("cost_per_incremental_reactivation_rmb")),
                    "incremental_conversions": (g.get("incremental_conversions") or {}).get("estimate")})
    return out
