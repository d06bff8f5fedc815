"""The measured report: outcomes turned into increments with CIs per arm and tier, costs, ROI, and their forms.

:func:`build_report` takes the :class:`~panhuo.measure.outcomes.Outcomes` of a playbook or a campaign
and returns a plain dict (the JSON format documented in :mod:`panhuo.cli.report`);
:func:`build_programme` compares every playbook's treated customers with the persistent global
control group; :func:`make_report` puts them together for a workspace (what ``panhuo report``, the API
and the console show); :func:`to_markdown` renders the report for people (:mod:`panhuo.report.measure` renders
the HTML page). Only rows whose window is closed are estimated; open windows are listed with the
trading days that remain and the estimates say they are not final.

Comparisons (``groups``): ``arm = "all", tier = "all"`` (every treated customer against every holdout
customer), then one per arm when there are several, one per tier (treated and holdout customers of
that tier, the tier on the as-of date), and one per arm and tier when there are several arms. A
customer assigned in several runs counts once per run (runs are treated as independent samples).
A comparison with fewer than :data:`MIN_GROUP` (30) treated or control customers gets no estimate,
only its counts and the reason: a normal-approximation CI on a handful of customers (say 3 holdout
customers who all converted) would look precise and be wrong. In the programme view (:func:`build_programme`) the "arm" is the playbook.

Assignments whose customer is not in the load's ``customers`` table have unknown outcomes: they are
counted in ``missing_customers`` and left out, never counted as non-conversions.

Weights: each row's logged propensity (the probability of its group and arm). When arms are pooled
a treated row's weight uses the probability of being treated at all, ``1 - the run's holdout
propensity``; a campaign's rows keep their own logged propensity (contact_history's is the
probability of the row's group). Each increment is given plain (Hajek IPW) and CUPED-adjusted (the
same outcome in the pre-period as covariate); significance, ROI and cost per reactivation use the
CUPED figure when there is one (``estimator``), else the plain one.

Costs (treated customers of the measured rows only, so they match the increments): benefits issued
(the benefit ledger's unit cost at issue) and messages sent (outbox rows sent or turned into advisor
call tasks, by channel, at ``measure.message_cost`` of panhuo.yaml). ROI = incremental commission /
cost, with the CI of the increment divided by the (known) cost; both ROI and cost per incremental
reactivation are given only when the increment is significant, otherwise ``roi_note`` says why.
All money is summed in integer fen and shown in RMB rounded to the fen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from panhuo.errors import ConfigError
from panhuo.measure.estimate import Estimate, Increment, increment_with_cuped
from panhuo.measure.outcomes import Outcomes

__all__ = ["FORMAT", "MIN_GROUP", "CHANNELS", "build_report", "build_programme", "to_markdown", "benefit_costs", "cost_table",
           "campaign_cost_table", "make_report"]

FORMAT = "panhuo.report/1"
MIN_GROUP = 30  # fewest treated and control customers a comparison needs before its CI is given
CHANNELS = ("app_push", "sms", "wechat", "call")
_CENT = Decimal("0.01")
_SENT = ("sent", "tasked")  # outbox states of a message that went out (a call task costs advisor time)


def _rmb(fen: int) -> float:
    return float((Decimal(int(fen)) / 100).quantize(_CENT, ROUND_HALF_EVEN))


def _fen_of(rmb: Decimal) -> int:
    return int((Decimal(rmb) * 100).to_integral_value(ROUND_HALF_EVEN))


def benefit_costs(ws: Any, run_ids: list[int]) -> dict[tuple[int, str], int]:
    """Fen reserved in the benefit ledger per (run_id, customer_id) of the given runs."""
    t = cost_table(ws, run_ids, {})
    return {(r, c): f for r, c, f in zip(t.column("run_id").to_pylist(), t.column("customer_id").to_pylist(),
                                           t.column("benefit_fen").to_pylist(), strict=True) if f}


_COST_SCHEMA = pa.schema([("run_id", pa.int64()), ("customer_id", pa.string()), ("benefit_fen", pa.int64()),
                          *[(f"msg_{c}", pa.int64()) for c in CHANNELS]])


def _cost_frame(keys: dict[tuple[int, str], dict[str, int]]) -> pa.Table:
    cols: dict[str, list[Any]] = {n: [] for n in _COST_SCHEMA.names}
    for (run, cid), v in keys.items():
        cols["run_id"].append(run)
        cols["customer_id"].append(cid)
        for n in _COST_SCHEMA.names[2:]:
            cols[n].append(v.get(n, 0))
    return pa.table(cols, schema=_COST_SCHEMA)


def cost_table(ws: Any, run_ids: list[int], message_cost: dict[str, Decimal] | None = None) -> pa.Table:
    """Per (run_id, customer_id): fen of benefits issued (ledger) and messages sent per channel (outbox).

    Columns: run_id, customer_id, benefit_fen, msg_app_push, msg_sms, msg_wechat, msg_call (counts).
    ``message_cost`` is only checked here (its channels must be known); prices apply in the report.
    """
    for ch in message_cost or {}:
        if ch not in CHANNELS:
            raise ValueError(f"measure.message_cost: unknown channel {ch!r}")
    if not run_ids:
        return _COST_SCHEMA.empty_table()
    from sqlalchemy import BigInteger, case, cast, func, select

    from panhuo.benefits.models import IssuedBenefit
    from panhuo.measure.outcomes import fetch_raw, rows_to_arrow
    from panhuo.runs.models import OutboxMessage
    from panhuo.store import open_store

    o = OutboxMessage
    store = open_store(ws)
    try:
        with store.session() as s:
            # SUM of a bigint is numeric on PostgreSQL: cast back so every driver hands over ints
            ledger = fetch_raw(s, select(IssuedBenefit.run_id, IssuedBenefit.customer_id,
                                         cast(func.sum(IssuedBenefit.unit_cost_fen), BigInteger))
                               .where(IssuedBenefit.run_id.in_(run_ids))
                               .group_by(IssuedBenefit.run_id, IssuedBenefit.customer_id))
            sent = fetch_raw(s, select(o.run_id, o.customer_id,
                                       *[cast(func.sum(case((o.channel == ch, 1), else_=0)), BigInteger)
                                         for ch in CHANNELS])
                             .where(o.run_id.in_(run_ids), o.status.in_(_SENT))
                             .group_by(o.run_id, o.customer_id))
    finally:
        store.dispose()
    keys = ["run_id", "customer_id"]

    def frame(rows: list[tuple[Any, ...]], names: list[str]) -> pa.Table:
        return rows_to_arrow(rows, [(n, _COST_SCHEMA.field(n).type) for n in names])

    lt = frame(ledger, [*keys, "benefit_fen"])
    st = frame(sent, [*keys, *[f"msg_{c}" for c in CHANNELS]])
    both = pa.concat_tables([lt, st], promote_options="default")  # missing columns null, then summed per key
    g = both.group_by(keys).aggregate([(n, "sum") for n in _COST_SCHEMA.names[2:]])
    return pa.table({n: (g.column(n) if n in keys else pc.fill_null(g.column(f"{n}_sum"), 0))
                     .cast(_COST_SCHEMA.field(n).type) for n in _COST_SCHEMA.names}, schema=_COST_SCHEMA)


def campaign_cost_table(ws: Any, con: Any, campaign_id: str) -> pa.Table:
    """Messages per channel of a past campaign's treated rows (contact_history); benefit cost unknown (0)."""
    from panhuo.warehouse import Warehouse

    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    if not wh.has_table("contact_history"):
        return _COST_SCHEMA.empty_table()
    h = wh.table(con, "contact_history")
    h = h.filter((h.campaign_id == campaign_id) & (h["group"] == "treated") & h.channel.notnull())
    g = h.group_by([h.customer_id, h.channel]).agg(n=h.count()).to_pyarrow().to_pylist()
    keys: dict[tuple[int, str], dict[str, int]] = {}
    for r in g:
        if r["channel"] in CHANNELS:
            d = keys.setdefault((0, r["customer_id"]), {})
            d[f"msg_{r['channel']}"] = d.get(f"msg_{r['channel']}", 0) + int(r["n"])
    return _cost_frame(keys)


# -- the comparison arrays -------------------------------------------------------------------------
class _Cat:
    """A string column as integer codes (dictionary-encoded): ``cat == "x"`` is a boolean mask, fast."""

    def __init__(self, col: pa.ChunkedArray | pa.Array, fill: str) -> None:
        arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        enc = pc.dictionary_encode(pc.fill_null(arr.cast(pa.string()), fill))
        self.labels: list[str] = enc.dictionary.to_pylist()
        self.codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int32)

    def __eq__(self, value: object) -> np.ndarray:  # type: ignore[override]
        try:
            return self.codes == self.labels.index(str(value))
        except ValueError:
            return np.zeros(self.codes.size, dtype=bool)

    __hash__ = None  # type: ignore[assignment]

    def values(self, mask: np.ndarray) -> set[str]:
        """The distinct labels among the rows of ``mask``."""
        return {self.labels[i] for i in np.unique(self.codes[mask])}


class _Frame:
    """The measured rows of one report as numpy arrays (one entry per assignment), costs joined."""

    def __init__(self, t: pa.Table, costs: pa.Table | None, prices: dict[str, int] | None,
                 pool_by_run: bool) -> None:
        self.n = t.num_rows
        self.run_id = t.column("run_id").to_numpy(zero_copy_only=False).astype(np.int64)
        self.grp = _Cat(t.column("grp"), "")
        self.arm = _Cat(t.column("arm"), "default")
        self.tier = _Cat(t.column("tier"), "unknown") if "tier" in t.column_names else None
        self.prop = t.column("propensity").to_numpy(zero_copy_only=False).astype(np.float64)
        self.y = np.asarray(t.column("success").to_numpy(zero_copy_only=False), dtype=np.float64)
        self.x = np.asarray(t.column("pre_success").to_numpy(zero_copy_only=False), dtype=np.float64)
        self.c = t.column("commission_fen").to_numpy(zero_copy_only=False).astype(np.float64)
        self.xc = t.column("pre_commission_fen").to_numpy(zero_copy_only=False).astype(np.float64)
        # pooled arms: P(treated at all) = 1 - the run's holdout share (a campaign keeps its own)
        self.pooled = self.prop.copy()
        if pool_by_run:
            hold = self.grp == "holdout"
            runs, first = np.unique(self.run_id[hold], return_index=True)
            share = self.prop[hold][first]
            treated = self.grp == "treated"
            pos = np.searchsorted(runs, self.run_id)
            known = (pos < len(runs)) & (runs[np.minimum(pos, max(len(runs) - 1, 0))] == self.run_id) \
                if len(runs) else np.zeros(self.n, dtype=bool)
            use = treated & known
            self.pooled[use] = 1.0 - share[pos[use]]
        self.costed = costs is not None
        self.benefit = np.zeros(self.n, dtype=np.int64)
        self.msgs = {ch: np.zeros(self.n, dtype=np.int64) for ch in CHANNELS}
        if costs is not None and costs.num_rows and self.n:
            # per run, look each cost row's customer up among the run's rows (a hash lookup in C; a run
            # holds a customer once), cheaper than a general two-key join at a million rows
            ids = t.column("customer_id").combine_chunks()
            crun = costs.column("run_id").to_numpy(zero_copy_only=False)
            for run in np.unique(crun):
                rows = np.flatnonzero(self.run_id == run)
                if not rows.size:
                    continue
                mine = costs.filter(pa.array(crun == run))
                pos = pc.fill_null(pc.index_in(mine.column("customer_id"), value_set=ids.take(pa.array(rows))), -1)
                pos = pos.to_numpy(zero_copy_only=False).astype(np.int64)
                hit = pos >= 0
                at = rows[pos[hit]]
                self.benefit[at] = pc.fill_null(mine.column("benefit_fen"), 0).to_numpy(zero_copy_only=False)[hit]
                for ch in CHANNELS:
                    self.msgs[ch][at] = pc.fill_null(mine.column(f"msg_{ch}"), 0).to_numpy(zero_copy_only=False)[hit]
        self.prices = {ch: int((prices or {}).get(ch, 0)) for ch in CHANNELS}


def _est(e: Estimate | None, scale: float = 1.0) -> dict[str, float | None] | None:
    if e is None:
        return None
    return e.scaled(scale).as_dict(2)


def _headline(inc: Increment) -> tuple[Estimate, str]:
    if inc.cuped is not None and inc.cuped.estimable:
        return inc.cuped, "cuped"
    return inc.plain, "ipw"


def _varied(inc: Increment) -> Increment:
    """No variation in either group (nobody converted, say): a zero-width CI would claim certainty; none is given."""
    if inc.plain.estimable and inc.plain.se == 0:
        return Increment(Estimate.not_estimable("no variation in the outcome in either group (e.g. nobody "
                                                "converted): no confidence interval can be given"), None)
    return inc


def _compare(f: _Frame, tmask: np.ndarray, hmask: np.ndarray, pooled: bool,
             acquisition_cost: Decimal) -> dict[str, Any]:
    pt = (f.pooled if pooled else f.prop)[tmask]
    ph = f.prop[hmask]
    n_t, n_h = int(tmask.sum()), int(hmask.sum())
    if n_t and n_h and min(n_t, n_h) < MIN_GROUP:  # the normal CI needs a sample; a handful gives a false one
        small = Estimate.not_estimable(f"too few customers for a 95% CI ({n_t} treated, {n_h} in the control "
                                       f"group; at least {MIN_GROUP} each)")
        conv = comm = Increment(small, None)
    else:
        conv = _varied(increment_with_cuped(f.y[tmask], f.y[hmask], f.x[tmask], f.x[hmask], pt, ph))
        comm = _varied(increment_with_cuped(f.c[tmask], f.c[hmask], f.xc[tmask], f.xc[hmask], pt, ph))
    ct, ch = int(f.y[tmask].sum()), int(f.y[hmask].sum())
    conv_h, basis = _headline(conv)
    comm_h, _ = _headline(comm)
    out: dict[str, Any] = {
        "n_treated": n_t,
        "n_holdout": n_h,
        "conversions": {"treated": ct, "holdout": ch},
        "conversion_rate": {"treated": round(ct / n_t, 6) if n_t else None,
                            "holdout": round(ch / n_h, 6) if n_h else None},
        "incremental_conversions": _est(conv.plain),
        "incremental_conversions_cuped": _est(conv.cuped),
        "incremental_commission_rmb": _est(comm.plain, 0.01),
        "incremental_commission_rmb_cuped": _est(comm.cuped, 0.01),
        "estimator": basis,
        "significant": {"conversions": conv_h.significant, "commission": comm_h.significant},
        "not_estimable": conv.plain.reason,
        "reach": None,
        "cost": None,
        "cost_rmb": None,
        "roi": None,
        "roi_note": None,
        "cost_per_incremental_reactivation_rmb": None,
        "cost_per_incremental_reactivation_range_rmb": None,
        "acquisition_cost_rmb": float(acquisition_cost),
    }
    if not f.costed:
        out["roi_note"] = "costs unknown here"
        return out
    benefit_fen = int(f.benefit[tmask].sum())
    counts = {ch: int(f.msgs[ch][tmask].sum()) for ch in CHANNELS}
    msg_fen = {ch: counts[ch] * f.prices[ch] for ch in CHANNELS}
    total = benefit_fen + sum(msg_fen.values())
    reached = np.zeros(f.n, dtype=bool)
    for ch in CHANNELS:
        reached |= f.msgs[ch] > 0
    out["reach"] = {"contacted": int((reached & tmask).sum()),
                    "share": round(float((reached & tmask).sum()) / n_t, 6) if n_t else None}
    out["cost"] = {"benefit_rmb": _rmb(benefit_fen), "message_rmb": _rmb(sum(msg_fen.values())),
                   "messages": counts, "message_rmb_by_channel": {ch: _rmb(v) for ch, v in msg_fen.items()},
                   "total_rmb": _rmb(total)}
    out["cost_rmb"] = _rmb(total)
    if not comm_h.estimable or not conv_h.estimable:
        out["roi_note"] = "not estimable"
    elif total == 0:
        out["roi_note"] = "no cost recorded: ROI undefined"
    elif not comm_h.significant:
        out["roi_note"] = "incremental commission not significant (95% CI includes 0): no ROI is claimed"
    else:
        cost = total / 100.0
        lo, hi = comm_h.ci_low / 100.0 / cost, comm_h.ci_high / 100.0 / cost  # type: ignore[operator]
        out["roi"] = {"estimate": round(comm_h.estimate / 100.0 / cost, 4),  # type: ignore[operator]
                      "ci_low": round(lo, 4), "ci_high": round(hi, 4)}
    if total and conv_h.significant and conv_h.estimate is not None and conv_h.estimate > 0:
        per = (Decimal(total) / 100 / Decimal(repr(conv_h.estimate))).quantize(_CENT, ROUND_HALF_EVEN)
        out["cost_per_incremental_reactivation_rmb"] = float(per)
        hi_inc, lo_inc = conv_h.ci_high, conv_h.ci_low
        out["cost_per_incremental_reactivation_range_rmb"] = [round(total / 100.0 / hi_inc, 2),  # type: ignore[operator]
                                                               round(total / 100.0 / lo_inc, 2)]  # type: ignore[operator]
    return out


def _groups(f: _Frame, closed: np.ndarray, control: str, acquisition_cost: Decimal,
            tier_order: list[str], arms_pooled: bool = False) -> list[dict[str, Any]]:
    treated = closed & (f.grp == "treated")
    hold = closed & (f.grp == control)
    arms = sorted(f.arm.values(treated))
    groups = [{"arm": "all", "tier": "all", **_compare(f, treated, hold, True, acquisition_cost)}]
    if len(arms) > 1:
        for arm in arms:
            groups.append({"arm": arm, "tier": "all",
                           **_compare(f, treated & (f.arm == arm), hold, arms_pooled, acquisition_cost)})
    if f.tier is not None:
        present = f.tier.values(treated | hold)
        tiers = [t for t in tier_order if t in present] + sorted(present - set(tier_order))
        for tier in tiers:
            tm = f.tier == tier
            groups.append({"arm": "all", "tier": tier,
                           **_compare(f, treated & tm, hold & tm, True, acquisition_cost)})
        if len(arms) > 1:
            for arm in arms:
                for tier in tiers:
                    tm = f.tier == tier
                    if not (treated & tm & (f.arm == arm)).any():
                        continue
                    groups.append({"arm": arm, "tier": tier,
                                   **_compare(f, treated & tm & (f.arm == arm), hold & tm, arms_pooled,
                                              acquisition_cost)})
    return groups


def _iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, dt.date) else v


def _item(outcomes: Outcomes, t: pa.Table, *, control: str, costs: pa.Table | None, prices: dict[str, int] | None,
          acquisition_cost: Decimal, pool_by_run: bool, by_playbook: bool = False) -> dict[str, Any]:
    every = t.num_rows
    in_data = pc.fill_null(t.column("in_data"), True).to_numpy(zero_copy_only=False).astype(bool) \
        if "in_data" in t.column_names else np.ones(every, dtype=bool)  # null: not checked, taken as present
    t = t.filter(pa.array(in_data))
    f = _Frame(t, costs, prices, pool_by_run)
    closed = t.column("closed").to_numpy(zero_copy_only=False).astype(bool)
    remaining = t.column("days_remaining").to_numpy(zero_copy_only=False).astype(np.int64)
    open_rows = ~closed
    groups = _groups(f, closed, control, acquisition_cost, list(outcomes.tier_names), arms_pooled=by_playbook)
    left = int(remaining[open_rows].max()) if open_rows.any() else 0
    if every == 0:
        for g in groups:
            g["not_estimable"] = ("the finished runs assigned no customer (no candidate matched, or every one was "
                                  "blocked by a guardrail): nothing to measure")
    elif not closed.any() and open_rows.any():
        for g in groups:
            g["not_estimable"] = (f"no window is closed yet: {left} trading day(s) remain before the "
                                  "first result")
    other = "global_control" if control == "holdout" else "holdout"
    return {
        "kind": outcomes.kind,
        "id": outcomes.id,
        "success_event": outcomes.event,
        "window_trading_days": outcomes.window_days,
        "data_end": _iso(outcomes.data_end),
        "final": bool(not open_rows.any() and closed.any()),
        "assignments": every,
        "missing_customers": every - t.num_rows,
        "measured": int(closed.sum()),
        "pending": {"assignments": int(open_rows.sum()), "max_trading_days_remaining": left},
        "control": control,
        f"n_{other}": int((closed & (f.grp == other)).sum()),
        "n_global_control": int((closed & (f.grp == "global_control")).sum()),
        "tier_names": dict(outcomes.tier_names),
        "notes": list(outcomes.notes),
        "windows": [{k: _iso(v) for k, v in w.items()} for w in outcomes.runs],
        "groups": groups,
    }


def _as_cost_table(costs: dict[tuple[int, str], int] | pa.Table | None) -> pa.Table | None:
    if costs is None or isinstance(costs, pa.Table):
        return costs
    return _cost_frame({k: {"benefit_fen": int(v)} for k, v in costs.items()})


def build_report(outcomes: Outcomes, *, acquisition_cost: Decimal = Decimal("1000.00"),
                 costs: dict[tuple[int, str], int] | pa.Table | None = None,
                 message_cost: dict[str, Decimal] | None = None) -> dict[str, Any]:
    """One report item (a playbook or a campaign): windows, and per arm and tier the increments over the holdout.

    ``costs``: None (costs unknown), the benefit fen per (run_id, customer_id), or a :func:`cost_table`;
    ``message_cost``: RMB per message by channel (panhuo.yaml ``measure.message_cost``).
    """
    prices = {ch: _fen_of(v) for ch, v in (message_cost or {}).items()}
    item = _item(outcomes, outcomes.rows, control="holdout", costs=_as_cost_table(costs), prices=prices,
                 acquisition_cost=acquisition_cost, pool_by_run=outcomes.kind == "playbook")
    if outcomes.kind == "campaign" and costs is not None:
        item["notes"].append("contact_history records no benefit cost: the cost of a past campaign counts its "
                             "messages only, so its ROI is an upper bound")
    return item


_PROGRAMME_COLS = ("run_id", "customer_id", "grp", "arm", "propensity", "closed", "days_remaining", "in_data",
                   "success", "pre_success", "commission_fen", "pre_commission_fen")


def build_programme(items: list[Outcomes], *, acquisition_cost: Decimal = Decimal("1000.00"),
                    costs: pa.Table | None = None, message_cost: dict[str, Decimal] | None = None
                    ) -> dict[str, Any]:
    """The programme view: every playbook's treated customers against the persistent global control group.

    Each playbook keeps its own success event and window; the pooled success is "the playbook's own
    success event". Treated rows weigh ``1 / (1 - the run's holdout share)``; global-control rows share
    one propensity (the global share), so their weight cancels. Global control is drawn before the
    guardrails, so it also holds customers a guardrail would have blocked: the programme increment is
    that of contacting the customers the playbooks could reach, measured against everyone.
    """
    from panhuo.measure.outcomes import Outcomes as _O

    if not items:
        raise ValueError("the programme view needs at least one playbook's outcomes")
    parts = []
    tiers = all("tier" in o.rows.column_names for o in items)
    cols = [*_PROGRAMME_COLS, "tier"] if tiers else list(_PROGRAMME_COLS)
    for o in items:
        r = o.rows
        if "in_data" not in r.column_names:  # not checked: taken as present
            r = r.append_column("in_data", pa.nulls(r.num_rows, pa.bool_()))
        r = r.select(cols)  # the programme's "arm" is the playbook: one comparison per playbook
        parts.append(r.set_column(r.column_names.index("arm"), "arm", pa.array([o.id] * r.num_rows, pa.string())))
    t = pa.concat_tables(parts, promote_options="permissive")
    names: dict[str, str] = {}
    notes: list[str] = []
    for o in items:
        names.update(o.tier_names)
        notes.extend(n for n in o.notes if n not in notes)
    notes.append("global control is drawn before the guardrails: it also holds customers a guardrail would have "
                 "blocked, so this compares contacting whom the playbooks could reach with no contact at all")
    end = max((o.data_end for o in items if o.data_end is not None), default=None)
    runs = [w for o in items for w in o.runs]
    events = sorted({o.event for o in items})
    days = max(o.window_days for o in items)
    pseudo = _O("programme", "programme", "+".join(events), days, end, t, runs, notes=notes, tier_names=names)
    prices = {ch: _fen_of(v) for ch, v in (message_cost or {}).items()}
    item = _item(pseudo, t, control="global_control", costs=costs, prices=prices,
                 acquisition_cost=acquisition_cost, pool_by_run=True, by_playbook=True)
    item["playbooks"] = [o.id for o in items]
    for g in item["groups"]:
        if g["n_holdout"] == 0 and g["not_estimable"] and "holdout" in g["not_estimable"]:
            g["not_estimable"] = ("no customer of the global control group is measured here (runs.global_control_share "
                                  "0, or none was a candidate" + (" in this tier" if g["tier"] != "all" else "")
                                  + "): the programme increment cannot be measured")
    return item


# -- Markdown --------------------------------------------------------------------------------------
def _ci(d: dict[str, float | None] | None, unit: str = "") -> str:
    if d is None or d["estimate"] is None:
        return "—"
    return f"{d['estimate']:,.2f}{unit} [{d['ci_low']:,.2f}, {d['ci_high']:,.2f}]"


def verdicts(g: dict[str, Any], acquisition_cost: float) -> list[str]:
    """Plain-English sentences on one comparison: significance, ROI, cost per reactivation vs acquisition."""
    if g["not_estimable"]:
        return [f"not estimable — {g['not_estimable']}."]
    out = []
    for what, key in (("incremental conversions", "conversions"), ("incremental commission", "commission")):
        if not g["significant"][key]:
            out.append(f"{what} not significant (the 95% CI includes 0): no increment is shown.")
        else:
            out.append(f"{what} significant at 95%.")
    if g.get("roi"):
        r = g["roi"]
        out.append(f"ROI {r['estimate']:.2f} (95% CI {r['ci_low']:.2f} to {r['ci_high']:.2f}) RMB of commission "
                   "per RMB spent.")
    elif g.get("roi_note") and g.get("cost") is not None:
        out.append(f"no ROI: {g['roi_note']}.")
    if g["cost_per_incremental_reactivation_rmb"] is not None:
        per = g["cost_per_incremental_reactivation_rmb"]
        side = "below" if per < acquisition_cost else "not below"
        out.append(f"{per:,.2f} RMB per incremental reactivation, {side} the acquisition cost.")
    return out


def to_markdown(report: dict[str, Any]) -> str:
    """The report for people: one section per playbook/campaign (and the programme), plain words on significance."""
    lines = [f"# panhuo report ({report['generated_at']})", "",
             f"Acquisition cost of a new effective account: {report['acquisition_cost_rmb']:,.2f} RMB.", ""]
    items = list(report["items"]) + ([report["programme"]] if report.get("programme") else [])
    for item in items:
        control = item.get("control", "holdout")
        if item["kind"] == "programme":
            lines += ["## programme (every playbook against the global control group)", ""]
        else:
            lines += [f"## {item['kind']} {item['id']}", ""]
        lines += [f"Success: {item['success_event']} within {item['window_trading_days']} trading days; "
                  f"data up to {item['data_end']}; {item['measured']} of {item['assignments']} assignments measured; "
                  + (f"{item['n_global_control']} in the global control group (not compared here)."
                     if control == "holdout" else f"{item.get('n_holdout', 0)} holdout rows (not compared here)."),
                  ""]
        if item["missing_customers"]:
            lines += [f"{item['missing_customers']} assignment(s) name customers missing from the data: their "
                      "outcomes are unknown and they are left out.", ""]
        if item["pending"]["assignments"]:
            lines += [f"**Not final**: {item['pending']['assignments']} assignment(s) are in windows still open "
                      f"(up to {item['pending']['max_trading_days_remaining']} trading day(s) remain); they are "
                      "left out of the estimates below.", ""]
        for note in item.get("notes", []):
            lines += [f"Note: {note}.", ""]
        against = "holdout" if control == "holdout" else "global control"
        lines += [f"| arm | tier | treated | {against} | conv. treated | conv. {against} | incremental conversions "
                  "(95% CI) | CUPED | incremental commission RMB (95% CI) | CUPED | cost RMB | ROI | "
                  "cost per reactivation |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        notes = []
        for g in item["groups"]:
            cost = "—" if g["cost_rmb"] is None else f"{g['cost_rmb']:,.2f}"
            per = "—" if g["cost_per_incremental_reactivation_rmb"] is None else \
                f"{g['cost_per_incremental_reactivation_rmb']:,.2f}"
            roi = "—" if not g.get("roi") else f"{g['roi']['estimate']:.2f}"
            lines.append(f"| {g['arm']} | {g['tier']} | {g['n_treated']} | {g['n_holdout']} | "
                         f"{g['conversions']['treated']} | {g['conversions']['holdout']} | "
                         f"{_ci(g['incremental_conversions'])} | {_ci(g['incremental_conversions_cuped'])} | "
                         f"{_ci(g['incremental_commission_rmb'])} | {_ci(g['incremental_commission_rmb_cuped'])} | "
                         f"{cost} | {roi} | {per} |")
            name = f"arm {g['arm']}" + (f", tier {g['tier']}" if g["tier"] != "all" else "")
            notes += [f"- {name}: {v}" for v in verdicts(g, report["acquisition_cost_rmb"])]
        lines += ["", *notes, ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- the whole report of a workspace


def _playbooks_with_runs(ws: Any) -> list[str]:
    from sqlalchemy import select

    from panhuo.runs.models import Run
    from panhuo.store import open_store

    store = open_store(ws)
    try:
        with store.session() as s:
            return list(s.execute(select(Run.playbook_id).where(Run.state == "done").distinct()
                                  .order_by(Run.playbook_id)).scalars())
    finally:
        store.dispose()


Progress = Callable[[str, int, int], None]  # (step, done, total)


def make_report(ws: Any, *, playbook: str | None = None, campaign: str | None = None,
                window: int = 10, progress: Progress | None = None, programme: bool | None = None
                ) -> dict[str, Any]:
    """The report dict (see the module docstring) for one playbook, one campaign, or every playbook run.

    ``progress(step, done, total)`` is called as the playbooks are measured; ``programme`` (default:
    when every playbook is reported) adds the programme view against the global control group.
    """
    from panhuo.engines import connect
    from panhuo.measure.outcomes import MeasureError, campaign_outcomes, playbook_outcomes
    from panhuo.measure.report import FORMAT, build_programme, build_report, campaign_cost_table, cost_table

    if playbook and campaign:
        raise ConfigError("panhuo report: give --playbook or --campaign, not both")
    note = progress or (lambda _s, _d, _t: None)
    con = connect(ws.settings.engine, ws.tmp_dir)
    cost = ws.settings.acquisition_cost
    prices = dict(ws.settings.measure.message_cost)
    items = []
    measured = []
    if campaign:
        note(f"campaign {campaign}: outcomes", 0, 2)
        out = campaign_outcomes(ws, con, campaign, window_days=window, tiers=True)
        note(f"campaign {campaign}: estimates", 1, 2)
        items.append(build_report(out, acquisition_cost=cost, costs=campaign_cost_table(ws, con, campaign),
                                  message_cost=prices))
        note(f"campaign {campaign}: done", 2, 2)
    else:
        ids = [playbook] if playbook else _playbooks_with_runs(ws)
        if not ids:
            raise MeasureError("no playbook has a finished run yet: nothing to report (see `panhuo run`)")
        steps = 2 * len(ids)
        for i, pid in enumerate(ids):
            note(f"{pid}: outcomes", 2 * i, steps)
            out = playbook_outcomes(ws, con, pid, tiers=True)
            note(f"{pid}: estimates", 2 * i + 1, steps)
            run_ids = sorted({r["run_id"] for r in out.runs})
            costs = cost_table(ws, run_ids, prices)
            items.append(build_report(out, acquisition_cost=cost, costs=costs, message_cost=prices))
            measured.append((out, costs))
        note("programme", steps, steps)
    prog = None
    if measured and (programme if programme is not None else playbook is None):
        import pyarrow as pa

        prog = build_programme([o for o, _ in measured], acquisition_cost=cost,
                               costs=pa.concat_tables([c for _, c in measured]), message_cost=prices)
    from zoneinfo import ZoneInfo

    return {
        "format": FORMAT,
        "generated_at": dt.datetime.now(ZoneInfo("Asia/Shanghai")).isoformat(timespec="seconds"),
        "acquisition_cost_rmb": float(cost),
        "message_cost_rmb": {ch: float(v) for ch, v in prices.items()},
        "items": items,
        "programme": prog,
    }
