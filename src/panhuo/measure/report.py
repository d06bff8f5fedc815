"""The measured report: outcomes turned into per-arm increments with CIs, costs, and their JSON/Markdown forms.

:func:`build_report` takes the :class:`~panhuo.measure.outcomes.Outcomes` of a playbook or a campaign
and returns a plain dict (the JSON format documented in :mod:`panhuo.cli.report`); :func:`to_markdown`
renders it for people. Only rows whose window is closed are estimated; open windows are listed with
the trading days that remain and the estimates say they are not final.

Comparisons: per arm, the treated customers of that arm against every holdout customer, plus
``arm = "all"`` (every treated customer). Global-control customers are counted, not compared (the
programme view is not built yet). A customer assigned in several runs counts once per run (runs are
treated as independent samples). Tier is ``"all"`` for now: per-tier breakdown is not built yet.

Assignments whose customer is not in the load's ``customers`` table have unknown outcomes: they are
counted in ``missing_customers`` and left out, never counted as non-conversions.

Weights: each row's logged propensity (the probability of its group and arm). For ``arm = "all"``
a treated row's weight uses the probability of being treated at all, ``1 - the run's holdout
propensity`` (the run's holdout share), since the arms are pooled; a campaign's rows keep their own
logged propensity (contact_history's is the probability of the row's group).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np

from panhuo.measure.estimate import Estimate, increment_with_cuped
from panhuo.measure.outcomes import Outcomes

__all__ = ["FORMAT", "build_report", "to_markdown", "benefit_costs"]

FORMAT = "panhuo.report/1"
_CENT = Decimal("0.01")


def _rmb(fen: int) -> float:
    return float((Decimal(fen) / 100).quantize(_CENT, ROUND_HALF_EVEN))


def benefit_costs(ws: Any, run_ids: list[int]) -> dict[tuple[int, str], int]:
    """Fen reserved in the benefit ledger per (run_id, customer_id) of the given runs."""
    if not run_ids:
        return {}
    from sqlalchemy import func, select

    from panhuo.benefits.models import IssuedBenefit
    from panhuo.store import open_store

    store = open_store(ws)
    try:
        with store.session() as s:
            q = (select(IssuedBenefit.run_id, IssuedBenefit.customer_id, func.sum(IssuedBenefit.unit_cost_fen))
                 .where(IssuedBenefit.run_id.in_(run_ids))
                 .group_by(IssuedBenefit.run_id, IssuedBenefit.customer_id))
            return {(r, c): int(v or 0) for r, c, v in s.execute(q)}
    finally:
        store.dispose()


def _est(e: Estimate | None, scale: float = 1.0) -> dict[str, float | None] | None:
    if e is None:
        return None
    return e.scaled(scale).as_dict(2)


def _compare(treated: list[dict[str, Any]], holdout: list[dict[str, Any]], all_arms: bool,
             hold_prop: dict[int, float], costs: dict[tuple[int, str], int] | None,
             acquisition_cost: Decimal) -> dict[str, Any]:
    def prop(r: dict[str, Any]) -> float:
        if all_arms and r["run_id"] in hold_prop:
            return 1.0 - hold_prop[r["run_id"]]
        return r["propensity"]

    def arr(rows: list[dict[str, Any]], key: str) -> np.ndarray:
        return np.array([float(r[key]) for r in rows], dtype=np.float64)

    pt = np.array([prop(r) for r in treated]) if treated else np.array([])
    ph = arr(holdout, "propensity") if holdout else np.array([])
    conv = increment_with_cuped(arr(treated, "success"), arr(holdout, "success"), arr(treated, "pre_success"),
                                arr(holdout, "pre_success"), pt, ph)
    comm = increment_with_cuped(arr(treated, "commission_fen"), arr(holdout, "commission_fen"),
                                arr(treated, "pre_commission_fen"), arr(holdout, "pre_commission_fen"), pt, ph)
    ct = sum(1 for r in treated if r["success"])
    ch = sum(1 for r in holdout if r["success"])
    out: dict[str, Any] = {
        "n_treated": len(treated),
        "n_holdout": len(holdout),
        "conversions": {"treated": ct, "holdout": ch},
        "conversion_rate": {"treated": round(ct / len(treated), 6) if treated else None,
                            "holdout": round(ch / len(holdout), 6) if holdout else None},
        "incremental_conversions": _est(conv.plain),
        "incremental_conversions_cuped": _est(conv.cuped),
        "incremental_commission_rmb": _est(comm.plain, 0.01),
        "incremental_commission_rmb_cuped": _est(comm.cuped, 0.01),
        "significant": {"conversions": conv.plain.significant, "commission": comm.plain.significant},
        "not_estimable": conv.plain.reason,
        "cost_rmb": None,
        "cost_per_incremental_reactivation_rmb": None,
        "acquisition_cost_rmb": float(acquisition_cost),
    }
    if costs is not None:
        fen = sum(costs.get((r["run_id"], r["customer_id"]), 0) for r in treated)
        out["cost_rmb"] = _rmb(fen)
        inc = conv.plain.estimate
        if inc is not None and inc > 0:
            per = (Decimal(fen) / 100 / Decimal(repr(inc))).quantize(_CENT, ROUND_HALF_EVEN)
            out["cost_per_incremental_reactivation_rmb"] = float(per)
    return out


def build_report(outcomes: Outcomes, *, acquisition_cost: Decimal = Decimal("1000.00"),
                 costs: dict[tuple[int, str], int] | None = None) -> dict[str, Any]:
    """One report item (a playbook or a campaign): windows, and per arm (tier ``all``) the increments."""
    every = outcomes.rows.to_pylist()
    rows = [r for r in every if r.get("in_data") is not False]
    missing = len(every) - len(rows)
    closed = [r for r in rows if r["closed"]]
    open_rows = [r for r in rows if not r["closed"]]
    hold = [r for r in closed if r["grp"] == "holdout"]
    treated = [r for r in closed if r["grp"] == "treated"]
    hold_prop: dict[int, float] = {}
    if outcomes.kind == "playbook":  # a run's holdout share is one number; campaigns log each row's own
        for r in hold:
            hold_prop.setdefault(r["run_id"], r["propensity"])
    by_arm: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in treated:
        by_arm[r["arm"] or "default"].append(r)
    groups = [{"arm": "all", "tier": "all", **_compare(treated, hold, True, hold_prop, costs, acquisition_cost)}]
    if len(by_arm) > 1:
        for arm in sorted(by_arm):
            groups.append({"arm": arm, "tier": "all",
                           **_compare(by_arm[arm], hold, False, hold_prop, costs, acquisition_cost)})
    remaining = max((r["days_remaining"] for r in open_rows), default=0)
    if not closed and open_rows:
        for g in groups:
            g["not_estimable"] = (f"no window is closed yet: {remaining} trading day(s) remain before the "
                                  "first result")

    def iso(v: Any) -> Any:
        return v.isoformat() if isinstance(v, dt.date) else v

    return {
        "kind": outcomes.kind,
        "id": outcomes.id,
        "success_event": outcomes.event,
        "window_trading_days": outcomes.window_days,
        "data_end": iso(outcomes.data_end),
        "final": not open_rows and bool(closed),
        "assignments": len(every),
        "missing_customers": missing,
        "measured": len(closed),
        "pending": {"assignments": len(open_rows), "max_trading_days_remaining": remaining},
        "n_global_control": sum(1 for r in closed if r["grp"] == "global_control"),
        "windows": [{k: iso(v) for k, v in w.items()} for w in outcomes.runs],
        "groups": groups,
    }


def _ci(d: dict[str, float | None] | None, unit: str = "") -> str:
    if d is None or d["estimate"] is None:
        return "—"
    return f"{d['estimate']:,.2f}{unit} [{d['ci_low']:,.2f}, {d['ci_high']:,.2f}]"


def to_markdown(report: dict[str, Any]) -> str:
    """The report for people: one section per playbook/campaign, plain words on significance and open windows."""
    lines = [f"# panhuo report ({report['generated_at']})", "",
             f"Acquisition cost of a new effective account: {report['acquisition_cost_rmb']:,.2f} RMB.", ""]
    for item in report["items"]:
        lines += [f"## {item['kind']} {item['id']}", "",
                  f"Success: {item['success_event']} within {item['window_trading_days']} trading days; "
                  f"data up to {item['data_end']}; {item['measured']} of {item['assignments']} assignments measured; "
                  f"{item['n_global_control']} in the global control group (not compared here).", ""]
        if item["missing_customers"]:
            lines += [f"{item['missing_customers']} assignment(s) name customers missing from the data: their "
                      "outcomes are unknown and they are left out.", ""]
        if item["pending"]["assignments"]:
            lines += [f"**Not final**: {item['pending']['assignments']} assignment(s) are in windows still open "
                      f"(up to {item['pending']['max_trading_days_remaining']} trading day(s) remain); they are "
                      "left out of the estimates below.", ""]
        lines += ["| arm | tier | treated | holdout | conv. treated | conv. holdout | incremental conversions "
                  "(95% CI) | CUPED | incremental commission RMB (95% CI) | CUPED | cost RMB | cost per reactivation |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        notes = []
        for g in item["groups"]:
            cost = "—" if g["cost_rmb"] is None else f"{g['cost_rmb']:,.2f}"
            per = "—" if g["cost_per_incremental_reactivation_rmb"] is None else \
                f"{g['cost_per_incremental_reactivation_rmb']:,.2f}"
            lines.append(f"| {g['arm']} | {g['tier']} | {g['n_treated']} | {g['n_holdout']} | "
                         f"{g['conversions']['treated']} | {g['conversions']['holdout']} | "
                         f"{_ci(g['incremental_conversions'])} | {_ci(g['incremental_conversions_cuped'])} | "
                         f"{_ci(g['incremental_commission_rmb'])} | {_ci(g['incremental_commission_rmb_cuped'])} | "
                         f"{cost} | {per} |")
            name = f"arm {g['arm']}"
            if g["not_estimable"]:
                notes.append(f"- {name}: not estimable — {g['not_estimable']}.")
                continue
            for what, key in (("incremental conversions", "conversions"), ("incremental commission", "commission")):
                if not g["significant"][key]:
                    notes.append(f"- {name}: {what} not significant (the 95% CI includes 0): no increment is shown.")
                else:
                    notes.append(f"- {name}: {what} significant at 95%.")
            if g["cost_per_incremental_reactivation_rmb"] is not None:
                per = g["cost_per_incremental_reactivation_rmb"]
                side = "below" if per < report["acquisition_cost_rmb"] else "not below"
                notes.append(f"- {name}: {per:,.2f} RMB per incremental reactivation, {side} the acquisition cost.")
        lines += ["", *notes, ""]
    return "\n".join(lines)
