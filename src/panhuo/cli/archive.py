"""``panhuo archive``: the compliance archive of sent messages — export it (phones masked), prune it after retention.

``panhuo archive export --out FILE.csv|FILE.parquet [--from D] [--to D] [--channel C] --as USER`` (compliance or
admin; the export is in the audit log) and ``panhuo archive prune [--dry-run] --as USER`` (admin; deletes the
messages older than ``delivery.archive_retention_days``). See :mod:`panhuo.delivery.archive`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from panhuo.cli._common import console, parse_date_option, workspace
from panhuo.cli._store import AsUser, store

__all__ = ["archive_app", "register"]

archive_app = typer.Typer(name="archive", no_args_is_help=True,
                          help="The archive of sent messages for compliance: export (phones masked), prune.")


@archive_app.command("export")
def export_cmd(
    out: Annotated[Path, typer.Option("--out", help="FILE.csv (UTF-8, opens in Excel) or FILE.parquet")],
    since: Annotated[str | None, typer.Option("--from", help="first day sent (YYYY-MM-DD), Asia/Shanghai")] = None,
    until: Annotated[str | None, typer.Option("--to", help="last day sent (YYYY-MM-DD), Asia/Shanghai")] = None,
    channel: Annotated[str | None, typer.Option("--channel", help="only this channel")] = None,
    as_user: AsUser = None,
) -> None:
    """Export the sent messages of a period, every phone number masked (compliance or admin; audited)."""
    from panhuo.delivery.archive import export_archive
    from panhuo.store.audit import record
    from panhuo.store.users import acting_user, require_role

    first = parse_date_option(since, "--from") if since else None
    last = parse_date_option(until, "--to") if until else None
    st = store()
    try:
        with st.session() as s:
            who = acting_user(s, as_user)
            require_role(who, "compliance", "admin", action="exporting the message archive")
            n = export_archive(s, out, since=first, until=last, channel=channel)
            record(s, actor=who.name, action="archive.export", entity="message_archive", entity_id=str(out.name),
                   after={"rows": n, "from": since, "to": until, "channel": channel})
    finally:
        st.dispose()
    console.print(f"{n:,} archived message(s) -> {out} (phone numbers masked)")


@archive_app.command("prune")
def prune_cmd(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count, delete nothing")] = False,
    as_user: AsUser = None,
) -> None:
    """Delete archived messages older than delivery.archive_retention_days (admin; audited)."""
    from panhuo.delivery.archive import prune_archive
    from panhuo.store.users import acting_user, require_role

    days = workspace().settings.delivery.archive_retention_days
    st = store()
    try:
        with st.session() as s:
            who = acting_user(s, as_user)
            require_role(who, "admin", action="pruning the message archive")
            n, cutoff = prune_archive(s, retention_days=days, actor=who.name, dry_run=dry_run)
    finally:
        st.dispose()
    verb = "would delete" if dry_run else "deleted"
    console.print(f"{verb} {n:,} archived message(s) sent before {cutoff:%Y-%m-%d %H:%M} (retention {days} days)")


def register(app: typer.Typer) -> None:
    app.add_typer(archive_app)
