"""``panhuo playbook``: validate, add (new playbook or new version), list, show, diff, and the lifecycle.

``validate`` and ``add`` check a file completely before anything is stored: the schema and the
cross-field rules, the benefit catalogue (unknown id, expired benefit, product risk) and the content
review (unknown template variable, forbidden wording, SMS and push lengths); every issue names the
file, line and field (:func:`panhuo.playbooks.loader.review_playbook`).

Lifecycle: draft -> submit -> in_review -> approve (compliance, not the version's author) -> approved
-> activate -> live -> pause -> paused (-> activate resumes) ... -> retire; reject sends a playbook
in review back to draft with a reason. Changing anything needs ``--as USER`` (or ``PANHUO_USER``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from panhuo.cli._common import console, err_console, parse_date_option, workspace
from panhuo.cli._store import AsUser, store
from panhuo.config import Workspace
from panhuo.playbooks.errors import PlaybookError
from panhuo.playbooks.loader import LoadedPlaybook, checked_in_workspace, load_playbook

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["playbook_app", "register"]

playbook_app = typer.Typer(
    name="playbook",
    help="Playbooks 策略 (five elements): validate, add versions, review with four eyes, go live.",
    no_args_is_help=True,
)

_STATE_STYLE = {"draft": "white", "in_review": "yellow", "approved": "cyan", "live": "bold green",
                "paused": "magenta", "retired": "dim"}

PlaybookId = Annotated[str, typer.Argument(help="the playbook id (its 'id:' field)")]


def _repo() -> ModuleType:
    from panhuo.playbooks import repository

    return repository


def _state(state: str) -> Text:
    return Text(state, style=_STATE_STYLE.get(state, ""))


AsOfCheck = Annotated[str | None, typer.Option(
    "--as-of", help="day a benefit must still be valid on (default: today, Asia/Shanghai)")]


def _existing_workspace() -> Workspace | None:
    """The workspace of this invocation when it exists (validate creates nothing), else None."""
    from panhuo.cli._common import STATE
    from panhuo.errors import ConfigError

    if STATE._ws is not None:
        return STATE._ws
    try:
        return Workspace.open(STATE.workspace_path, create=False)
    except ConfigError:
        return None


def _checked(file: Path, ws: Workspace | None, as_of: str | None) -> LoadedPlaybook:
    """Load ``file`` and run every check; PlaybookError lists every issue (file, line, field)."""
    return checked_in_workspace(load_playbook(file), ws, parse_date_option(as_of) if as_of else None)


@playbook_app.command("validate")
def validate_cmd(files: Annotated[list[Path], typer.Argument(help="playbook YAML files")],
                 as_of: AsOfCheck = None) -> None:
    """Validate files without storing them: schema, rules, benefits and content; every issue names file, line
    and field. Exit code 2 if any fails."""
    failed = 0
    ws = _existing_workspace()
    for f in files:
        try:
            loaded = _checked(f, ws, as_of)
        except PlaybookError as exc:
            failed += 1
            for issue in exc.issues:
                err_console.print(Text(str(issue), style="red"))
            continue
        console.print(f"[green]ok[/] {escape(str(f))}: {escape(loaded.spec.id)} {escape(loaded.spec.name)}")
    if failed:
        err_console.print(f"[bold red]{failed} of {len(files)} playbook file(s) invalid[/]")
        raise typer.Exit(2)


@playbook_app.command("add")
def add_cmd(file: Annotated[Path, typer.Argument(help="a playbook YAML file")], as_user: AsUser = None,
            as_of: AsOfCheck = None) -> None:
    """Store a playbook: a new one (version 1, draft) or the next version of the one with the same id.
    The file is checked first as by ``validate``; on any issue nothing is stored."""
    try:
        loaded = _checked(file, workspace(), as_of)
    except PlaybookError as exc:
        for issue in exc.issues:
            err_console.print(Text(str(issue), style="red"))
        err_console.print(f"[bold red]{len(exc.issues)} issue(s) in {escape(str(file))}: nothing added[/]")
        raise typer.Exit(2) from None
    with store().session() as s:
        v = _repo().add_version(s, loaded, actor=as_user)
        number, pid = v.version, v.playbook_id
    what = "new playbook" if number == 1 else f"version {number} of"
    console.print(f"added {what} [bold]{escape(pid)}[/] v{number} (draft) by {escape(as_user or '')}")


@playbook_app.command("list")
def list_cmd(state: Annotated[str | None, typer.Option("--state", help="only playbooks in this state")] = None) -> None:
    """Every playbook with its state, versions and the version live."""
    with store().session() as s:
        rows = _repo().list_playbooks(s, state=state)
        t = Table(title=f"Playbooks 策略 ({len(rows)})")
        for col in ("id", "name", "state", "version", "in review", "live", "updated (Asia/Shanghai)"):
            t.add_column(col)
        for pb in rows:
            t.add_row(Text(pb.id), Text(pb.name), _state(pb.state), str(pb.current_version),
                      str(pb.review_version or ""), str(pb.live_version or ""), pb.updated_at.strftime("%Y-%m-%d %H:%M"))
    console.print(t)


@playbook_app.command("show")
def show_cmd(
    playbook_id: PlaybookId,
    version: Annotated[int | None, typer.Option("--version", "-v", min=1, help="a version (default: latest)")] = None,
    diff: Annotated[
        tuple[int, int] | None, typer.Option("--diff", help="diff two versions: --diff A B")
    ] = None,
) -> None:
    """Show a playbook: state, versions with authors and hashes, and the YAML (or a diff of two versions)."""
    with store().session() as s:
        pb = _repo().get_playbook(s, playbook_id)
        if diff is not None:
            text = _repo().diff_versions(s, playbook_id, diff[0], diff[1])
            console.print(Syntax(text or "(no difference)\n", "diff", theme="ansi_dark"))
            return
        v = _repo().get_version(s, playbook_id, version)
        console.print(Text.assemble((pb.id, "bold"), "  ", pb.name, "  ", _state(pb.state)))
        console.print(f"current v{pb.current_version}  in review v{pb.review_version or '-'}  "
                      f"live v{pb.live_version or '-'}  created by {escape(pb.created_by)}")
        t = Table(title="Versions 版本")
        for col in ("version", "author", "created (Asia/Shanghai)", "sha256", "source"):
            t.add_column(col)
        for ver in pb.versions:
            t.add_row(str(ver.version), Text(ver.author), ver.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                      ver.content_hash[:16], Text(ver.source))
        console.print(t)
        console.print(f"[bold]v{v.version}[/] YAML:")
        console.print(Syntax(v.yaml_text, "yaml", theme="ansi_dark"))


def _done(action: str, playbook_id: str, state: str, who: str | None) -> None:
    console.print(Text.assemble(f"{action} ", (playbook_id, "bold"), ": now ", _state(state), f" (by {who or ''})"))


@playbook_app.command("submit")
def submit_cmd(playbook_id: PlaybookId, as_user: AsUser = None) -> None:
    """Send the latest version for compliance review (draft -> in_review)."""
    with store().session() as s:
        state = _repo().submit(s, playbook_id, actor=as_user).state
    _done("submitted", playbook_id, state, as_user)


@playbook_app.command("approve")
def approve_cmd(
    playbook_id: PlaybookId,
    note: Annotated[str | None, typer.Option("--note", help="a note kept in the audit log")] = None,
    as_user: AsUser = None,
) -> None:
    """Approve the version in review (compliance role; never the version's own author)."""
    with store().session() as s:
        ws = workspace()
        state = _repo().approve(s, playbook_id, actor=as_user, note=note, content_settings=ws.settings.content,
                                templates_dir=ws.root / "templates").state
    _done("approved", playbook_id, state, as_user)


@playbook_app.command("reject")
def reject_cmd(
    playbook_id: PlaybookId,
    reason: Annotated[str, typer.Option("--reason", help="why (kept in the audit log)")],
    as_user: AsUser = None,
) -> None:
    """Reject the version in review back to draft, with a reason (compliance role)."""
    with store().session() as s:
        state = _repo().reject(s, playbook_id, actor=as_user, reason=reason).state
    _done("rejected", playbook_id, state, as_user)


@playbook_app.command("activate")
def activate_cmd(playbook_id: PlaybookId, as_user: AsUser = None) -> None:
    """Put the approved version live, or resume a paused playbook (approved|paused -> live)."""
    with store().session() as s:
        state = _repo().activate(s, playbook_id, actor=as_user).state
    _done("activated", playbook_id, state, as_user)


@playbook_app.command("pause")
def pause_cmd(
    playbook_id: PlaybookId,
    reason: Annotated[str | None, typer.Option("--reason", help="why (kept in the audit log)")] = None,
    as_user: AsUser = None,
) -> None:
    """Stop a live playbook from running (live -> paused)."""
    with store().session() as s:
        state = _repo().pause(s, playbook_id, actor=as_user, reason=reason).state
    _done("paused", playbook_id, state, as_user)


@playbook_app.command("retire")
def retire_cmd(
    playbook_id: PlaybookId,
    reason: Annotated[str | None, typer.Option("--reason", help="why (kept in the audit log)")] = None,
    as_user: AsUser = None,
) -> None:
    """Retire a playbook for good (it keeps its versions and history)."""
    with store().session() as s:
        state = _repo().retire(s, playbook_id, actor=as_user, reason=reason).state
    _done("retired", playbook_id, state, as_user)


@playbook_app.command("preview")
def preview_cmd(
    target: Annotated[str, typer.Argument(help="a playbook id (its current version) or a playbook YAML file")],
    customer: Annotated[str | None, typer.Option("--customer", help="customer id (default: a random one)")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="tag snapshot on or before this date")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="make the random customer repeatable")] = None,
) -> None:
    """Render the playbook's message per channel for one customer, masked, with SMS length and segments."""
    from panhuo.content.preview import build_preview
    from panhuo.playbooks.loader import LoadedPlaybook, validate_playbook

    if Path(target).is_file():
        loaded = load_playbook(target)
    else:
        with store().session() as s:
            v = _repo().get_version(s, target)
            label, text = f"{v.playbook_id} v{v.version}", v.yaml_text
        loaded = LoadedPlaybook(spec=validate_playbook(text, label), text=text, source=label)
    day = parse_date_option(as_of) if as_of else None
    p = build_preview(workspace(), loaded, customer_id=customer, as_of=day, seed=seed)
    console.print(Text.assemble(("preview ", "bold"), (p.playbook_id, "bold"), f"  ({p.source})  customer ",
                                (p.customer_id, "bold"), f"  tags as of {p.as_of}  benefit {p.benefit_name}"))
    for m in p.messages:
        t = Table(title=f"{m.channel}", show_header=False, title_justify="left")
        t.add_column("part", style="dim")
        t.add_column("text", overflow="fold")
        for part, text in m.parts.items():
            t.add_row(part, Text(text))
        if m.sms is not None:
            style = "green" if m.sms.ok else "bold red"
            t.add_row("length", Text(f"{m.sms.chars} characters, {m.sms.segments} segment(s) "
                                     f"(max {m.sms.max_segments})", style=style))
        console.print(t)
        for issue in m.problems:
            err_console.print(Text(f"  ! {issue}", style="red"))
    for ch in p.channels_without_template:
        console.print(Text(f"{ch}: no template in content: (nothing to preview)", style="yellow"))
    if any(m.problems for m in p.messages):
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    app.add_typer(playbook_app)
