"""The engine's write paths: plan slices (chunks) give the whole plan's rows and funnel; PostgreSQL's
fast path (plain COPY of a batch no attempt wrote yet) falls back to the exact path when rows exist."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from panhuo.config import Workspace
from panhuo.playbooks.schema import PlaybookSpec
from panhuo.runs import engine
from panhuo.runs.engine import dry_run, plan_run, run_playbook
from panhuo.runs.models import Assignment, Decision, OutboxMessage
from panhuo.runs.outbox import copy_escape, copy_ids
from panhuo.store import open_store
from panhuo.store.models import PlaybookVersion
from tests.runs.conftest import AS_OF, NOW, make_live

__all__: list[str] = []


def _small_batches(ws: Workspace, batch: int = 7) -> Workspace:
    return ws.save(ws.settings.model_copy(update={"runs": ws.settings.runs.model_copy(update={"batch_size": batch})}))


def _rows(ws: Workspace) -> tuple[dict[str, tuple[str, str, str]], dict[str, tuple[str, str | None]], list[str]]:
    store = open_store(ws)
    try:
        with store.session() as s:
            dec = {d.customer_id: (d.guardrail, d.outcome, d.reason) for d in s.execute(select(Decision)).scalars()}
            asg = {a.customer_id: (a.grp, a.arm) for a in s.execute(select(Assignment)).scalars()}
            box = [m.customer_id for m in s.execute(select(OutboxMessage)).scalars()]
            return dec, asg, box
    finally:
        store.dispose()


def _plan(ws: Workspace, pid: str):  # the whole plan in one piece, before anything is written
    store = open_store(ws)
    try:
        with store.session() as s:
            spec = PlaybookSpec.model_validate(s.get(PlaybookVersion, (pid, 1)).parsed)
        return plan_run(ws, store, spec, 1, AS_OF, AS_OF.isoformat(), now=NOW)
    finally:
        store.dispose()


def test_chunked_run_writes_the_whole_plan_and_its_funnel(run_ws: Workspace, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "CHUNK", 20)  # 180 candidates: 9+ slices of 3 batches of 7
    ws = _small_batches(run_ws)
    pid = make_live(ws, tmp_path)
    plan = _plan(ws, pid)
    dry = dry_run(ws, pid, AS_OF, now=NOW)
    seen: list[tuple[int, int]] = []
    report = run_playbook(ws, pid, AS_OF, now=NOW, progress=lambda d, n: seen.append((d, n)))
    assert report.funnel == dry.funnel and report.reasons == dry.reasons
    assert seen[0] == (0, 180) and seen[-1] == (180, 180) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    dec, asg, box = _rows(ws)
    assert len(dec) == len(plan.ids) == 180
    for i, cid in enumerate(plan.ids):
        if plan.guardrail[i] is not None:
            assert dec[cid] == (plan.guardrail[i], "blocked", plan.reason[i])
        if plan.group[i]:
            assert asg[cid] == (plan.group[i], plan.arm[i])
    treated = sorted(c for c, g, grp in zip(plan.ids, plan.guardrail, plan.group, strict=True)
                     if g is None and grp == "treated")
    assert sorted(box) == treated and len(box) == dict(report.funnel)["sends"]


def test_fast_copy_falls_back_when_another_attempt_wrote_the_batch(run_ws: Workspace, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ws = _small_batches(run_ws, 20)
    pid = make_live(ws, tmp_path)
    real_write = engine._Writer.write
    calls = {"n": 0}

    def dies_after_three(self: engine._Writer, b: engine._Batch) -> int:
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("killed")
        return real_write(self, b)

    monkeypatch.setattr(engine._Writer, "write", dies_after_three)
    with pytest.raises(RuntimeError, match="killed"):
        run_playbook(ws, pid, AS_OF, now=NOW)
    monkeypatch.setattr(engine._Writer, "write", real_write)
    assert len(_rows(ws)[0]) == 60  # three batches committed
    # a second attempt that believes the run is fresh (as one started alongside the first would)
    monkeypatch.setattr(engine, "_decided", lambda store, run_id: 0)
    paths: list[bool] = []
    real_copy = engine._Writer._pg

    def spy(self: engine._Writer, s: object, b: engine._Batch) -> None:
        before = self.fast
        real_copy(self, s, b)
        paths.append(self.fast > before)

    monkeypatch.setattr(engine._Writer, "_pg", spy)
    report = run_playbook(ws, pid, AS_OF, now=NOW)
    dec, asg, box = _rows(ws)
    assert report.skipped == 0 and len(dec) == 180
    assert len(box) == len(set(box)) == dict(report.funnel)["sends"]
    if ws.settings.store_url.startswith("postgresql"):
        # batch 1 conflicts (rolled back to the savepoint, written by the exact path), as do 2 and 3 (the
        # probe finds their rows); the batches no attempt wrote go the fast path again
        assert paths[:3] == [False, False, False] and all(paths[3:]) and len(paths) == 9


def test_resumed_run_writes_only_the_rest(run_ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = _small_batches(run_ws, 25)
    pid = make_live(ws, tmp_path)
    real_write = engine._Writer.write
    calls = {"n": 0}

    def dies_after_two(self: engine._Writer, b: engine._Batch) -> int:
        calls["n"] += 1
        if calls["n"] > 2:
            raise RuntimeError("killed")
        return real_write(self, b)

    monkeypatch.setattr(engine._Writer, "write", dies_after_two)
    with pytest.raises(RuntimeError):
        run_playbook(ws, pid, AS_OF, now=NOW)
    monkeypatch.setattr(engine._Writer, "write", real_write)
    report = run_playbook(ws, pid, AS_OF, now=NOW)
    dec, _, box = _rows(ws)
    assert report.skipped == 50 and len(dec) == 180
    assert len(box) == len(set(box)) == dict(report.funnel)["sends"]
    assert report.funnel == dry_run(ws, pid, AS_OF, now=NOW).funnel


def test_copy_text_escapes() -> None:
    assert copy_escape(None) == "\\N"
    assert copy_escape("a\tb\nc\\d\re") == "a\\tb\\nc\\\\d\\re"
    assert copy_ids(["a", "b"]) == ["a", "b"] and copy_ids(["a\tb"]) == ["a\\tb"]


def test_content_with_newlines_and_tabs_is_stored_as_rendered(run_ws: Workspace, tmp_path: Path) -> None:
    from panhuo.runs.engine import _batch, _Columns

    pid = make_live(run_ws, tmp_path)
    plan = _plan(run_ws, pid)
    b = _batch(_Columns(plan), 0, len(plan.ids), None)
    assert len(b.ids) == 180 and len(b.o_ids) == sum(g is None and grp == "treated"
                                                       for g, grp in zip(plan.guardrail, plan.group, strict=True))
    store = open_store(run_ws)
    try:
        with store.session() as s:
            n = int(s.execute(select(func.count()).select_from(OutboxMessage)).scalar_one())
    finally:
        store.dispose()
    assert n == 0


def test_query_split_at_the_head_is_the_whole_query(sqlite_ws: Workspace, tmp_path: Path) -> None:
    """The first ``head`` candidates queried first and the rest after give the one query's rows, also with
    a customer repeated across the split point (its rows stay on one side: one of them is the duplicate).
    The query runs in the engine (DuckDB), so one store is enough."""
    from tests.runs.conftest import tag_rows, write_tags

    run_ws = sqlite_ws

    rows = tag_rows()
    rows += [r for r in rows if r["customer_id"] in ("c00014", "c00015")]  # around the 14th candidate
    write_tags(run_ws, rows)
    pid = make_live(run_ws, tmp_path)
    store = open_store(run_ws)
    try:
        with store.session() as s:
            spec = PlaybookSpec.model_validate(s.get(PlaybookVersion, (pid, 1)).parsed)
        whole = engine._query(run_ws, store, spec, 1, AS_OF, "k", now=NOW)
        ids = whole.out.column("customer_id").to_pylist()
        assert len(ids) == 182 and ids[13] == ids[14] == "c00014"  # the 14th candidate is repeated
        for head in (1, 14, 15, 45, 46, 500):  # split only above engine.SPLIT (4) times the head
            split = engine._query(run_ws, store, spec, 1, AS_OF, "k", now=NOW, head=head)
            assert split.total == 182 and split.pending == (head <= 45)
            if split.pending:  # the first part: every row up to the head-th customer, all of its repeats too
                assert len(split) == sum(c <= ids[head - 1] for c in ids)
            split.complete()
            assert not split.pending and split.out.equals(whole.out), head
        assert dict(whole.plan().funnel())["after one_per_run"] == dict(whole.plan().funnel())["after frequency"] - 2
    finally:
        store.dispose()


def test_fresh_run_writes_its_first_chunk_before_querying_the_rest(run_ws: Workspace, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "CHUNK", 20)
    monkeypatch.setattr(engine, "HEAD_CHUNKS", 2)
    ws = _small_batches(run_ws, 10)  # chunk: 20 candidates; the first query: 40 (180 > SPLIT * 40)
    pid = make_live(ws, tmp_path)
    handed: list[int] = []
    real = engine._Query.complete

    def spy(self: engine._Query) -> None:
        handed.append(self.out.num_rows)
        real(self)

    monkeypatch.setattr(engine._Query, "complete", spy)
    seen: list[tuple[int, int]] = []
    report = run_playbook(ws, pid, AS_OF, now=NOW, progress=lambda d, n: seen.append((d, n)))
    assert handed == [40] and seen[0] == (0, 180) and seen[1][0] == 10 and seen[-1] == (180, 180)
    assert report.funnel == dry_run(ws, pid, AS_OF, now=NOW).funnel
    assert len(_rows(ws)[0]) == 180
