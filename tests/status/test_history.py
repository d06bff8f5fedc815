"""Snapshots, transitions and status_since over several dates; backfill; idempotent and out-of-order recompute."""

from __future__ import annotations

import json

import pytest

from panhuo.config import StatusRules, Workspace
from panhuo.errors import WarehouseError
from panhuo.status.history import StatusStore, compute_status, load_status, transitions
from tests.status.conftest import D
from tests.status.test_rules import bal, cust, trade

MONTH_ENDS = [D("2025-01-31"), D("2025-02-28"), D("2025-03-31"), D("2025-04-30")]


def story(load):
    """a: effective -> sleeping (Feb) -> effective (Apr); n: opens in March (new_empty), funded in April."""
    return load(
        customers=[cust("a"), cust("n", D("2025-03-15"))],
        balances=[bal("a", D("2025-01-31"), cash="20000"), bal("a", D("2025-02-28"), cash="5000"),
                  bal("a", D("2025-03-31"), cash="5000"), bal("a", D("2025-04-30"), cash="20000"),
                  bal("n", D("2025-04-30"), cash="50000")],
        trades=[trade("a", D("2025-01-10"))],
    )


EXPECTED = [
    ("a", "effective", "sleeping", D("2025-02-28")),
    ("n", None, "new_empty", D("2025-03-31")),
    ("a", "sleeping", "effective", D("2025-04-30")),
    ("n", "new_empty", "effective", D("2025-04-30")),
]


def rows(t) -> list[tuple]:
    out = t.to_pyarrow().to_pylist()
    return sorted(((r["customer_id"], r["from_status"], r["to_status"], r["date"]) for r in out),
                  key=lambda r: (r[3], r[0]))


def test_first_run_backfills_month_ends(con, load, workspace: Workspace) -> None:
    story(load)
    res = compute_status(workspace, con, D("2025-05-31"))
    assert res.backfilled == MONTH_ENDS
    assert res.counts == {"effective": 2, "sleeping": 0, "dormant": 0, "new_empty": 0}
    assert res.transitions == 0
    assert rows(transitions(workspace, con)) == EXPECTED
    since = {r["customer_id"]: r["status_since"] for r in res.table.to_pyarrow().to_pylist()}
    assert since == {"a": D("2025-04-30"), "n": D("2025-04-30")}
    assert rows(transitions(workspace, con, since=D("2025-04-30"), until=D("2025-04-30"))) == EXPECTED[2:]
    # second run: no backfill again
    assert compute_status(workspace, con, D("2025-06-30")).backfilled == []


def test_no_backfill_and_baseline_is_not_a_transition(con, load, workspace: Workspace) -> None:
    story(load)
    res = compute_status(workspace, con, D("2025-02-28"), backfill=False)
    assert res.backfilled == [] and res.transitions == 0
    assert rows(transitions(workspace, con)) == []
    res = compute_status(workspace, con, D("2025-03-31"), backfill=False)
    assert res.transitions == 1
    assert rows(transitions(workspace, con)) == [EXPECTED[1]]
    since = {r["customer_id"]: r["status_since"] for r in res.table.to_pyarrow().to_pylist()}
    assert since == {"a": D("2025-02-28"), "n": D("2025-03-31")}


def test_recompute_is_idempotent(duck, load, workspace: Workspace) -> None:
    con = duck
    story(load)
    compute_status(workspace, con, D("2025-04-30"))
    before = rows(transitions(workspace, con))
    manifest = json.loads(StatusStore.of(workspace).manifest_path.read_text())
    for _ in range(2):
        compute_status(workspace, con, D("2025-04-30"))
        compute_status(workspace, con, D("2025-02-28"))
    assert rows(transitions(workspace, con)) == before == EXPECTED
    again = json.loads(StatusStore.of(workspace).manifest_path.read_text())
    assert sorted(again["dates"]) == sorted(manifest["dates"])
    files = sorted(p.name for p in (StatusStore.of(workspace).root / "snapshots").iterdir())
    assert len(files) == len(MONTH_ENDS)  # replaced, not duplicated


@pytest.mark.parametrize("order", [(3, 0, 2, 1), (1, 3, 0, 2), (2, 1, 3, 0)])
def test_any_order_gives_the_same_history(duck, load, workspace: Workspace, order: tuple[int, ...]) -> None:
    con = duck  # the history bookkeeping is engine-neutral; the Spark path is covered by the tests above
    story(load)
    for i in order:
        compute_status(workspace, con, MONTH_ENDS[i], backfill=False)
    assert rows(transitions(workspace, con)) == EXPECTED
    since = {r["customer_id"]: r["status_since"] for r in load_status(workspace, con).to_pyarrow().to_pylist()}
    assert since == {"a": D("2025-04-30"), "n": D("2025-04-30")}
    mar = {r["customer_id"]: (r["status"], r["status_since"])
           for r in load_status(workspace, con, D("2025-03-31")).to_pyarrow().to_pylist()}
    assert mar == {"a": ("sleeping", D("2025-02-28")), "n": ("new_empty", D("2025-03-31"))}


def test_retention_keeps_the_log_consistent(con, load, workspace: Workspace) -> None:
    ws = workspace.save(workspace.settings.model_copy(update={"status": StatusRules(keep_snapshots=1)}))
    story(load)
    for i in (0, 3, 1, 2):  # middle dates are slotted in after their neighbours' snapshots are gone
        compute_status(ws, con, MONTH_ENDS[i], backfill=False)
    assert rows(transitions(ws, con)) == EXPECTED
    store = StatusStore.of(ws)
    kept = [d for d, v in store.manifest()["dates"].items() if v["snapshot"]]
    assert sorted(kept) == ["2025-03-31", "2025-04-30"]  # the newest, and the one just computed
    assert len(list((store.root / "snapshots").iterdir())) == 2
    with pytest.raises(WarehouseError, match="past retention"):
        load_status(ws, con, D("2025-02-28"))


def test_customer_leaving_is_logged(con, load, workspace: Workspace) -> None:
    story(load)
    compute_status(workspace, con, D("2025-04-30"), backfill=False)
    load(customers=[cust("n", D("2025-03-15"))], balances=[bal("n", D("2025-04-30"), cash="50000")])
    res = compute_status(workspace, con, D("2025-05-31"), backfill=False)
    assert res.transitions == 1
    assert rows(transitions(workspace, con, since=D("2025-05-01"))) == [("a", "effective", None, D("2025-05-31"))]


def test_load_status_without_history(con, workspace: Workspace) -> None:
    with pytest.raises(WarehouseError, match="no account status computed"):
        load_status(workspace, con)
