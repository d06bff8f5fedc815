"""``panhuo simulate``: weeks of runs, delivery and responses on a brokerage, with the bandit learning.

One simulated week ``w`` (run day ``d_w`` = the start day + 5 (w - 1) trading days):

1. **run** every live playbook that is due at ``d_w`` at 10:30 (:func:`panhuo.runs.engine.run_due`,
   the ``panhuo run --due`` semantics; a Thompson playbook draws its arms from the posteriors of its
   closed windows, per tier, :mod:`panhuo.learn.bandit`);
2. **deliver**: the runs' pending outbox rows are marked sent at their send time (provider
   ``simulate``, receipt delivered) with their ``contact_log`` rows, in one transaction, so the
   frequency caps and re-entry rules see them next week;
3. **respond**: the world (:class:`panhuo.simulate.world.World`) draws the logins, trades (with the
   customer's own commission rate and the minimum charge) and deposits of every customer on the 5
   trading days after ``d_w`` — baseline for everyone, changed for customers messaged in the last
   ``effect_days`` — plus the days' IPO subscriptions, and writes them as data contract v1 Parquet
   parts (generator writers) next to the load's own tables in ``<workspace>/simulate/data/``;
4. **load** that folder through the normal ingest (full validation, one atomic load);
5. **learn**: the allocation for the next run day (posteriors from the windows closed by now) and the
   week's expected regret of every playbook with arms against the best arm of each tier (the world
   knows it), next to a fixed equal split's on the same treated customers.

Status and tags stay those of the start (the run engine reads the latest snapshot on or before each
run day); lifecycle triggers therefore do not fire during a simulation unless status is recomputed.

Resumable: ``<workspace>/simulate/state.json`` records each finished week (atomically); every step
of a week is idempotent (runs by run key, delivery of pending rows only, response parts rewritten
identically, ingest skipped when the load already reaches the week's last day), so a simulation
killed mid-week and rerun finishes that week once and goes on. The summary (``summary.json``) holds
per week the runs, the arm probabilities per tier, the regret, and the true expected incremental
conversions of every playbook's treated customers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from panhuo.errors import ConfigError, PanhuoError
from panhuo.simulate.world import World

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from panhuo.calendar.service import TradingCalendar
    from panhuo.config import Workspace

__all__ = ["SIM_PLAYBOOK", "SIM_USERS", "SimulateError", "Simulation", "WEEK_DAYS", "check_weeks",
           "ensure_sim_playbook", "latest_start", "prepare_brokerage"]

WEEK_DAYS = 5
SIM_PLAYBOOK = "sim-weekly-wake"
SIM_PLAYBOOK_FILE = "weekly-wake-thompson.yaml"
#: who acts in a simulation: an admin, an operator who writes the playbook, a compliance approver
SIM_USERS: tuple[tuple[str, str], ...] = (("sim-admin", "admin"), ("sim-ops", "operator"),
                                          ("sim-compliance", "compliance"))
TABLES_WRITTEN = ("trades", "app_events", "balances", "market_events")
DEFAULT_RATE_PPM = 250  # a customer without a stock/fund trade on record: the generator's median rate
DEFAULT_AMOUNT_FEN = 2_000_000
MIN_COMMISSION_FEN = 500

Progress = Callable[[str, int, int], None]


class SimulateError(PanhuoError):
    """A simulation that cannot start or go on (no data, a CSV source, a state of another seed)."""


def _atomic_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _atomic_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")  # a dot file: ingest ignores it
    pq.write_table(table, tmp)
    os.replace(tmp, path)


# -- setting up ------------------------------------------------------------------------------------
def prepare_brokerage(ws: Workspace, customers: int, seed: int, as_of: dt.date | None = None,
                      progress: Progress | None = None) -> dt.date:
    """Generate a brokerage into ``<workspace>/simulate/generated``, load it, compute status and tags."""
    from panhuo.contract.ingest import ingest
    from panhuo.engines import connect
    from panhuo.generate import default_as_of, generate_brokerage
    from panhuo.status.history import compute_status
    from panhuo.tags import compute_tags

    note = progress or (lambda _s, _d, _n: None)
    day = as_of or default_as_of()
    folder = ws.root / "simulate" / "generated"
    note("generate", 0, 4)
    generate_brokerage(folder, customers=customers, seed=seed, as_of=day)
    con = connect(ws.settings.engine, ws.tmp_dir)
    note("ingest", 1, 4)
    ingest(ws, folder, con=con)
    note("status", 2, 4)
    compute_status(ws, con, day, backfill=False)
    note("tags", 3, 4)
    compute_tags(ws, con, day)
    note("ready", 4, 4)
    return day


def ensure_sim_playbook(ws: Workspace) -> str | None:
    """Put the simulation playbook live (four eyes: sim-ops writes, sim-compliance approves) unless a
    live Thompson playbook exists; returns its id when it acted."""
    from panhuo.playbooks import repository
    from panhuo.playbooks.loader import load_playbook
    from panhuo.playbooks.schema import PlaybookSpec
    from panhuo.store import add_user, open_store
    from panhuo.store.users import get_user

    store = open_store(ws)
    try:
        with store.session() as s:
            live = repository.list_playbooks(s, state="live")
            for pb in live:
                v = repository.get_version(s, pb.id, pb.live_version)
                if PlaybookSpec.model_validate(v.parsed).method.allocation == "thompson":
                    return None
            state = {p.id: p.state for p in repository.list_playbooks(s)}.get(SIM_PLAYBOOK)
            if state in ("paused", "retired"):
                return None  # an operator stopped it: respect that
            for name, role in SIM_USERS:
                if get_user(s, name) is None:
                    add_user(s, name, [role], actor=None if role == "admin" else "sim-admin")
        steps = ("new", "draft", "in_review", "approved", "live")
        ref = resources.files("panhuo.simulate").joinpath(SIM_PLAYBOOK_FILE)
        with resources.as_file(ref) as path:
            loaded = load_playbook(Path(path))
        for action in steps[steps.index(state or "new"):-1]:
            with store.session() as s:
                if action == "new":
                    repository.add_version(s, loaded, actor="sim-ops")
                elif action == "draft":
                    repository.submit(s, SIM_PLAYBOOK, actor="sim-ops")
                elif action == "in_review":
                    repository.approve(s, SIM_PLAYBOOK, actor="sim-compliance", note="simulation: reviewed")
                else:
                    repository.activate(s, SIM_PLAYBOOK, actor="sim-ops")
        return SIM_PLAYBOOK
    finally:
        store.dispose()


def latest_start(cal: TradingCalendar, weeks: int, default: dt.date | None = None) -> dt.date:
    """The latest start day (``default``, else the last trading day before today) whose ``weeks``
    simulated weeks fit in the trading calendar."""
    from panhuo.generate import default_as_of

    day = default or default_as_of()
    last = cal.add_trading_days(dt.date(cal.last_year, 12, 31), 0)
    fit = cal.add_trading_days(last, -WEEK_DAYS * weeks)
    return min(day, fit)


# -- the simulation ----------------------------------------------------------------------------------
@dataclasses.dataclass
class Simulation:
    """The simulation of workspace ``ws`` (state in ``<workspace>/simulate/``); :meth:`week` plays one week."""

    ws: Workspace
    seed: int = 0
    actor: str = "sim-ops"
    world: World | None = None

    def __post_init__(self) -> None:
        from panhuo.calendar import calendar_for
        from panhuo.engines import connect

        self.folder = self.ws.root / "simulate"
        self.data = self.folder / "data"
        self.state_file = self.folder / "state.json"
        self.cal: TradingCalendar = calendar_for(self.ws)
        self.con: BaseBackend = connect(self.ws.settings.engine, self.ws.tmp_dir)
        self.world = self.world or World(seed=self.seed)
        self.state = self._load_state()

    # state ------------------------------------------------------------------------------------
    def _load_state(self) -> dict[str, Any]:
        if not self.state_file.exists():
            return {}
        try:
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SimulateError(f"{self.state_file}: unreadable simulation state ({exc}); remove the "
                                "simulate/ folder to start over") from exc
        if state.get("seed") != self.seed:
            raise SimulateError(f"{self.state_file}: this workspace's simulation uses seed {state.get('seed')}, "
                                f"not {self.seed}: rerun with --seed {state.get('seed')} to continue it, or "
                                "remove the simulate/ folder to start over")
        return state

    def _save(self) -> None:
        _atomic_json(self.state_file, self.state)

    @property
    def weeks_done(self) -> int:
        return len(self.state.get("weeks", []))

    def start(self) -> dt.date:
        """The first run day (the load's last date at the first invocation), fixed in the state."""
        from panhuo.measure.outcomes import data_end
        from panhuo.warehouse import Warehouse

        if "start" in self.state:
            return dt.date.fromisoformat(self.state["start"])
        wh = Warehouse(self.ws.warehouse_dir, self.ws.settings.ingest.keep_loads)
        if wh.current_id is None:
            raise SimulateError("no data loaded in this workspace: give --customers K to simulate on a generated "
                                "brokerage, or load one first (panhuo generate + panhuo ingest)")
        end = data_end(wh, self.con)
        if end is None:
            raise SimulateError("the load in force has no trades, balances or app events: nothing to start from")
        day = end if self.cal.is_trading_day(end) else self.cal.previous_trading_day(end)
        self._link_source(wh)
        self.state = {"version": 1, "seed": self.seed, "start": day.isoformat(), "weeks": []}
        self._population(day)
        self._save()
        return day

    def check_fits(self, weeks: int) -> None:
        """SimulateError unless ``weeks`` weeks from the start (and the look-ahead run day) fit the trading calendar."""
        from panhuo.errors import CalendarError

        start = self.start()
        try:
            self.cal.add_trading_days(start, WEEK_DAYS * weeks)
        except CalendarError as exc:
            raise SimulateError(
                f"{weeks} simulated weeks from {start} need trading days beyond the trading calendar "
                f"(it covers {self.cal.first_year}-{self.cal.last_year}): simulate fewer weeks, add the next "
                f"year's closures to the calendar override file, or simulate a brokerage generated earlier "
                f"(--customers K --as-of {latest_start(self.cal, weeks)})") from exc

    def run_day(self, week: int) -> dt.date:
        """The run day of week ``week`` (1-based)."""
        return self.cal.add_trading_days(self.start(), WEEK_DAYS * (week - 1))

    def _link_source(self, wh: Any) -> None:
        """``simulate/data/<table>/``: the load's own input files (hard links) as the first part of each table."""
        manifest = wh.manifest()
        tmp = self.folder / ".data-tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for name, rec in manifest.tables.items():
            src = Path(rec.source)
            if rec.source_format != "parquet":
                raise SimulateError(f"table {name} of the load in force came from {rec.source_format} ({src}): "
                                    "the simulator appends Parquet parts, so load Parquet files "
                                    "(panhuo generate --format parquet)")
            parts = sorted(p for p in src.rglob("*.parquet") if not p.name.startswith((".", "_"))) \
                if src.is_dir() else [src]
            if not parts or not all(p.exists() for p in parts):
                raise SimulateError(f"table {name}: the input {src} of the load in force is gone")
            (tmp / name).mkdir(parents=True, exist_ok=True)
            for i, p in enumerate(parts):
                dest = tmp / name / f"000-base-{i:04d}.parquet"
                try:
                    os.link(p, dest)
                except OSError:
                    shutil.copy2(p, dest)
        shutil.rmtree(self.data, ignore_errors=True)
        os.replace(tmp, self.data)

    # population ---------------------------------------------------------------------------------
    def _population(self, day: dt.date) -> None:
        """Per customer: tier (on the start day's tags), app user, own commission rate, typical amount."""
        from panhuo.learn.bandit import tier_table
        from panhuo.warehouse import Warehouse

        wh = Warehouse(self.ws.warehouse_dir, self.ws.settings.ingest.keep_loads)
        c = wh.table(self.con, "customers")
        cust = self.con.to_pyarrow(c.select("customer_id", app=c.app_user.fill_null(False)).order_by("customer_id"))
        t = wh.table(self.con, "trades")
        t = t.filter(t.asset_class.isin(["stock", "fund"]) & (t.amount_fen > 0))
        rate = t.filter(t.commission_fen > MIN_COMMISSION_FEN)
        rates = self.con.to_pyarrow(rate.group_by("customer_id").agg(
            rate=(rate.commission_fen.cast("float64") * 1e6 / rate.amount_fen.cast("float64")).median()))
        amounts = self.con.to_pyarrow(t.group_by("customer_id").agg(amount=t.amount_fen.cast("float64").median()))
        st = t.filter(t.asset_class == "stock")
        sym = self.con.to_pyarrow(st.group_by(["market", "symbol"]).agg(n=st.symbol.count())
                                  .order_by([ibis.desc("n"), "symbol"]).limit(50))
        ids = cust.column("customer_id").to_pylist()
        r = dict(zip(rates.column("customer_id").to_pylist(), rates.column("rate").to_pylist(), strict=True))
        a = dict(zip(amounts.column("customer_id").to_pylist(), amounts.column("amount").to_pylist(), strict=True))
        tiers = tier_table(self.ws, self.con, day)
        tier_of = dict(zip(tiers.column("customer_id").to_pylist(), tiers.column("tier").to_pylist(), strict=True)) \
            if tiers is not None else {}
        pop = pa.table({
            "customer_id": pa.array(ids, pa.string()),
            "tier": pa.array([tier_of.get(i) for i in ids], pa.string()),
            "app_user": cust.column("app"),
            "rate_ppm": pa.array([int(round((r.get(i) or DEFAULT_RATE_PPM) / 10) * 10) for i in ids], pa.int64()),
            "amount_fen": pa.array([int(a.get(i) or DEFAULT_AMOUNT_FEN) for i in ids], pa.int64()),
        })
        _atomic_parquet(pop, self.folder / "population.parquet")
        symbols = [(m, s) for m, s in zip(sym.column("market").to_pylist(), sym.column("symbol").to_pylist(),
                                          strict=True) if s] or [("SH", "600000")]
        self.state["symbols"] = symbols

    def population(self) -> pa.Table:
        return pq.read_table(self.folder / "population.parquet")

    # messages -----------------------------------------------------------------------------------
    def messages(self, upto: dt.date) -> list[dict[str, Any]]:
        """Messages sent (or made call tasks) by runs on or before ``upto`` whose effect may still last,
        oldest first, each with the number of messages the customer got in the fatigue days before."""
        from sqlalchemy import select

        from panhuo.runs.models import OutboxMessage, Run
        from panhuo.store import open_store

        world = self.world
        assert world is not None
        lo = self.cal.add_trading_days(self.start(), -(world.effect_days + world.fatigue_days))
        store = open_store(self.ws)
        try:
            with store.session() as s:
                rows = s.execute(
                    select(OutboxMessage.customer_id, OutboxMessage.playbook_id, OutboxMessage.arm,
                           OutboxMessage.channel, Run.as_of, Run.id)
                    .join(Run, Run.id == OutboxMessage.run_id)
                    .where(OutboxMessage.status.in_(("sent", "tasked")), Run.as_of >= lo, Run.as_of <= upto)
                    .order_by(Run.as_of, Run.id, OutboxMessage.customer_id)).all()
        finally:
            store.dispose()
        out = [{"customer_id": r[0], "playbook_id": r[1], "arm": r[2], "channel": r[3], "as_of": r[4],
                "run_id": r[5]} for r in rows]
        seen: dict[str, list[dt.date]] = {}
        for m in out:
            before = seen.setdefault(m["customer_id"], [])
            first = self.cal.add_trading_days(m["as_of"], -world.fatigue_days)
            m["prior"] = sum(1 for d in before if first <= d < m["as_of"])
            before.append(m["as_of"])
        return out

    def _effect_end(self, as_of: dt.date) -> dt.date:
        """The last trading day a message of a run at ``as_of`` acts on (past the calendar: no end in sight)."""
        from panhuo.errors import CalendarError

        world = self.world
        assert world is not None
        try:
            return self.cal.add_trading_days(as_of, world.effect_days)
        except CalendarError:
            return dt.date.max

    def _multipliers(self, msgs: list[dict[str, Any]], pop_ids: list[str], tier: dict[str, str | None]
                     ) -> np.ndarray:
        world = self.world
        assert world is not None
        out = np.ones(len(msgs))
        by_pb: dict[str, list[int]] = {}
        for i, m in enumerate(msgs):
            by_pb.setdefault(m["playbook_id"], []).append(i)
        for pb, idx in by_pb.items():
            ms = [msgs[i] for i in idx]
            ids = [m["customer_id"] for m in ms]
            out[idx] = world.multiplier(ids, pb, [tier.get(c) for c in ids], [m["arm"] for m in ms],
                                        [m["channel"] for m in ms], np.array([m["prior"] for m in ms]))
        return out

    # the week's responses -----------------------------------------------------------------------
    def responses(self, week: int) -> dict[str, pa.Table]:
        """The contract rows of the 5 trading days after week ``week``'s run day (deterministic)."""
        from panhuo.generate.writer import arrow_schema, money
        from panhuo.warehouse import Warehouse

        world = self.world
        assert world is not None
        d0 = self.run_day(week)
        days = [self.cal.add_trading_days(d0, k) for k in range(1, WEEK_DAYS + 1)]
        pop = self.population()
        ids = pop.column("customer_id").to_pylist()
        tiers = pop.column("tier").to_pylist()
        tier = dict(zip(ids, tiers, strict=True))
        pos = {c: i for i, c in enumerate(ids)}
        app = np.asarray(pop.column("app_user").to_numpy(zero_copy_only=False), bool)
        rate = pop.column("rate_ppm").to_numpy()
        typical = pop.column("amount_fen").to_numpy()
        hz = world.hazards(ids, tiers, app)
        msgs = [m for m in self.messages(d0) if m["customer_id"] in pos]
        mult = self._multipliers(msgs, ids, tier)
        ends = [self._effect_end(m["as_of"]) for m in msgs]
        # the last balance of every customer (carried forward; deposits add cash)
        wh = Warehouse(self.ws.warehouse_dir, self.ws.settings.ingest.keep_loads)
        b = wh.table(self.con, "balances")
        last = self.con.to_pyarrow(b.group_by("customer_id").agg(
            cash=b.cash_fen.argmax(b.as_of), sec=b.securities_value_fen.argmax(b.as_of),
            prod=b.product_value_fen.argmax(b.as_of)))
        cash = np.zeros(len(ids), np.int64)
        sec = np.zeros(len(ids), np.int64)
        prod = np.zeros(len(ids), np.int64)
        has = np.zeros(len(ids), bool)
        for cid, c, s_, p in zip(*(last.column(k).to_pylist() for k in ("customer_id", "cash", "sec", "prod")),
                                 strict=True):
            i = pos.get(cid)
            if i is not None:
                cash[i], sec[i], prod[i], has[i] = c or 0, s_ or 0, p or 0, True
        symbols = self.state.get("symbols") or [("SH", "600000")]
        trades: dict[str, list[Any]] = {k: [] for k in ("customer_id", "trade_date", "market", "symbol", "asset_class",
                                                        "side", "quantity", "amount", "commission")}
        events: dict[str, list[Any]] = {k: [] for k in ("customer_id", "event_time", "event", "channel")}
        bal: dict[tuple[str, dt.date], tuple[int, int, int]] = {}
        ipo: list[tuple[dt.date, str]] = []
        for day in days:
            m = np.ones(len(ids))
            for k, msg in enumerate(msgs):  # oldest first: the latest message in effect wins
                if msg["as_of"] < day <= ends[k]:
                    m[pos[msg["customer_id"]]] = mult[k]
            got = world.draw_day(day, hz, m)
            rng = np.random.default_rng(np.random.SeedSequence([world.seed, day.toordinal(), 1]))
            who = np.flatnonzero(got["trade"])
            n_rows = 1 + (rng.random(who.size) < 0.3)
            cust = np.repeat(who, n_rows)
            amount = np.maximum(np.round(typical[cust] * np.exp(rng.normal(-0.18, 0.6, cust.size)) / 100) * 100,
                                10_000).astype(np.int64)
            fund = rng.random(cust.size) < 0.2
            comm = np.maximum(MIN_COMMISSION_FEN, (amount * rate[cust] + 500_000) // 1_000_000)
            pick = (rng.random(cust.size) * len(symbols)).astype(int)
            side = np.where(rng.random(cust.size) < 0.5, "buy", "sell")
            for j, i in enumerate(cust):
                trades["customer_id"].append(ids[i])
                trades["trade_date"].append(day)
                mk, sy = symbols[pick[j]]
                trades["market"].append(mk)
                trades["symbol"].append(sy)
                trades["asset_class"].append("fund" if fund[j] else "stock")
                trades["side"].append(side[j])
                trades["quantity"].append(None)
                trades["amount"].append(int(amount[j]))
                trades["commission"].append(int(comm[j]))
            logins = np.flatnonzero(got["login"])
            secs = (rng.random(logins.size) * 14 * 3600).astype(int) + 8 * 3600
            device = np.where(rng.random(logins.size) < 0.6, "android", "ios")
            for j, i in enumerate(logins):
                events["customer_id"].append(ids[i])
                events["event_time"].append(dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=int(secs[j])))
                events["event"].append("login")
                events["channel"].append(str(device[j]))
            dep = np.flatnonzero(got["deposit"] & has)
            add = np.maximum(np.round(np.exp(rng.normal(np.log(1_000_000), 0.9, dep.size)) / 100) * 100,
                             10_000).astype(np.int64)
            cash[dep] += add
            for i in dep:
                bal[(ids[i], day)] = (int(cash[i]), int(sec[i]), int(prod[i]))
            if rng.random() < 0.55:
                for _ in range(int(rng.integers(1, 4))):
                    ipo.append((day, json.dumps({"symbol": f"{int(rng.integers(1, 9999)):04d}", "board": "主板",
                                                 "market": "SH", "issue_price": round(float(rng.uniform(5, 60)), 2),
                                                 "source": "simulate"}, ensure_ascii=False, sort_keys=True)))
        for i in np.flatnonzero(has):  # a snapshot of everyone on the week's last day: the data reaches it
            bal[(ids[i], days[-1])] = (int(cash[i]), int(sec[i]), int(prod[i]))
        keys = sorted(bal)
        out = {
            "trades": pa.table({
                "customer_id": pa.array(trades["customer_id"], pa.string()),
                "trade_date": pa.array(trades["trade_date"], pa.date32()),
                "market": pa.array(trades["market"], pa.string()), "symbol": pa.array(trades["symbol"], pa.string()),
                "asset_class": pa.array(trades["asset_class"], pa.string()),
                "side": pa.array(trades["side"], pa.string()), "quantity": pa.array(trades["quantity"], pa.float64()),
                "amount": money(np.array(trades["amount"], np.int64)),
                "commission": money(np.array(trades["commission"], np.int64)),
            }),
            "app_events": pa.table({
                "customer_id": pa.array(events["customer_id"], pa.string()),
                "event_time": pa.array(events["event_time"], pa.timestamp("us")),
                "event": pa.array(events["event"], pa.string()), "channel": pa.array(events["channel"], pa.string()),
            }),
            "balances": pa.table({
                "customer_id": pa.array([k[0] for k in keys], pa.string()),
                "as_of": pa.array([k[1] for k in keys], pa.date32()),
                "cash": money(np.array([bal[k][0] for k in keys], np.int64)),
                "securities_value": money(np.array([bal[k][1] for k in keys], np.int64)),
                "product_value": money(np.array([bal[k][2] for k in keys], np.int64)),
            }),
            "market_events": pa.table({
                "date": pa.array([d for d, _ in ipo], pa.date32()),
                "kind": pa.array(["ipo_subscription"] * len(ipo), pa.string()),
                "attributes": pa.array([a for _, a in ipo], pa.string()),
            }),
        }
        return {k: v.cast(arrow_schema(k)) for k, v in out.items()}

    # steps ---------------------------------------------------------------------------------------
    def deliver(self, day: dt.date) -> int:
        """Mark the pending messages of the runs of ``day`` sent (receipt delivered) with their contact-log rows."""
        from sqlalchemy import select, update

        from panhuo.runs.models import ContactLog, OutboxMessage, Run
        from panhuo.store import open_store

        store = open_store(self.ws)
        try:
            with store.session() as s:
                rows = s.execute(select(OutboxMessage.id, OutboxMessage.customer_id, OutboxMessage.channel,
                                        OutboxMessage.send_after, OutboxMessage.playbook_id)
                                 .join(Run, Run.id == OutboxMessage.run_id)
                                 .where(Run.as_of == day, OutboxMessage.status == "pending")).all()
                for r in rows:
                    s.execute(update(OutboxMessage).where(OutboxMessage.id == r[0], OutboxMessage.status == "pending")
                              .values(status="sent", sent_at=r[3], finished_at=r[3], provider_id=f"simulate-{r[0]}",
                                      receipt_status="delivered", receipt_at=r[3], attempts=1))
                if rows:
                    s.add_all([ContactLog(customer_id=r[1], channel=r[2], sent_at=r[3], playbook_id=r[4])
                               for r in rows])
            return len(rows)
        finally:
            store.dispose()

    def load(self, week: int) -> bool:
        """Write week ``week``'s response parts and ingest the folder; False when the load already has them."""
        from panhuo.contract.ingest import ingest
        from panhuo.measure.outcomes import data_end
        from panhuo.warehouse import Warehouse

        last = self.cal.add_trading_days(self.run_day(week), WEEK_DAYS)
        wh = Warehouse(self.ws.warehouse_dir, self.ws.settings.ingest.keep_loads)
        end = data_end(wh, self.con)
        if end is not None and end >= last:
            return False
        for name, table in self.responses(week).items():
            _atomic_parquet(table, self.data / name / f"sim-w{week:03d}.parquet")
        ingest(self.ws, self.data, con=self.con)
        return True

    def expected_effects(self, run_id: int) -> pa.Table:
        """The true expected effect of every assignment of a run on its playbook's success event.

        Columns: customer_id, grp, arm, messaged (a message was sent), p_control (success probability
        without contact), p_assigned (with what the customer got: the message of its arm, or nothing),
        true_effect (their difference; 0 for holdouts and customers never messaged).
        """
        return self._truth([run_id])[0][1]

    def _truth(self, run_ids: list[int]) -> list[tuple[dict[str, Any], pa.Table]]:
        from panhuo.playbooks.schema import PlaybookSpec
        from panhuo.runs.models import Run, assignment_rows
        from panhuo.store import open_store
        from panhuo.store.models import PlaybookVersion

        world = self.world
        assert world is not None
        pop = self.population()
        ids = pop.column("customer_id").to_pylist()
        pos = {c: i for i, c in enumerate(ids)}
        tier = dict(zip(ids, pop.column("tier").to_pylist(), strict=True))
        hz = world.hazards(ids, pop.column("tier").to_pylist(),
                           np.asarray(pop.column("app_user").to_numpy(zero_copy_only=False), bool))
        store = open_store(self.ws)
        got = []
        try:
            with store.session() as s:
                for run_id in run_ids:
                    run = s.get(Run, run_id)
                    if run is None:
                        continue
                    v = s.get(PlaybookVersion, (run.playbook_id, run.playbook_version))
                    spec = PlaybookSpec.model_validate(v.parsed)  # type: ignore[union-attr]
                    rows = [r for r in s.execute(assignment_rows([run_id])) if r.customer_id in pos]
                    got.append((_RunRef(run.id, run.as_of), spec, rows))
        finally:
            store.dispose()
        return [self._truth_of(run, spec, rows, pos, tier, hz) for run, spec, rows in got]

    def truth(self, run_ids: list[int]) -> list[dict[str, Any]]:
        """Per run (of the given): messaged customers' true expected success probabilities by arm, the
        expected regret against the best arm of each tier, the equal split's, the true increment."""
        return [res for res, _ in self._truth(run_ids)]

    def _truth_of(self, run: Any, spec: Any, rows: list[Any], pos: dict[str, int], tier: dict[str, str | None],
                  hz: dict[str, np.ndarray]) -> tuple[dict[str, Any], pa.Table]:
        world = self.world
        assert world is not None
        event = spec.method.success.event
        window = spec.method.success.within_trading_days
        arms = [a.id for a in spec.method.arms or []] or ["main"]
        sent = {m["customer_id"]: m for m in self.messages(run.as_of) if m["run_id"] == run.id}
        # treated and actually messaged (a message refused for its content or benefit reached no one)
        treated = [r for r in rows if r.grp == "treated" and r.customer_id in sent]
        res: dict[str, Any] = {"run_id": run.id, "playbook_id": spec.id, "as_of": run.as_of.isoformat(),
                               "event": event, "treated": len(treated), "arms": arms,
                               "holdout": sum(1 for r in rows if r.grp == "holdout")}
        simulated = event in ("trade", "login", "deposit")
        every = [r.customer_id for r in rows]
        p_control = world.p_success(hz[event][[pos[c] for c in every]], 1.0, window) if simulated and every \
            else np.full(len(every), np.nan)
        p_assigned = p_control.copy()
        if not simulated or not treated:
            res.update(simulated=simulated, regret=0.0, equal_regret=0.0, true_incremental=0.0 if simulated else None)
        else:
            cid = [r.customer_id for r in treated]
            idx = np.array([pos[c] for c in cid])
            h = hz[event][idx]
            p = world.arm_probabilities(cid, spec.id, [tier.get(c) for c in cid], arms,
                                        [sent[c]["channel"] or _channel(spec, r.arm) for c, r in zip(cid, treated, strict=True)],
                                        np.array([sent[c]["prior"] for c in cid]), h, window)
            got = p[np.arange(len(cid)), [arms.index(r.arm) if r.arm in arms else 0 for r in treated]]
            base = world.p_success(h, 1.0, window)
            best = p.max(axis=1)
            res.update(simulated=True, regret=float((best - got).sum()),
                       equal_regret=float((best - p.mean(axis=1)).sum()), true_incremental=float((got - base).sum()),
                       best_arm=world.best_arms(spec.id, sorted({tier.get(c) or "" for c in cid}), arms))
            where = {c: i for i, c in enumerate(every)}
            p_assigned[[where[c] for c in cid]] = got
        table = pa.table({
            "customer_id": pa.array(every, pa.string()),
            "grp": pa.array([r.grp for r in rows], pa.string()),
            "arm": pa.array([r.arm for r in rows], pa.string()),
            "messaged": pa.array([r.grp == "treated" and r.customer_id in sent for r in rows], pa.bool_()),
            "p_control": pa.array(p_control, pa.float64()),
            "p_assigned": pa.array(p_assigned, pa.float64()),
            "true_effect": pa.array(p_assigned - p_control, pa.float64()),
        })
        return res, table

    def allocation(self, day: dt.date) -> dict[str, dict[str, dict[str, float]]]:
        """The arm probabilities per tier of every live Thompson playbook for a run at ``day``."""
        from panhuo.learn.bandit import cached_allocation
        from panhuo.playbooks import repository
        from panhuo.playbooks.schema import PlaybookSpec
        from panhuo.store import open_store

        store = open_store(self.ws)
        specs = []
        try:
            with store.session() as s:
                for pb in repository.list_playbooks(s, state="live"):
                    spec = PlaybookSpec.model_validate(repository.get_version(s, pb.id, pb.live_version).parsed)
                    if spec.method.allocation == "thompson" and spec.method.arms:
                        specs.append(spec)
        finally:
            store.dispose()
        out = {}
        for spec in specs:
            a = cached_allocation(self.ws, spec, day, self.con)
            out[spec.id] = {t: dict(zip(a.arms, map(float, p), strict=True)) for t, p in sorted(a.by_tier.items())}
        return out

    def week(self, week: int, progress: Progress | None = None) -> dict[str, Any]:
        """Play week ``week`` (1-based; the weeks before must be done) and record it."""
        from panhuo.runs.engine import run_due
        from panhuo.store.models import SHANGHAI

        if week != self.weeks_done + 1:
            raise SimulateError(f"week {week} cannot be played before week {self.weeks_done + 1}")
        note = progress or (lambda _s, _d, _n: None)
        day = self.run_day(week)
        note("run --due", 0, 4)
        results = run_due(self.ws, day, actor=self.actor, now=dt.datetime.combine(day, dt.time(10, 30), tzinfo=SHANGHAI))
        failed = [f"{r.playbook_id}: {r.why}" for r in results if r.state == "failed"]
        if failed:
            raise SimulateError(f"week {week} ({day}): run failed: " + "; ".join(failed))
        note("deliver", 1, 4)
        delivered = self.deliver(day)
        note("respond + load", 2, 4)
        self.load(week)
        note("learn", 3, 4)
        run_ids = self._runs_of(day)
        truth = self.truth(run_ids)
        nxt = self.cal.add_trading_days(day, WEEK_DAYS)
        rec = {"week": week, "run_day": day.isoformat(), "delivered": delivered,
               "runs": [{k: t[k] for k in ("run_id", "playbook_id", "treated", "holdout")} for t in truth],
               "due": {r.playbook_id: r.state for r in results},
               "regret": {t["playbook_id"]: {"thompson_or_policy": t["regret"], "equal_split": t["equal_regret"]}
                          for t in truth if len(t["arms"]) > 1},
               "true_incremental": {t["playbook_id"]: t["true_incremental"] for t in truth},
               "next_allocation": self.allocation(nxt)}
        self.state.setdefault("weeks", []).append(rec)
        self._save()
        note("done", 4, 4)
        return rec

    def _runs_of(self, day: dt.date) -> list[int]:
        from sqlalchemy import select

        from panhuo.runs.models import Run
        from panhuo.store import open_store

        store = open_store(self.ws)
        try:
            with store.session() as s:
                return list(s.execute(select(Run.id).where(Run.as_of == day, Run.state == "done")
                                      .order_by(Run.playbook_id)).scalars())
        finally:
            store.dispose()

    def summary(self) -> dict[str, Any]:
        """Every week recorded, with cumulative regret per playbook (policy vs equal split)."""
        weeks = self.state.get("weeks", [])
        cum: dict[str, dict[str, float]] = {}
        series = []
        for w in weeks:
            for pid, r in w["regret"].items():
                c = cum.setdefault(pid, {"policy": 0.0, "equal_split": 0.0})
                c["policy"] += r["thompson_or_policy"]
                c["equal_split"] += r["equal_split"]
            series.append({**w, "cumulative_regret": {k: dict(v) for k, v in cum.items()}})
        return {"seed": self.seed, "start": self.state.get("start"), "weeks_done": len(weeks),
                "world": {k: v for k, v in dataclasses.asdict(self.world).items() if k != "base"},
                "weeks": series, "cumulative_regret": cum}


@dataclasses.dataclass(frozen=True)
class _RunRef:
    id: int
    as_of: dt.date


def _channel(spec: Any, arm: str | None) -> str | None:
    """The channel of an arm (its own, else the playbook's first) for the true effect."""
    for a in spec.method.arms or []:
        if a.id == arm and a.channel:
            return a.channel
    chans = spec.channel.channels
    return chans[0] if chans else None


def check_weeks(weeks: int) -> None:
    if not 1 <= weeks <= 104:
        raise ConfigError(f"--weeks must be between 1 and 104, got {weeks}")

