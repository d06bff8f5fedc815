"""The message archive for compliance: export it with phone numbers masked, and prune it after its retention.

Delivery writes one :class:`~panhuo.delivery.models.MessageArchive` row per message sent (content, time,
channel, provider and provider id, the recipient already masked). :func:`export_archive` writes the rows of
a period as CSV (UTF-8 with BOM, so Excel opens the Chinese) or Parquet, atomically; every mobile number
left in a recipient or a message text is masked again on the way out (``138****1234``), so an export never
carries one in clear whatever a template put in. :func:`prune_archive` deletes the rows sent before the
retention period (``delivery.archive_retention_days``, default 1,825 days: five years) and records in the
audit log how many it deleted and up to when, in the same transaction.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from panhuo.content.masking import mask_phone
from panhuo.errors import ConfigError
from panhuo.store.models import SHANGHAI

__all__ = ["COLUMNS", "export_archive", "mask_phones_in", "prune_archive"]

COLUMNS = ("id", "sent_at", "channel", "provider", "provider_id", "playbook_id", "customer_id", "recipient", "content")
# a mainland mobile number (optionally +86/86 and separators) not inside a longer run of digits
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d){8}(?!\d)")
# any other run of 11 or more digits (ID and card numbers, numbers written together): first 3 and last 4 kept
_LONG = re.compile(r"\d{11,}")
_CHUNK = 5_000


def mask_phones_in(text: str | None) -> str:
    """``text`` with every mainland mobile number in it masked (``请致电13812341234`` -> ``请致电138****1234``),
    and every other run of 11 or more digits too (ID or card numbers, numbers written without a break)."""
    if not text:
        return text or ""
    text = _MOBILE.sub(lambda m: mask_phone(m.group(0)), text)
    return _LONG.sub(lambda m: m.group(0)[:3] + "*" * (len(m.group(0)) - 7) + m.group(0)[-4:], text)


def _rows(session: Any, since: dt.datetime | None, until: dt.datetime | None,
          channel: str | None) -> Iterator[dict[str, Any]]:
    from sqlalchemy import select

    from panhuo.delivery.models import MessageArchive as A

    q = select(A).order_by(A.sent_at, A.id)
    if since is not None:
        q = q.where(A.sent_at >= since)
    if until is not None:
        q = q.where(A.sent_at < until)
    if channel is not None:
        q = q.where(A.channel == channel)
    for a in session.execute(q.execution_options(yield_per=_CHUNK)).scalars():
        yield {"id": a.id, "sent_at": a.sent_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"), "channel": a.channel,
               "provider": a.provider, "provider_id": a.provider_id, "playbook_id": a.playbook_id,
               "customer_id": a.customer_id, "recipient": mask_phones_in(a.recipient),
               "content": mask_phones_in(a.content)}


def export_archive(session: Any, out: Path, *, since: dt.date | None = None, until: dt.date | None = None,
                   channel: str | None = None) -> int:
    """Write the archived messages sent on ``since`` .. ``until`` (days in Asia/Shanghai, both included) to
    ``out`` (``.csv`` or ``.parquet``), atomically; returns how many rows were written."""
    from panhuo._io import atomic_path

    out = Path(out)
    kind = out.suffix.lower()
    if kind not in (".csv", ".parquet"):
        raise ConfigError(f"{out}: the archive exports to .csv or .parquet, not {kind or 'no extension'!r}")
    if since and until and until < since:
        raise ConfigError(f"--to {until.isoformat()} is before --from {since.isoformat()}")
    start = dt.datetime.combine(since, dt.time(), tzinfo=SHANGHAI) if since else None
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), tzinfo=SHANGHAI) if until else None
    n = 0
    with atomic_path(out) as tmp:
        if kind == ".csv":
            with open(tmp, "w", encoding="utf-8-sig", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=COLUMNS)
                w.writeheader()
                for row in _rows(session, start, end, channel):
                    w.writerow(row)
                    n += 1
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            schema = pa.schema([(c, pa.int64() if c == "id" else pa.string()) for c in COLUMNS])
            with pq.ParquetWriter(tmp, schema) as writer:
                batch: list[dict[str, Any]] = []
                for row in _rows(session, start, end, channel):
                    batch.append(row)
                    if len(batch) >= _CHUNK:
                        writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                        n, batch = n + len(batch), []
                if batch or n == 0:
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                    n += len(batch)
    return n


def prune_archive(session: Any, *, retention_days: int, actor: str, now: dt.datetime | None = None,
                  dry_run: bool = False) -> tuple[int, dt.datetime]:
    """Delete the archived messages sent before ``now - retention_days`` (audited unless ``dry_run``).

    Returns (rows deleted or, with ``dry_run``, that would be; the cut-off). Runs in the caller's transaction.
    """
    from sqlalchemy import delete, func, select

    from panhuo.delivery.models import MessageArchive as A
    from panhuo.store.audit import record
    from panhuo.store.models import now_shanghai

    if retention_days < 1:
        raise ConfigError(f"retention of {retention_days} days: it must be at least 1")
    cutoff = (now or now_shanghai()) - dt.timedelta(days=retention_days)
    n = int(session.execute(select(func.count()).select_from(A).where(A.sent_at < cutoff)).scalar_one())
    if dry_run or n == 0:
        return n, cutoff
    session.execute(delete(A).where(A.sent_at < cutoff))
    record(session, actor=actor, action="archive.prune", entity="message_archive", entity_id="*",
           before={"rows_before_cutoff": n}, after={"cutoff": cutoff.isoformat(timespec="seconds"), "retention_days": retention_days})
    return n, cutoff
