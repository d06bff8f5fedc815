"""The delivery worker: drains due outbox messages through the channel adapters (``panhuo deliver``).

One batch at a time (``delivery.batch`` rows, default 500):

Pipelined: while a batch is sent on the event loop, the next one is claimed and prepared (steps 1-3)
and the previous one recorded (step 5) in threads, so the database round trips overlap the sending.

1. **claim** due rows (``status = 'pending' AND send_after <= now``, no live lease) in one short
   transaction, setting ``claimed_by`` and ``lease_until = now + delivery.lease_seconds``. PostgreSQL:
   ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)``, so several workers run side by side
   and never claim the same row; a killed worker's rows are claimable again once its lease has passed.
   While a batch is in flight its rows' lease is renewed every third of ``lease_seconds`` (a heartbeat),
   so only a dead (or stalled) worker's rows are reclaimed, never a slow batch's.
   SQLite: one worker at a time holds the ``delivery_lease`` row (renewed every batch); a second one
   is refused with the holder's name (``--follow`` waits for it instead).
2. **honour opt-outs**: one query finds which of the batch's (customer, channel) pairs have an
   ``opt_outs`` row (an SMS reply of T recorded by the callback endpoint while the run was being
   delivered, say); those messages are not sent but ``suppressed`` (``last_error`` e.g.
   ``opted_out:sms``), neither archived nor contact-logged. The run engine's consent guardrail only
   sees opt-outs when a run is planned; this re-check stops the sends queued before it. Opt-outs
   recorded while a batch is in flight reach an in-memory set every ``OPT_OUT_REFRESH_S`` (0.2 s),
   checked before every send attempt, so they also stop the rest of the batch already claimed.
3. **look up** what the batch needs, set-based: phones (SMS) and advisors (calls) from the warehouse
   ``customers`` table in one Parquet scan; the playbook's segment and the chosen tags for a webhook.
4. **send** every message concurrently with asyncio: one :class:`~panhuo.delivery.http.HttpClient`
   per provider (keep-alive connections; bearer token from the env var its settings name; httpx cost
   1-2 ms of CPU a request and capped a worker near 500 messages/s, see benchmarks/RESULTS.md), a
   token bucket per provider
   (``rate_per_second``), at most ``concurrency`` requests in flight, the provider's ``timeout``.
   Timeouts, network errors, 5xx, 429 and malformed answers are retried with exponential backoff and
   jitter (a ``Retry-After`` is waited for; one longer than ``delivery.max_wait`` defers the message to
   ``now + Retry-After`` and frees the batch); a permanent 4xx is a dead letter at once; after the
   provider's ``max_attempts`` the message is a dead letter with the last reason. The message's
   idempotency key goes to the provider every time, so a resend after a crash is deduplicated there.
   Call channel messages are not sent: each becomes a call task for the customer's advisor, due on the
   next trading day after its send time.
5. **record** the batch in one transaction: rows still pending are marked ``sent`` (provider id,
   ``sent_at``) with their ``message_archive`` and ``contact_log`` rows (the frequency caps count them),
   ``dead`` (reason in ``last_error``), ``tasked`` or deferred (PostgreSQL: one ``unnest`` statement per
   table for the whole batch). A row another worker finished meanwhile
   (after this worker's lease ran out) is left alone and counted as skipped: nothing is archived twice.
   One exception: a message the provider *accepted* is recorded ``sent`` even when this worker lost
   its claim, if the row is not sent yet (still pending elsewhere, or made a dead letter by a worker
   whose concurrent request for the same key was refused): the provider's acceptance is the truth.

Credentials are read once when the worker is made: a provider's missing variable is a DeliveryError
naming it, before anything is claimed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import random
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, or_, select, text, update

from panhuo.config import ADVISOR, DeliveryProvider, DeliverySettings
from panhuo.delivery.channels import (
    AppPushChannel,
    Channel,
    Message,
    SendResult,
    SmsChannel,
    WebhookChannel,
    WechatChannel,
    lookup_customers,
)
from panhuo.delivery.models import CallTask, DeliveryLease, MessageArchive
from panhuo.errors import DeliveryError
from panhuo.runs.models import ContactLog, OutboxMessage
from panhuo.store.models import ShanghaiDateTime, now_shanghai

if TYPE_CHECKING:
    from panhuo.delivery.http import HttpClient
    from sqlalchemy.orm import Session

    from panhuo.config import Workspace
    from panhuo.store.db import Store

__all__ = ["ChannelStats", "DeliverySummary", "DeliveryWorker", "TokenBucket", "check_credentials", "default_worker_id",
           "skip_missing_sniffio"]

log = logging.getLogger(__name__)

SQLITE_LEASE = "outbox"
outbox = OutboxMessage.__table__  # with delivery's columns (panhuo.delivery.models)
ProgressFn = Callable[[str, str], None]  # (channel, outcome) per finished message


OPT_OUT_REFRESH_S = 0.2  # how often a worker re-reads new opt-outs for the messages in flight
OPT_OUT_WINDOW = 1000  # ids re-read below the newest seen (rows committed out of id order)

# PostgreSQL: a batch's results in one statement each (arrays unnested), not one UPDATE/INSERT per row.
_AT = bindparam("now", type_=ShanghaiDateTime())
_SET_SENT = ("UPDATE outbox AS o SET status = 'sent', provider_id = v.pid, attempts = v.n, sent_at = :now, "
             "finished_at = :now, last_error = NULL, claimed_by = NULL, lease_until = NULL "
             "FROM unnest(CAST(:ids AS bigint[]), CAST(:pids AS text[]), CAST(:ns AS integer[])) AS v(id, pid, n) "
             "WHERE o.id = v.id ")
# still this worker's pending row (its claim not lost)
_PG_SENT_MINE = text(_SET_SENT + "AND o.status = 'pending' AND o.claimed_by = :me RETURNING o.id").bindparams(_AT)
# accepted by the provider after this worker lost its claim: the truth unless the row is sent already
_PG_SENT_LOST = text(_SET_SENT + "AND o.status IN ('pending', 'dead') RETURNING o.id").bindparams(_AT)
_PG_DEAD_MINE = text(
    "UPDATE outbox AS o SET status = 'dead', attempts = v.n, last_error = v.err, finished_at = :now, "
    "claimed_by = NULL, lease_until = NULL "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:ns AS integer[]), CAST(:errs AS text[])) AS v(id, n, err) "
    "WHERE o.id = v.id AND o.status = 'pending' AND o.claimed_by = :me RETURNING o.id").bindparams(_AT)
_PG_ARCHIVE = text(
    "INSERT INTO message_archive (outbox_id, playbook_id, customer_id, channel, provider, provider_id, recipient, "
    "content, sent_at) SELECT v.*, :now FROM unnest(CAST(:a0 AS bigint[]), CAST(:a1 AS text[]), CAST(:a2 AS text[]), "
    "CAST(:a3 AS text[]), CAST(:a4 AS text[]), CAST(:a5 AS text[]), CAST(:a6 AS text[]), CAST(:a7 AS text[])) AS v"
).bindparams(_AT)
_PG_CONTACTS = text(
    "INSERT INTO contact_log (customer_id, channel, sent_at, playbook_id) SELECT v.c, v.ch, :now, v.p "
    "FROM unnest(CAST(:c0 AS text[]), CAST(:c1 AS text[]), CAST(:c2 AS text[])) AS v(c, ch, p)").bindparams(_AT)


def skip_missing_sniffio() -> None:
    """Make httpcore's per-request ``import sniffio`` fail fast when sniffio is not installed.

    httpcore 1.0 tries ``import sniffio`` on every request and lock (to tell asyncio from trio); anyio
    4.16 no longer installs it, and a failed import is not cached, so every try searches ``sys.path``
    again: about 30% of the worker's CPU on loopback. ``sys.modules["sniffio"] = None`` makes the import
    fail at once; httpcore then assumes asyncio, exactly as before. Nothing changes when it is installed.
    """
    import importlib.util

    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


def default_worker_id() -> str:
    """``host:pid`` (the name a worker claims rows under unless ``--workers-id`` is given)."""
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def check_credentials(settings: DeliverySettings, env: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """The credentials of every provider a channel uses, from the environment variables named in settings.

    Raises DeliveryError naming every missing (or empty) variable and the setting that names it.
    """
    env = os.environ if env is None else env
    used = {p for ch, p in settings.channels.items() if p != ADVISOR}
    out: dict[str, dict[str, str]] = {}
    missing: list[str] = []
    for name in sorted(used):
        p = settings.providers[name]
        creds: dict[str, str] = {}
        for kind, var in (("token", p.token_env), ("secret", p.secret_env)):
            if var is None:
                continue
            value = env.get(var)
            if not value:
                missing.append(f"{var} (delivery.providers.{name}.{kind}_env)")
            else:
                creds[kind] = value
        out[name] = creds
    if missing:
        raise DeliveryError("environment variable(s) not set: " + ", ".join(missing)
                            + "; delivery reads credentials only from the environment")
    return out


class TokenBucket:
    """A token bucket: ``rate`` tokens a second, at most ``capacity`` saved up (asyncio)."""

    def __init__(self, rate: float, capacity: float | None = None) -> None:
        self.rate = float(rate)
        self.capacity = float(capacity if capacity is not None else max(1.0, rate / 10))
        self._tokens = self.capacity
        self._at = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        if not self._lock.locked():  # nobody waiting: take a token without the lock when there is one
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
                self._at = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


@dataclass
class ChannelStats:
    """Counts of one channel: messages sent, call tasks made, retries, dead letters, deferred, skipped,
    and suppressed (the customer opted out of the channel after the run was planned)."""

    sent: int = 0
    tasked: int = 0
    retried: int = 0
    dead: int = 0
    deferred: int = 0
    skipped: int = 0
    suppressed: int = 0


@dataclass
class DeliverySummary:
    """What a worker did: per-channel counts, batches, seconds, and the dead letters' reasons."""

    worker_id: str
    channels: dict[str, ChannelStats] = field(default_factory=dict)
    batches: int = 0
    seconds: float = 0.0
    dead_reasons: dict[str, int] = field(default_factory=dict)

    def of(self, channel: str) -> ChannelStats:
        return self.channels.setdefault(channel, ChannelStats())

    @property
    def sent(self) -> int:
        return sum(s.sent for s in self.channels.values())

    @property
    def dead(self) -> int:
        return sum(s.dead for s in self.channels.values())

    @property
    def suppressed(self) -> int:
        return sum(s.suppressed for s in self.channels.values())

    @property
    def done(self) -> int:
        return sum(s.sent + s.tasked + s.dead + s.suppressed for s in self.channels.values())


@dataclass
class _Outcome:
    message: Message
    result: SendResult
    attempts: int
    defer_until: dt.datetime | None = None
    retried: int = 0
    suppressed: bool = False  # the customer opted out of the channel while the message waited to be sent


@dataclass
class _Route:
    provider: str
    settings: DeliveryProvider
    channel: Channel


class DeliveryWorker:
    """Drains the outbox of a workspace's store (see the module docstring).

    ``clock`` gives "now" (aware, Shanghai); ``env`` the environment credentials are read from;
    ``on_progress(channel, outcome)`` is called per finished message (outcome: sent, tasked, dead,
    deferred, skipped, suppressed).
    """

    def __init__(
        self,
        ws: Workspace,
        *,
        store: Store | None = None,
        worker_id: str | None = None,
        batch: int | None = None,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], dt.datetime] = now_shanghai,
        on_progress: ProgressFn | None = None,
    ) -> None:
        self.ws = ws
        self.settings = ws.settings.delivery
        self.creds = check_credentials(self.settings, env)  # fails here, before anything is claimed
        self.worker_id = (worker_id or default_worker_id())[:64]
        self.batch = batch or self.settings.batch
        self.clock = clock
        self.on_progress = on_progress
        self._store = store
        self._own_store = store is None
        self._opted_now: set[tuple[str, str]] = set()  # opt-outs seen while running (see _watch_opt_outs)
        self.routes: dict[str, _Route] = {}
        for ch, name in self.settings.channels.items():
            if name == ADVISOR:
                continue
            p = self.settings.providers[name]
            self.routes[ch] = _Route(name, p, self._adapter(ch, p, self.creds[name]))
        self.channels = tuple(self.settings.channels)  # the routed channels (call included when routed)

    def _adapter(self, channel: str, p: DeliveryProvider, creds: dict[str, str]) -> Channel:
        if p.kind == "webhook":
            return WebhookChannel(channel, creds["secret"], p.base_url)
        if channel == "sms":
            return SmsChannel()
        if channel == "app_push":
            return AppPushChannel()
        if channel == "wechat":
            return WechatChannel(self.settings.wechat.openid_from)
        raise DeliveryError(f"channel {channel!r} cannot be sent through provider kind {p.kind!r}")

    @property
    def store(self) -> Store:
        if self._store is None:
            from panhuo.store.db import open_store

            self._store = open_store(self.ws)
        return self._store

    @property
    def on_postgresql(self) -> bool:
        """True when the store is PostgreSQL (several workers may run side by side; SQLite: one)."""
        return self.store.engine.dialect.name == "postgresql"

    _pg = on_postgresql

    # ------------------------------------------------------------------------------------- driving
    def run(self, *, follow: bool = False, stop: threading.Event | None = None,
            max_batches: int | None = None) -> DeliverySummary:
        """Deliver until nothing is due (``follow``: until ``stop`` is set), batch by batch."""
        return asyncio.run(self.arun(follow=follow, stop=stop, max_batches=max_batches))

    async def arun(self, *, follow: bool = False, stop: threading.Event | None = None,
                   max_batches: int | None = None) -> DeliverySummary:
        from panhuo.delivery.http import HttpClient

        summary = DeliverySummary(self.worker_id)
        started = time.monotonic()
        clients: dict[str, HttpClient] = {}
        buckets: dict[str, TokenBucket] = {}
        limits: dict[str, int] = {}
        for route in self.routes.values():
            if route.provider in clients:
                continue
            p, creds = route.settings, self.creds[route.provider]
            headers = {"Authorization": f"Bearer {creds['token']}"} if "token" in creds else {}
            clients[route.provider] = HttpClient(p.base_url, headers=headers, timeout=p.timeout,
                                                 max_connections=p.concurrency)
            buckets[route.provider] = TokenBucket(p.rate_per_second)
            limits[route.provider] = p.concurrency
        self._opted_now = set()
        watch = asyncio.create_task(self._watch_opt_outs())
        prefetch: asyncio.Task | None = None  # the next batch, claimed while this one is sent
        recording: asyncio.Task | None = None  # the last batch's record, written while the next one is sent
        try:
            while not (stop is not None and stop.is_set()):
                if max_batches is not None and summary.batches >= max_batches:
                    break
                if not self._sqlite_lease(wait=follow):
                    if not follow:
                        break
                    await asyncio.sleep(self.settings.poll_seconds)
                    continue
                if prefetch is not None:
                    (batch, sends, tally), prefetch = await prefetch, None
                else:
                    batch, sends, tally = await asyncio.to_thread(self._next)
                if not batch:
                    if recording is not None:
                        recording, done = None, recording
                        await done
                    if not follow:
                        break
                    await asyncio.sleep(self.settings.poll_seconds)
                    continue
                summary.batches += 1
                if (max_batches is None or summary.batches < max_batches) and not (stop is not None and stop.is_set()):
                    prefetch = asyncio.create_task(asyncio.to_thread(self._next))
                recording = await self._deliver_batch(batch, sends, tally, clients, buckets, limits, summary,
                                                      recording)
        finally:
            watch.cancel()
            if recording is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await recording
            if prefetch is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    self._release([m.id for m in (await prefetch)[0]])
            for c in clients.values():
                await c.aclose()
            self._release_sqlite_lease()
            summary.seconds = time.monotonic() - started
            if self._own_store and self._store is not None:
                self._store.dispose()
                self._store = None
        return summary

    def _release(self, ids: list[int]) -> None:
        """Give back claimed rows this worker will not send (a prefetched batch when it stops)."""
        if not ids:
            return
        o = outbox
        with self.store.session() as s:
            s.execute(update(o).where(o.c.id.in_(ids), o.c.status == "pending", o.c.claimed_by == self.worker_id)
                      .values(claimed_by=None, lease_until=None))

    # ------------------------------------------------------------------------------------- leases
    def _sqlite_lease(self, *, wait: bool) -> bool:
        """SQLite: take or renew the one worker lease (True), or see it held by another (False/raise)."""
        if self._pg:
            return True
        now = self.clock()
        lease = DeliveryLease.__table__
        with self.store.session() as s:
            if s.get(DeliveryLease, SQLITE_LEASE) is None:
                s.add(DeliveryLease(name=SQLITE_LEASE))
                s.flush()
            got = s.execute(
                update(lease).where(lease.c.name == SQLITE_LEASE,
                                    or_(lease.c.holder.is_(None), lease.c.holder == self.worker_id,
                                        lease.c.lease_until < now))
                .values(holder=self.worker_id, lease_until=now + dt.timedelta(seconds=self.settings.lease_seconds))
            ).rowcount
            if got:
                return True
            row = s.get(DeliveryLease, SQLITE_LEASE)
        if wait:
            return False
        assert row is not None
        raise DeliveryError(f"another delivery worker ({row.holder}) holds the SQLite store's lease until "
                            f"{row.lease_until:%Y-%m-%d %H:%M:%S}; on SQLite one worker runs at a time "
                            "(PostgreSQL: several)")

    def _release_sqlite_lease(self) -> None:
        if self._store is None or self._pg:
            return
        lease = DeliveryLease.__table__
        try:
            with self.store.session() as s:
                s.execute(update(lease).where(lease.c.name == SQLITE_LEASE, lease.c.holder == self.worker_id)
                          .values(holder=None, lease_until=None))
        except Exception:  # the lease runs out by itself
            log.warning("could not release the SQLite delivery lease", exc_info=True)

    def _claim(self, session: Session | None = None) -> list[Message]:
        """Claim up to ``batch`` due rows of the routed channels for this worker (one transaction, or in
        ``session``'s)."""
        now = self.clock()
        o = outbox
        due = (select(o.c.id)
               .where(o.c.status == "pending", o.c.send_after <= now, o.c.channel.in_(self.channels),
                      or_(o.c.lease_until.is_(None), o.c.lease_until < now))
               .limit(self.batch))
        if self._pg:
            # Oldest first, walking ix_outbox_due (status, send_after) in order: ``ORDER BY send_after, id``
            # sorted every pending row on each claim (60-90 ms and a sort on disk at 100k rows), and after a
            # bulk insert the planner's estimates are off enough to pick a bitmap scan and a sort even for
            # ``ORDER BY send_after``; so the index walk is asked for (SET LOCAL, this transaction only).
            # Equal send times come in index order; the batch is sent in id order either way.
            due = due.order_by(o.c.send_after).with_for_update(skip_locked=True)
        else:
            due = due.order_by(o.c.send_after, o.c.id)
        stmt = (update(o).where(o.c.id.in_(due.scalar_subquery()))
                .values(claimed_by=self.worker_id, lease_until=now + dt.timedelta(seconds=self.settings.lease_seconds))
                .returning(o.c.id, o.c.run_id, o.c.playbook_id, o.c.customer_id, o.c.channel, o.c.arm,
                           o.c.benefit_id, o.c.content, o.c.idempotency_key, o.c.attempts, o.c.send_after))
        with contextlib.nullcontext(session) if session is not None else self.store.session() as s:
            if self._pg:
                s.execute(text("SET LOCAL enable_seqscan = off"))
                s.execute(text("SET LOCAL enable_bitmapscan = off"))
            rows = s.execute(stmt).all()
            if self._pg:
                s.execute(text("RESET enable_seqscan"))
                s.execute(text("RESET enable_bitmapscan"))
        out = []
        for r in sorted(rows, key=lambda r: r.id):
            try:
                content = json.loads(r.content)
            except ValueError:
                content = {}
            m = Message(id=r.id, run_id=r.run_id, playbook_id=r.playbook_id, customer_id=r.customer_id,
                        channel=r.channel, content=content if isinstance(content, dict) else {},
                        idempotency_key=r.idempotency_key, attempts=r.attempts, arm=r.arm, benefit_id=r.benefit_id,
                        content_text=r.content)
            m.extra["send_after"] = r.send_after
            out.append(m)
        return out

    # ------------------------------------------------------------------------------------- a batch
    def _lookup(self, batch: Sequence[Message]) -> None:
        """Phones, advisors, segments and tags for the whole batch (set-based)."""
        cols = []
        if any(m.channel == "sms" for m in batch):
            cols.append("phone")
        if any(m.channel == "call" for m in batch):
            cols.append("advisor_id")
        if cols:
            need = [m.customer_id for m in batch if m.channel in ("sms", "call")]
            found = lookup_customers(self.ws.warehouse_dir, need, cols)
            for m in batch:
                row = found.get(m.customer_id, {})
                if m.channel == "sms":
                    m.extra["phone"] = row.get("phone")
                elif m.channel == "call":
                    m.extra["advisor_id"] = row.get("advisor_id")
        hooks = [m for m in batch if m.channel in self.routes and self.routes[m.channel].settings.kind == "webhook"]
        if hooks:
            segments = self._segments({m.playbook_id for m in hooks})
            tags = self._tags([m.customer_id for m in hooks])
            for m in hooks:
                m.extra["segment"] = segments.get(m.playbook_id)
                m.extra["tags"] = tags.get(m.customer_id, {})

    def _segments(self, playbook_ids: set[str]) -> dict[str, Any]:
        from panhuo.store.models import Playbook, PlaybookVersion

        with self.store.session() as s:
            rows = s.execute(select(PlaybookVersion.playbook_id, PlaybookVersion.parsed)
                             .join(Playbook, (Playbook.id == PlaybookVersion.playbook_id)
                                   & (Playbook.current_version == PlaybookVersion.version))
                             .where(PlaybookVersion.playbook_id.in_(playbook_ids))).all()
        out: dict[str, Any] = {}
        for pid, parsed in rows:
            user = (parsed or {}).get("user") or {}
            out[pid] = user.get("segment") or user.get("rule")
        return out

    def _tags(self, customer_ids: list[str]) -> dict[str, dict[str, Any]]:
        names = self.settings.webhook_tags
        folder = self.ws.warehouse_dir / "tags"
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        if not names or not files:
            return {}
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        data = ds.dataset(str(files[-1]), format="parquet")
        have = [n for n in names if n in data.schema.names]
        key = pc.field("customer_id").cast(pa.string())
        t = data.to_table(columns={"customer_id": key, **{n: pc.field(n) for n in have}},
                          filter=key.isin(pa.array(list(dict.fromkeys(customer_ids)), pa.string())))
        cols = {n: t.column(n).to_pylist() for n in have}
        return {cid: {n: cols[n][i] for n in have} for i, cid in enumerate(t.column("customer_id").to_pylist())}

    async def _deliver_batch(self, batch: list[Message], sends: list[Message], tally: list[tuple],
                             clients: dict[str, HttpClient], buckets: dict[str, TokenBucket],
                             limits: dict[str, int], summary: DeliverySummary,
                             previous: asyncio.Task | None) -> asyncio.Task | None:
        """Send one claimed and prepared batch (:meth:`_next`); returns the task recording it (``previous``,
        the last batch's, is awaited first: at most one record in flight). The batch's lease is renewed
        until it is recorded."""
        beat = asyncio.create_task(self._heartbeat([m.id for m in batch]))
        recording = None
        try:
            self._apply(tally, summary)
            if sends:
                outcomes = await self._send_all(sends, clients, buckets, limits)
            if previous is not None:
                await previous
            if sends:
                recording = asyncio.create_task(self._finish(outcomes, summary, beat))
            return recording
        finally:
            if recording is None:
                beat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beat

    async def _send_all(self, sends: list[Message], clients: dict[str, HttpClient], buckets: dict[str, TokenBucket],
                        limits: dict[str, int]) -> list[_Outcome]:
        """Every message of a batch, at most ``concurrency`` in flight per provider: that many runners per
        provider take its messages in order. (A task per message waiting on an ``asyncio.Semaphore`` cost
        O(waiters) per acquire in Python 3.11, ``Semaphore.locked`` scanning them all: quadratic in the
        batch.)"""
        queues: dict[str, deque[int]] = {}
        for i, m in enumerate(sends):
            queues.setdefault(self.routes[m.channel].provider, deque()).append(i)
        out: list[Any] = [None] * len(sends)

        async def runner(provider: str, queue: deque[int]) -> None:
            client, bucket = clients[provider], buckets[provider]
            while queue:
                i = queue.popleft()
                m = sends[i]
                out[i] = await self._send(m, self.routes[m.channel], client, bucket)

        await asyncio.gather(*(runner(p, q) for p, q in queues.items() for _ in range(min(limits[p], len(q)))))
        return out

    async def _finish(self, outcomes: list[_Outcome], summary: DeliverySummary, beat: asyncio.Task) -> None:
        try:
            self._apply(await asyncio.to_thread(self._record, outcomes), summary)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    def _next(self) -> tuple[list[Message], list[Message], list[tuple]]:
        """Off the event loop: claim a batch and prepare it; (claimed, to send, tally of the others)."""
        with self.store.session() as s:  # the claim and the opt-out check: one transaction
            batch = self._claim(s)
            opted = self._opted_out(batch, s) if batch else set()
        if not batch:
            return [], [], []
        return (batch, *self._prepare(batch, opted))

    def _prepare(self, batch: list[Message], opted: set[tuple[str, str]] | None = None
                 ) -> tuple[list[Message], list[tuple]]:
        """Off the event loop: opt-outs suppressed, phones/advisors/segments looked up, call tasks made;
        returns the messages to send and the tally of the others."""
        tally: list[tuple] = []
        batch = self._suppress_opted_out(batch, tally, opted)
        if not batch:
            return [], tally
        self._lookup(batch)
        calls = [m for m in batch if m.channel == "call"]
        if calls:
            self._make_call_tasks(calls, tally)
        return [m for m in batch if m.channel != "call"], tally

    def _apply(self, tally: Sequence[tuple], summary: DeliverySummary) -> None:
        """Count a tally of (channel, outcome, retries, dead reason) in the summary; report progress.
        Runs on the event loop only, so the summary is never written by two threads."""
        for channel, outcome, retried, reason in tally:
            stats = summary.of(channel)
            setattr(stats, outcome, getattr(stats, outcome) + 1)
            stats.retried += retried
            if reason is not None:
                summary.dead_reasons[reason] = summary.dead_reasons.get(reason, 0) + 1
            self._progress(channel, outcome)

    async def _heartbeat(self, ids: list[int]) -> None:
        """Keep the batch's rows leased while it is in flight: every third of ``lease_seconds``, renew them.

        Without it a batch slower than the lease (retries, Retry-After waits, a loaded machine) is
        reclaimed by another worker while this one still sends it: both then send the same keys and
        one may record a dead letter (a 400 on its attempt) for a key the other got delivered.
        """
        every = max(0.2, self.settings.lease_seconds / 3)
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self._renew, ids)
            except Exception:  # the next beat tries again; a lost lease only risks a resend (deduplicated)
                log.warning("could not renew the lease of a batch", exc_info=True)

    def _renew(self, ids: list[int]) -> None:
        until = self.clock() + dt.timedelta(seconds=self.settings.lease_seconds)
        o = outbox
        with self.store.session() as s:
            s.execute(update(o).where(o.c.id.in_(ids), o.c.status == "pending", o.c.claimed_by == self.worker_id)
                      .values(lease_until=until))
        if not self._pg:
            self._sqlite_lease(wait=True)

    def _backoff(self, attempt: int) -> float:
        base = min(self.settings.backoff_max, self.settings.backoff_base * 2 ** max(0, attempt - 1))
        return base / 2 + random.uniform(0, base / 2)  # equal jitter: never zero, never above the cap

    async def _send(self, m: Message, route: _Route, client: HttpClient, bucket: TokenBucket) -> _Outcome:
        attempts, retried = m.attempts, 0
        max_attempts = route.settings.max_attempts
        opted = self._opted_now
        while True:
            await bucket.take()
            if (m.customer_id, m.channel) in opted:  # opted out while the batch was in flight
                return _Outcome(m, SendResult.permanent(f"opted_out:{m.channel}"), attempts, retried=retried,
                                suppressed=True)
            attempts += 1
            result = await route.channel.send(client, m)
            if result.ok or result.outcome == "permanent":
                break
            if attempts >= max_attempts:
                result = SendResult.permanent(f"gave up after {attempts} attempts: {result.reason}")
                break
            wait = result.retry_after if result.retry_after is not None else self._backoff(attempts)
            if wait > self.settings.max_wait:
                return _Outcome(m, result, attempts, defer_until=self.clock() + dt.timedelta(seconds=wait),
                                retried=retried)
            log.info("message %s (%s to %s): %s; attempt %d in %.2fs", m.id, m.channel,
                     route.channel.recipient(m), result.reason, attempts + 1, wait)
            retried += 1
            await asyncio.sleep(wait)
        if not result.ok:
            log.warning("message %s (%s to %s) is a dead letter: %s", m.id, m.channel, route.channel.recipient(m),
                        result.reason)
        return _Outcome(m, result, attempts, retried=retried)

    def _still_pending(self, s: Session, ids: list[int]) -> set[int]:
        # still ours: pending and not reclaimed by another worker (after a lease this worker lost)
        q = select(outbox.c.id).where(outbox.c.id.in_(ids), outbox.c.status == "pending",
                                      outbox.c.claimed_by == self.worker_id)
        if self._pg:
            q = q.with_for_update()
        return set(s.execute(q).scalars())

    def _not_yet_sent(self, s: Session, ids: list[int]) -> set[int]:
        # pending under another worker's claim, or already a dead letter: not sent, not archived yet
        q = select(outbox.c.id).where(outbox.c.id.in_(ids), outbox.c.status.in_(("pending", "dead")))
        if self._pg:
            q = q.with_for_update()
        return set(s.execute(q).scalars())

    def _progress(self, channel: str, outcome: str) -> None:
        if self.on_progress is not None:
            self.on_progress(channel, outcome)

    def _record(self, outcomes: Sequence[_Outcome]) -> list[tuple]:
        """One transaction: sent (+ archive + contact log), dead letters, deferrals, opt-outs met in flight;
        rows done elsewhere skipped. Returns the tally (see :meth:`_apply`). Runs off the event loop."""
        if self._pg:
            return self._record_pg(outcomes)
        now = self.clock()
        tally: list[tuple] = []
        sent, dead, deferred, suppressed = [], [], [], []
        archive, contacts = [], []
        with self.store.session() as s:
            live = self._still_pending(s, [x.message.id for x in outcomes])
            # The provider accepted a message this worker no longer holds (its lease ran out while it was
            # sending and another worker reclaimed it, which may even have got a permanent refusal for the
            # same key): an accepted send is the truth, so it is recorded as sent unless already sent.
            lost = [x.message.id for x in outcomes if x.result.ok and x.message.id not in live]
            if lost:
                live |= self._not_yet_sent(s, lost)
            for x in outcomes:
                m = x.message
                if m.id not in live:
                    tally.append((m.channel, "skipped", x.retried, None))
                    continue
                if x.result.ok:
                    route = self.routes[m.channel]
                    sent.append((m.id, x.result.provider_id, x.attempts))
                    archive.append((m.id, m.playbook_id, m.customer_id, m.channel, route.provider,
                                    x.result.provider_id, route.channel.recipient(m), m.content_text))
                    contacts.append((m.customer_id, m.channel, m.playbook_id))
                    tally.append((m.channel, "sent", x.retried, None))
                elif x.suppressed:
                    suppressed.append({"oid": m.id, "n": x.attempts, "err": x.result.reason})
                    tally.append((m.channel, "suppressed", x.retried, None))
                elif x.defer_until is not None:
                    deferred.append({"oid": m.id, "n": x.attempts, "err": x.result.reason, "at": x.defer_until})
                    tally.append((m.channel, "deferred", x.retried, None))
                else:
                    reason = (x.result.reason or "unknown")[:1000]
                    dead.append((m.id, x.attempts, reason))
                    tally.append((m.channel, "dead", x.retried, reason.split(":", 1)[-1].strip()[:80]))
            self._write_sent(s, now, sent, archive, contacts)
            self._write_dead(s, now, dead)
            self._write_unsent(s, now, deferred, suppressed)
        if suppressed:
            log.info("%d message(s) not sent: the customer opted out of the channel while the batch was in flight",
                     len(suppressed))
        return tally

    def _record_pg(self, outcomes: Sequence[_Outcome]) -> list[tuple]:
        """:meth:`_record` on PostgreSQL: the sent rows and the dead letters are each written by one
        ``UPDATE ... FROM unnest(...) WHERE <still this worker's pending row> RETURNING id`` (the row lock
        and the re-check in one statement, no ``SELECT ... FOR UPDATE`` first); an accepted message this
        worker no longer holds is then recorded sent if not sent yet (see the module docstring); archive
        and contact-log rows only for the rows that statement changed."""
        now = self.clock()
        oks = [x for x in outcomes if x.result.ok]
        deads = [x for x in outcomes if not x.result.ok and not x.suppressed and x.defer_until is None]
        others = [x for x in outcomes if not x.result.ok and (x.suppressed or x.defer_until is not None)]
        done: set[int] = set()
        with self.store.session() as s:
            if oks:
                got = set(s.execute(_PG_SENT_MINE, self._sent_params(oks, now)).scalars())
                lost = [x for x in oks if x.message.id not in got]
                if lost:
                    got |= set(s.execute(_PG_SENT_LOST, self._sent_params(lost, now)).scalars())
                archive, contacts = [], []
                for x in oks:
                    m = x.message
                    if m.id in got:
                        route = self.routes[m.channel]
                        archive.append((m.id, m.playbook_id, m.customer_id, m.channel, route.provider,
                                        x.result.provider_id, route.channel.recipient(m), m.content_text))
                        contacts.append((m.customer_id, m.channel, m.playbook_id))
                if archive:
                    a = [list(col) for col in zip(*archive, strict=True)]
                    c = [list(col) for col in zip(*contacts, strict=True)]
                    s.execute(_PG_ARCHIVE, {f"a{i}": a[i] for i in range(8)} | {"now": now})
                    s.execute(_PG_CONTACTS, {"c0": c[0], "c1": c[1], "c2": c[2], "now": now})
                done |= got
            if deads:
                done |= set(s.execute(_PG_DEAD_MINE, {
                    "ids": [x.message.id for x in deads], "ns": [x.attempts for x in deads],
                    "errs": [(x.result.reason or "unknown")[:1000] for x in deads], "now": now,
                    "me": self.worker_id}).scalars())
            if others:
                live = self._still_pending(s, [x.message.id for x in others])
                deferred = [{"oid": x.message.id, "n": x.attempts, "err": x.result.reason, "at": x.defer_until}
                            for x in others if x.message.id in live and not x.suppressed]
                suppressed = [{"oid": x.message.id, "n": x.attempts, "err": x.result.reason}
                              for x in others if x.message.id in live and x.suppressed]
                self._write_unsent(s, now, deferred, suppressed)
                if suppressed:
                    log.info("%d message(s) not sent: the customer opted out of the channel while the batch was "
                             "in flight", len(suppressed))
                done |= live
        tally: list[tuple] = []
        for x in outcomes:
            m = x.message
            if m.id not in done:
                tally.append((m.channel, "skipped", x.retried, None))
            elif x.result.ok:
                tally.append((m.channel, "sent", x.retried, None))
            elif x.suppressed:
                tally.append((m.channel, "suppressed", x.retried, None))
            elif x.defer_until is not None:
                tally.append((m.channel, "deferred", x.retried, None))
            else:
                reason = (x.result.reason or "unknown")[:1000]
                tally.append((m.channel, "dead", x.retried, reason.split(":", 1)[-1].strip()[:80]))
        return tally

    def _sent_params(self, oks: Sequence[_Outcome], now: dt.datetime) -> dict[str, Any]:
        return {"ids": [x.message.id for x in oks], "pids": [x.result.provider_id for x in oks],
                "ns": [x.attempts for x in oks], "now": now, "me": self.worker_id}

    def _write_sent(self, s: Session, now: dt.datetime, sent: list[tuple], archive: list[tuple],
                    contacts: list[tuple]) -> None:
        """Sent rows, their archive and contact-log rows (SQLite: executemany; PostgreSQL: :meth:`_record_pg`)."""
        if not sent:
            return
        o = outbox
        s.execute(update(o).where(o.c.id == bindparam("oid")).values(
            status="sent", provider_id=bindparam("pid"), attempts=bindparam("n"), sent_at=now,
            finished_at=now, last_error=None, claimed_by=None, lease_until=None),
            [{"oid": i, "pid": p, "n": n} for i, p, n in sent])
        s.execute(insert(MessageArchive.__table__), [
            {"outbox_id": r[0], "playbook_id": r[1], "customer_id": r[2], "channel": r[3], "provider": r[4],
             "provider_id": r[5], "recipient": r[6], "content": r[7], "sent_at": now} for r in archive])
        s.execute(insert(ContactLog.__table__), [
            {"customer_id": r[0], "channel": r[1], "sent_at": now, "playbook_id": r[2]} for r in contacts])

    def _write_dead(self, s: Session, now: dt.datetime, dead: list[tuple]) -> None:
        if not dead:
            return
        o = outbox
        s.execute(update(o).where(o.c.id == bindparam("oid")).values(
            status="dead", attempts=bindparam("n"), last_error=bindparam("err"), finished_at=now,
            claimed_by=None, lease_until=None), [{"oid": i, "n": n, "err": e} for i, n, e in dead])

    def _write_unsent(self, s: Session, now: dt.datetime, deferred: list[dict[str, Any]],
                      suppressed: list[dict[str, Any]]) -> None:
        """Release deferred messages (retry at ``at``) and close suppressed ones (opted out), claims cleared."""
        o = outbox
        oid = o.c.id == bindparam("oid")
        if deferred:
            s.execute(update(o).where(oid).values(
                attempts=bindparam("n"), last_error=bindparam("err"), send_after=bindparam("at"),
                claimed_by=None, lease_until=None), deferred)
        if suppressed:
            s.execute(update(o).where(oid).values(
                status="suppressed", attempts=bindparam("n"), last_error=bindparam("err"), finished_at=now,
                claimed_by=None, lease_until=None), suppressed)

    # ------------------------------------------------------------------------------------- opt-outs
    def _latest_opt_out(self) -> int:
        from sqlalchemy import func

        from panhuo.delivery.events import OptOut

        with self.store.read_session() as s:  # SQLite: no writer lock for a read
            return int(s.execute(select(func.coalesce(func.max(OptOut.id), 0))).scalar_one())

    def _opt_outs_since(self, since: int) -> list[tuple[int, str, str]]:
        from panhuo.delivery.events import OptOut

        with self.store.read_session() as s:  # every 0.2 s: never queue behind (or block) the writers
            return [tuple(r) for r in s.execute(select(OptOut.id, OptOut.customer_id, OptOut.channel)
                                                .where(OptOut.id > since))]

    async def _watch_opt_outs(self) -> None:
        """Every ``OPT_OUT_REFRESH_S``, add the opt-outs recorded since the worker started to an in-memory
        set that every send attempt checks (:meth:`_send`), so a reply of T stops the customer's messages of
        the batch already in flight, not only later batches (those are checked when claimed). Re-reads a
        window of recent ids each time: a row whose id was taken before a later one's but committed after
        it is still seen."""
        try:
            newest = await asyncio.to_thread(self._latest_opt_out)
        except Exception:
            log.warning("could not read the opt-outs; in-flight messages are checked per batch only", exc_info=True)
            return
        seen = newest
        while True:
            await asyncio.sleep(OPT_OUT_REFRESH_S)
            try:
                rows = await asyncio.to_thread(self._opt_outs_since, max(newest, seen - OPT_OUT_WINDOW))
            except Exception:  # the next refresh tries again; the per-batch check still applies
                log.warning("could not refresh the opt-outs", exc_info=True)
                continue
            for oid, customer_id, channel in rows:
                self._opted_now.add((customer_id, channel))
                seen = max(seen, oid)

    def _opted_out(self, batch: Sequence[Message], session: Session | None = None) -> set[tuple[str, str]]:
        """The batch's (customer, channel) pairs with an opt-out: one query for the whole batch (in
        ``session``'s transaction when given)."""
        from panhuo.delivery.events import OptOut

        customers = list(dict.fromkeys(m.customer_id for m in batch))
        channels = list(dict.fromkeys(m.channel for m in batch))
        with contextlib.nullcontext(session) if session is not None else self.store.session() as s:
            rows = s.execute(select(OptOut.customer_id, OptOut.channel)
                             .where(OptOut.customer_id.in_(customers), OptOut.channel.in_(channels))).all()
        return {(r[0], r[1]) for r in rows}

    def _suppress_opted_out(self, batch: list[Message], tally: list[tuple],
                            opted: set[tuple[str, str]] | None = None) -> list[Message]:
        """Mark the messages whose customer opted out of their channel (``opted``, else looked up)
        ``suppressed`` (one transaction); returns the rest. Nothing is sent, archived or contact-logged
        for them."""
        if opted is None:
            opted = self._opted_out(batch)
        opted = opted | {(m.customer_id, m.channel) for m in batch if (m.customer_id, m.channel) in self._opted_now}
        if not opted:
            return batch
        stop = [m for m in batch if (m.customer_id, m.channel) in opted]
        now = self.clock()
        o = outbox
        done = []
        with self.store.session() as s:
            live = self._still_pending(s, [m.id for m in stop])
            for m in stop:
                if m.id not in live:
                    tally.append((m.channel, "skipped", 0, None))
                    continue
                done.append({"oid": m.id, "err": f"opted_out:{m.channel}"})
                tally.append((m.channel, "suppressed", 0, None))
            if done:
                s.execute(update(o).where(o.c.id == bindparam("oid")).values(
                    status="suppressed", last_error=bindparam("err"), finished_at=now, claimed_by=None,
                    lease_until=None), done)
        if done:
            log.info("%d message(s) not sent: the customer opted out of the channel", len(done))
        return [m for m in batch if (m.customer_id, m.channel) not in opted]

    def _make_call_tasks(self, calls: Sequence[Message], tally: list[tuple]) -> None:
        """Call channel messages become call tasks for the advisor, due on the next trading day (one transaction)."""
        from panhuo.calendar.service import calendar_for

        cal = calendar_for(self.ws)
        now = self.clock()
        o = outbox
        tasks, archive, contacts, done = [], [], [], []
        with self.store.session() as s:
            live = self._still_pending(s, [m.id for m in calls])
            for m in calls:
                if m.id not in live:
                    tally.append(("call", "skipped", 0, None))
                    continue
                when = max(m.extra.get("send_after") or now, now)
                advisor = m.extra.get("advisor_id")
                tasks.append({"outbox_id": m.id, "playbook_id": m.playbook_id, "customer_id": m.customer_id,
                              "advisor_id": advisor, "due_date": cal.next_trading_day(when.date()),
                              "script": str(m.content.get("script", "")), "created_at": now})
                archive.append({"outbox_id": m.id, "playbook_id": m.playbook_id, "customer_id": m.customer_id,
                                "channel": "call", "provider": ADVISOR, "provider_id": None,
                                "recipient": f"advisor:{advisor or '-'}", "content": m.content_text, "sent_at": now})
                contacts.append({"customer_id": m.customer_id, "channel": "call", "sent_at": now,
                                 "playbook_id": m.playbook_id})
                done.append({"oid": m.id})
                tally.append(("call", "tasked", 0, None))
            if tasks:
                s.execute(insert(CallTask.__table__), tasks)
                s.execute(insert(MessageArchive.__table__), archive)
                s.execute(insert(ContactLog.__table__), contacts)
                s.execute(update(o).where(o.c.id == bindparam("oid")).values(
                    status="tasked", attempts=o.c.attempts + 1, sent_at=now, finished_at=now, claimed_by=None,
                    lease_until=None), done)

    # ------------------------------------------------------------------------------------- queries
    def due_count(self) -> int:
        """Pending messages of the routed channels due now (for a progress bar's total)."""
        from sqlalchemy import func

        o = outbox
        with self.store.session() as s:
            return int(s.execute(select(func.count()).select_from(o).where(
                o.c.status == "pending", o.c.send_after <= self.clock(), o.c.channel.in_(self.channels))).scalar_one())
