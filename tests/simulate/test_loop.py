"""``panhuo simulate`` on a small generated brokerage: weeks, delivery, loaded responses, posteriors,
propensities, resuming after a kill mid-week, and the clear errors."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow.compute as pc
import pytest
from sqlalchemy import func, select

from panhuo.config import Workspace
from panhuo.engines import connect
from panhuo.learn.bandit import allocation, customer_tiers, observed_posteriors
from panhuo.measure.outcomes import data_end, playbook_outcomes
from panhuo.playbooks import repository
from panhuo.playbooks.schema import PlaybookSpec
from panhuo.runs.engine import run_due
from panhuo.runs.models import ContactLog, OutboxMessage, Run, assignment_rows
from panhuo.simulate.loop import SIM_PLAYBOOK, SimulateError, Simulation, WEEK_DAYS
from panhuo.store import open_store
from panhuo.store.models import SHANGHAI
from panhuo.warehouse import Warehouse

AS_OF = dt.date(2026, 9, 1)


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    """Two weeks played, then week 3 cut short after its run, delivery and response files (as if killed)."""
    from panhuo.cli.simulate import run_simulation

    ws = Workspace.open(tmp_path_factory.mktemp("sim") / "ws")
    run_simulation(ws, 2, seed=5, customers=300, as_of=AS_OF)
    sim = Simulation(ws, seed=5)
    day = sim.run_day(3)
    run_due(ws, day, actor="sim-ops", now=dt.datetime.combine(day, dt.time(10, 30), tzinfo=SHANGHAI))
    sim.deliver(day)
    from panhuo.simulate.loop import _atomic_parquet

    for name, table in sim.responses(3).items():  # written, not loaded: the kill came before the ingest
        _atomic_parquet(table, sim.data / name / "sim-w003.parquet")
    summary = run_simulation(ws, 3, seed=5)  # the rerun finishes week 3 once
    return ws, summary


def _store_rows(ws, q):
    store = open_store(ws)
    try:
        with store.session() as s:
            return s.execute(q).all()
    finally:
        store.dispose()


def test_weeks_are_played_once_and_resumed(played) -> None:
    ws, summary = played
    assert summary["weeks_done"] == 3 and [w["week"] for w in summary["weeks"]] == [1, 2, 3]
    days = [dt.date.fromisoformat(w["run_day"]) for w in summary["weeks"]]
    assert days[0] == AS_OF and all(b > a for a, b in zip(days, days[1:], strict=False))
    runs = _store_rows(ws, select(Run.playbook_id, Run.as_of, Run.state).where(Run.playbook_id == SIM_PLAYBOOK))
    assert sorted(r.as_of for r in runs) == days and {r.state for r in runs} == {"done"}
    # delivery: every message sent with a receipt, one contact-log row each, nothing pending
    status = dict(_store_rows(ws, select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)))
    assert set(status) == {"sent"}
    assert _store_rows(ws, select(func.count()).select_from(ContactLog))[0][0] == status["sent"]
    assert Simulation(ws, seed=5).load(3) is False  # a rerun after the ingest does not load the week again
    data = ws.root / "simulate" / "data"
    assert sorted(p.name for p in (data / "trades").glob("sim-*.parquet")) == [f"sim-w00{k}.parquet" for k in (1, 2, 3)]
    # the summary on disk is what was returned; regret and true effects per week
    on_disk = json.loads((ws.root / "simulate" / "summary.json").read_text(encoding="utf-8"))
    assert on_disk["weeks_done"] == 3 and on_disk["cumulative_regret"].keys() == {SIM_PLAYBOOK}
    c = on_disk["cumulative_regret"][SIM_PLAYBOOK]
    assert 0 <= c["policy"] and 0 < c["equal_split"]
    assert set(on_disk["weeks"][-1]["next_allocation"][SIM_PLAYBOOK]["*"]) == {"weekly-news", "guide-video",
                                                                              "level2-trial"}


def test_responses_are_loaded_as_contract_data(played) -> None:
    ws, summary = played
    sim = Simulation(ws, seed=5)
    con = connect(ws.settings.engine, ws.tmp_dir)
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    last = sim.cal.add_trading_days(sim.run_day(3), WEEK_DAYS)
    assert data_end(wh, con) == last
    t = wh.table(con, "trades")
    new = con.to_pyarrow(t.filter(t.trade_date > AS_OF))
    assert new.num_rows > 0
    comm, amount = new["commission_fen"].to_numpy(), new["amount_fen"].to_numpy()
    assert (comm >= 500).all()  # the minimum charge
    pop = sim.population()
    rate = dict(zip(pop["customer_id"].to_pylist(), pop["rate_ppm"].to_pylist(), strict=True))
    want = [max(500, (a * rate[c] + 500_000) // 1_000_000) for c, a in zip(new["customer_id"].to_pylist(), amount, strict=True)]
    assert comm.tolist() == want  # the customer's own rate, exactly, in fen
    e = wh.table(con, "app_events")
    assert con.to_pyarrow(e.filter((e.event == "login") & (e.event_time.date() > AS_OF)).count().as_table())[0][0].as_py() > 0


def test_posteriors_come_from_closed_windows_and_set_the_logged_propensity(played) -> None:
    ws, _ = played
    sim = Simulation(ws, seed=5)
    con = connect(ws.settings.engine, ws.tmp_dir)
    store = open_store(ws)
    try:
        with store.session() as s:
            pb = repository.get_playbook(s, SIM_PLAYBOOK)
            spec = PlaybookSpec.model_validate(repository.get_version(s, SIM_PLAYBOOK, pb.live_version).parsed)
            run3 = s.execute(select(Run).where(Run.playbook_id == SIM_PLAYBOOK, Run.as_of == sim.run_day(3))).scalar_one()
            rows = s.execute(assignment_rows([run3.id])).all()
    finally:
        store.dispose()
    out = playbook_outcomes(ws, con, SIM_PLAYBOOK)
    post, n = observed_posteriors(ws, con, spec, sim.run_day(3), outcomes=out)
    t = out.rows
    closed_before = pc.and_(pc.and_(t["closed"], pc.equal(t["grp"], "treated")),
                            pc.less_equal(t["window_end"], sim.run_day(3)))
    assert n == pc.sum(closed_before).as_py() > 0  # week 1's window (10 trading days) closed by week 3's run
    assert sum(c.sum() for k, c in post.counts.items() if k != "*") == n
    alloc = allocation(ws, spec, sim.run_day(3), con=con)
    treated = [r for r in rows if r.grp == "treated"]
    tiers = customer_tiers(ws, con, [r.customer_id for r in treated], sim.run_day(3))
    want = [0.9 * alloc.of(t)[alloc.arms.index(r.arm)] for t, r in zip(tiers, treated, strict=True)]
    assert np.allclose([r.propensity for r in treated], want)
    assert any(abs(p - 0.3) > 0.01 for p in want)  # learnt: no longer the equal split
    assert all(r.propensity == pytest.approx(0.1) for r in rows if r.grp == "holdout")


def test_clear_errors(played, tmp_path) -> None:
    ws, _ = played
    with pytest.raises(SimulateError, match="uses seed 5, not 6"):
        Simulation(ws, seed=6)
    with pytest.raises(SimulateError, match="beyond the trading calendar"):
        Simulation(ws, seed=5).check_fits(104)
    empty = Workspace.open(tmp_path / "empty")
    with pytest.raises(SimulateError, match="no data loaded"):
        Simulation(empty, seed=0).start()


def test_cli_refuses_weeks_beyond_the_calendar(played) -> None:
    import subprocess

    from tests.conftest import PANHUO

    ws, _ = played
    out = subprocess.run([PANHUO, "--workspace", str(ws.root), "simulate", "--weeks", "60", "--seed", "5"],
                         capture_output=True, text=True)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "beyond the trading calendar" in " ".join(out.stderr.split())
    state = json.loads((ws.root / "simulate" / "state.json").read_text(encoding="utf-8"))
    assert len(state["weeks"]) == 3  # nothing played


def test_customers_on_a_workspace_with_data_is_refused(played) -> None:
    from panhuo.cli.simulate import run_simulation

    ws, _ = played
    other = Workspace.open(ws.root.parent / "other")
    import shutil

    shutil.copytree(ws.warehouse_dir, other.warehouse_dir)  # data loaded, no simulation yet
    with pytest.raises(SimulateError, match="already holds data"):
        run_simulation(other, 1, seed=5, customers=300)


def test_the_world_knows_the_true_effect_of_each_assignment(played) -> None:
    ws, summary = played
    sim = Simulation(ws, seed=5)
    run_id = summary["weeks"][0]["runs"][0]["run_id"]
    t = sim.expected_effects(run_id).to_pylist()
    assert {r["grp"] for r in t} <= {"treated", "holdout", "global_control"} and any(r["grp"] == "holdout" for r in t)
    assert all(r["true_effect"] == 0 and r["p_assigned"] == r["p_control"] for r in t if not r["messaged"])
    messaged = [r for r in t if r["messaged"]]
    assert len(messaged) == summary["weeks"][0]["runs"][0]["treated"]
    assert sum(r["true_effect"] for r in messaged) == pytest.approx(summary["weeks"][0]["true_incremental"][SIM_PLAYBOOK])
    harmed = sim.world.harmed([r["customer_id"] for r in messaged])
    effects = np.array([r["true_effect"] for r in messaged])
    assert (effects[harmed] < 0).all() and (effects[~harmed] >= 0).all()  # contact harms some, helps the rest
