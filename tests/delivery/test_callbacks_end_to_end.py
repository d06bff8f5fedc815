"""End to end: a run, the worker sends SMS through the provider simulator, replies of T reach the callback
endpoint, and the next run no longer texts those customers (another channel, or blocked for consent).

SQLite and PostgreSQL. The simulator (:class:`panhuo.delivery.sim.SimServer`, ``reply_rate=1``) signs
its receipts and replies with the shared secret and POSTs them to a
:class:`panhuo.delivery.callbacks.CallbackServer` on loopback.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import func, select

from panhuo.config import Workspace
from panhuo.delivery.callbacks import CallbackServer
from panhuo.delivery.events import DeliveryEvent, OptOut
from panhuo.delivery.models import outbox
from panhuo.delivery.sim import SimServer
from panhuo.delivery.worker import DeliveryWorker
from panhuo.runs.engine import run_playbook
from panhuo.runs.models import Decision, Run
from tests.delivery.conftest import ENV, TOKEN, deliver_ws, store_rows, write_customers
from tests.runs.conftest import AS_OF, NOW, make_live, tag_rows, write_tags

__all__: list[str] = []

SECRET = "e2e-secret"
N = 30



def _run_rows(ws: Workspace, pid: str, run_key: str) -> dict[str, tuple]:
    """customer -> (channel or None, outcome, reason) of one run."""
    run_id = store_rows(ws, select(Run.id).where(Run.playbook_id == pid, Run.run_key == run_key))[0][0]
    sent = dict(store_rows(ws, select(outbox.c.customer_id, outbox.c.channel).where(outbox.c.run_id == run_id)))
    return {cid: (sent.get(cid), outcome, reason) for cid, outcome, reason in
            store_rows(ws, select(Decision.customer_id, Decision.outcome, Decision.reason).where(Decision.run_id == run_id))}


def test_sms_replies_of_t_opt_customers_out_of_the_next_run(tmp_path: Path, store_url: str) -> None:
    ws = deliver_ws(tmp_path / "ws", store_url, "http://127.0.0.1:9")
    ws = ws.save(ws.settings.model_copy(update={"runs": ws.settings.runs.model_copy(update={
        "global_control_share": 0.0, "max_per_day": 99, "max_per_week": 99, "max_per_month": 99,
        "channel_caps": {}})}))
    write_tags(ws, tag_rows(N))
    write_customers(ws, [{"customer_id": f"c{i:05d}", "phone": f"1390000{i:04d}", "advisor_id": "a"} for i in range(N)])
    make_live(ws, tmp_path, pid="sms-first", channel="order: [sms, app_push]", holdout=0.0)

    with CallbackServer(ws, SECRET) as cb, \
            SimServer(token=TOKEN, callback_url=cb.url, secret=SECRET, reply_rate=1.0) as sim:
        ws = deliver_ws(tmp_path / "ws", store_url, sim.url)
        run_playbook(ws, "sms-first", AS_OF, now=NOW)
        first = _run_rows(ws, "sms-first", AS_OF.isoformat())
        texted = {cid for cid, (ch, _, _) in first.items() if ch == "sms"}
        assert len(texted) >= N // 2  # most were texted: sleeping, consenting, suitable

        summary = DeliveryWorker(ws, env=ENV, worker_id="w1").run()
        assert summary.sent == len(texted)
        assert sim.drain(20)
        deadline = time.monotonic() + 10  # the opt-outs are written within the reply's request
        while store_rows(ws, select(func.count()).select_from(OptOut))[0][0] < len(texted) and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = sim.stats()
        assert stats["receipts"]["replies"] == len(texted) and stats["receipts"].get("rejected", 0) == 0
        assert cb.app.state.stats == {"200": 2 * len(texted)}  # a delivered receipt and a reply each

    opted = {cid for cid, ch in store_rows(ws, select(OptOut.customer_id, OptOut.channel))}
    assert opted == texted
    assert {ch for _, ch in store_rows(ws, select(OptOut.customer_id, OptOut.channel))} == {"sms"}
    receipts = dict(store_rows(ws, select(outbox.c.customer_id, outbox.c.receipt_status).where(outbox.c.channel == "sms")))
    assert set(receipts.values()) == {"delivered"}
    events = store_rows(ws, select(DeliveryEvent.event, func.count()).group_by(DeliveryEvent.event))
    assert dict(events) == {"delivered": len(texted), "reply": len(texted)}

    # the next run: SMS is refused by those who replied T, so they fall through to app push
    run_playbook(ws, "sms-first", AS_OF, run_key="second", now=NOW)
    second = _run_rows(ws, "sms-first", "second")
    assert all(second[cid][0] == "app_push" for cid in texted)
    assert all(second[cid] == first[cid] for cid in set(first) - texted)
    # a playbook that only texts blocks them, with the consent reason
    make_live(ws, tmp_path, pid="sms-only", channel="fixed: sms", holdout=0.0)
    run_playbook(ws, "sms-only", AS_OF, now=NOW)
    only = _run_rows(ws, "sms-only", AS_OF.isoformat())
    assert all(only[cid] == (None, "blocked", "no_consent_sms") for cid in texted)
