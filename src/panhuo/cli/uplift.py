"""``panhuo uplift train|score|evaluate|list`` and ``panhuo feedback``: the learning stage on the command line.

- ``uplift train --campaign ID [--campaign ID ...] [--playbook ID ...] [--learner x|t]``: learn who changes
  because of the contact from past randomized contacts (a warehouse campaign's ``contact_history``
  rows, a playbook's assignments), print the Qini coefficient and AUUC per arm on the later contacts
  (time split), and store the model with its metadata under ``<workspace>/models/uplift/<version>/``;
- ``uplift score [--as-of DATE] [--model VERSION] [--out FILE]``: store the ``uplift`` score snapshot
  of the date (default: the data's last date) so a playbook audience can say
  ``top_percent(uplift, 20)``; ``--out`` also writes ``customer_id`` and one uplift column per arm
  for the scored customers (.parquet or .csv by extension);
- ``uplift evaluate --policy P --campaign ID|--playbook ID [--format text|json]``: off-policy value of
  a targeting policy (``none``, ``all``, ``all:<arm>``, ``uplift>0``, ``top:20``) from the logged
  propensities: IPS, self-normalised IPS and doubly robust, each with a 95% CI, next to contacting
  nobody and to the logged policy;
- ``uplift list``: the stored models;
- ``feedback --as-of DATE``: the outcome tags (responded in 90 days, best channel, best benefit kind,
  contact fatigue) stored as a dated snapshot that segments read like any tag.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from panhuo.cli._common import console, parse_date_option, progress_bar, step_progress, workspace
from panhuo.errors import ConfigError

__all__ = ["register", "uplift_app"]

uplift_app = typer.Typer(
    name="uplift",
    help="Uplift models (who changes because of the contact): train on past randomized contacts, score "
    "customers for playbook audiences, evaluate targeting policies off-policy.",
    no_args_is_help=True,
)



def _connect(ws: Any) -> Any:
    from panhuo.engines import connect

    return connect(ws.settings.engine, ws.tmp_dir)


def _need_sources(campaign: list[str] | None, playbook: list[str] | None) -> tuple[list[str], list[str]]:
    c, p = list(campaign or []), list(playbook or [])
    if not c and not p:
        raise ConfigError("name the contacts: --campaign ID (contact_history) and/or --playbook ID")
    return c, p


def _f(v: float | None, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


@uplift_app.command("train")
def train(
    campaign: Annotated[list[str] | None, typer.Option("--campaign", help="a past campaign in contact_history "
                                                       "(repeatable)")] = None,
    playbook: Annotated[list[str] | None, typer.Option("--playbook", help="a playbook's runs (repeatable)")] = None,
    learner: Annotated[str, typer.Option("--learner", help="x (X-learner, default) or t (T-learner)")] = "x",
    window: Annotated[int, typer.Option("--window", help="a campaign's success window, trading days")] = 10,
    event: Annotated[str, typer.Option("--event", help="a campaign's success event: trade, login, deposit, "
                                       "back_to_effective")] = "trade",
    rounds: Annotated[int, typer.Option("--rounds", help="boosting rounds per LightGBM model")] = 150,
    seed: Annotated[int, typer.Option("--seed", help="random seed (models, and the split when random)")] = 0,
    threads: Annotated[int, typer.Option("--threads", help="LightGBM threads (0: every core; 1 is fastest on a "
                                         "busy shared machine)")] = 0,
) -> None:
    """Train an uplift model on past randomized contacts; print Qini/AUUC on the later contacts; store it."""
    from panhuo.learn.uplift import train_uplift

    campaigns, playbooks = _need_sources(campaign, playbook)
    if rounds < 1:
        raise ConfigError(f"--rounds {rounds}: at least 1")
    if threads < 0:
        raise ConfigError(f"--threads {threads}: 0 (every core) or more")
    ws = workspace()
    con = _connect(ws)
    with progress_bar() as bar:
        r = train_uplift(ws, con, campaigns=campaigns, playbooks=playbooks, learner=learner.lower(),
                         window_days=window, event=event, rounds=rounds, seed=seed, threads=threads or None,
                         progress=step_progress(bar, "uplift train"))
    split = r.split
    if split["kind"] == "time":
        console.print(f"time split: trained on contacts up to {split['train_until']} ({split['train_rows']:,} rows), "
                      f"evaluated on {split['evaluate_from']}..{split['evaluate_until']} ({split['evaluate_rows']:,} rows)")
    else:
        console.print(f"[yellow]no time split possible[/] ({split['reason']}): a random "
                      f"{1 - split['eval_share']:.0%}/{split['eval_share']:.0%} split instead "
                      f"({split['train_rows']:,} / {split['evaluate_rows']:,} rows)")
    t = Table(title=f"{r.learner.upper()}-learner on the evaluation contacts (weighted by 1/propensity)")
    for col in ("arm", "rows", "avg effect", "AUUC", "AUUC random", "Qini", "gain top 20%"):
        t.add_column(col, justify="left" if col == "arm" else "right")
    skipped = []
    for arm, m in r.metrics.items():
        if "not_evaluated" in m:
            t.add_row(arm, "-", "-", "-", "-", "not evaluated", "-")
            skipped.append(f"arm {arm}: not evaluated, {m['not_evaluated']} (fitted on every contact all the same)")
            continue
        t.add_row(arm, f"{m['rows']:,}", _f(m["ate"]), _f(m["auuc"]), _f(m["auuc_random"]), _f(m["qini"]),
                  _f(m["gain_at"]["0.2"]))
    console.print(t)
    for line in skipped:
        console.print(f"[yellow]{line}[/]")
    console.print("Qini > 0: the model ranks the customers who respond because of the contact first; "
                  "effects are incremental successes per customer.")
    console.print(f"model version [bold]{r.version}[/]: {r.rows:,} contacts, arms {', '.join(r.arms)}, "
                  f"refitted on every contact, {r.seconds:.1f}s; stored {r.path}")


@uplift_app.command("score")
def score(
    as_of: Annotated[str | None, typer.Option("--as-of", help="score at this date (default: the data's last date)")] = None,
    model: Annotated[str | None, typer.Option("--model", help="a model version (default: the newest)")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="also write customer_id + one uplift column per arm "
                                             "to FILE.parquet or FILE.csv")] = None,
) -> None:
    """Score customers with an uplift model and store the dated 'uplift' score snapshot."""
    from panhuo.learn.uplift import score_uplift

    if out is not None and out.suffix.lower() not in (".parquet", ".csv"):
        raise ConfigError(f"--out {out}: the file must end in .parquet or .csv")
    ws = workspace()
    con = _connect(ws)
    if as_of is None:
        from panhuo.measure.outcomes import data_end
        from panhuo.warehouse import Warehouse

        day = data_end(Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads), con)
        if day is None:
            raise ConfigError("the load in force has no dated data: give --as-of DATE")
    else:
        day = parse_date_option(as_of)
    with progress_bar() as bar:
        r = score_uplift(ws, con, day, version=model, progress=step_progress(bar, "uplift scores"))
    console.print(f"uplift model {r.version}: scored {r.scored:,} of {r.customers:,} customers at "
                  f"{r.as_of.isoformat()} (statuses the model was trained on); stored {r.path}")
    console.print("score columns: uplift (best arm), uplift_arm, "
                  + ", ".join(f"{c} ({a})" for a, c in r.columns.items())
                  + "; in an audience: top_percent(uplift, 20)")
    if out is not None:
        import pyarrow.compute as pc

        from panhuo._io import atomic_write_table

        table = r.scores.filter(pc.is_valid(r.scores.column("uplift"))).select(
            ["customer_id", *r.columns.values()])
        atomic_write_table(out, table)
        console.print(f"wrote {table.num_rows:,} rows to {out}")


@uplift_app.command("evaluate")
def evaluate(
    policy: Annotated[str, typer.Option("--policy", help="none, all, all:<arm>, uplift>T (e.g. uplift>0) or "
                                        "top:P (e.g. top:20)")],
    campaign: Annotated[list[str] | None, typer.Option("--campaign", help="logged contacts of a past campaign "
                                                       "(repeatable)")] = None,
    playbook: Annotated[list[str] | None, typer.Option("--playbook", help="logged assignments of a playbook "
                                                       "(repeatable)")] = None,
    model: Annotated[str | None, typer.Option("--model", help="a model version (default: the newest)")] = None,
    window: Annotated[int, typer.Option("--window", help="a campaign's success window, trading days")] = 10,
    event: Annotated[str, typer.Option("--event", help="a campaign's success event")] = "trade",
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Off-policy value of a targeting policy from logged propensities (IPS, SNIPS, DR with 95% CIs)."""
    from panhuo.learn.ope import METHODS, evaluate_logged, parse_policy

    campaigns, playbooks = _need_sources(campaign, playbook)
    if fmt not in ("text", "json"):
        raise ConfigError(f"--format {fmt!r}: text or json")
    parse_policy(policy)  # a wrong policy fails before any work
    ws = workspace()
    con = _connect(ws)
    with progress_bar() as bar:
        res = evaluate_logged(ws, con, policy, campaigns=campaigns, playbooks=playbooks, version=model,
                              window_days=window, event=event, progress=step_progress(bar, "logged contacts"))
    if fmt == "json":
        typer.echo(json.dumps(res, ensure_ascii=False, indent=1))
        return
    t = Table(title=f"policy {res['policy']} on {res['rows']:,} logged contacts (model {res['model_version']})")
    for col in ("policy", "contacted", "matched rows", *[m.upper() for m in METHODS]):
        t.add_column(col, justify="left" if col == "policy" else "right")
    for label, r in ((res["policy"], res["candidate"]), ("contact nobody", res["contact_nobody"])):
        cells = []
        for m in METHODS:
            e = r[m]
            cells.append("n/a" if e["estimate"] is None else
                         f"{e['estimate']:.2%} [{e['ci_low']:.2%}, {e['ci_high']:.2%}]")
        t.add_row(label, f"{r['share_contacted']:.0%}", f"{r['matched']:,}", *cells)
    console.print(t)
    console.print(f"success rate as logged: {res['logged_value']:.2%}. Values are success rates per customer "
                  "with 95% confidence intervals.")
    if res["policy_arms"] != res["arms"]:
        console.print(f"the policy chooses among the arms these contacts used: {', '.join(res['policy_arms'])} "
                      f"(of the model's {', '.join(res['arms'])})")
    if res["in_sample"]:
        console.print("[yellow]note:[/] the model was trained on some of these contacts: the estimates are "
                      "optimistic; evaluate on contacts it has not seen.")


@uplift_app.command("list")
def list_models() -> None:
    """The stored uplift models, oldest first."""
    from panhuo.learn.uplift import list_uplift_models

    models = list_uplift_models(workspace())
    if not models:
        console.print("no uplift model trained yet: run `panhuo uplift train --campaign ID`")
        return
    t = Table(title="uplift models")
    for col in ("version", "learner", "arms", "contacts", "window", "split", "Qini (per arm)"):
        t.add_column(col)
    for m in models:
        w = m["training_window"]
        t.add_row(m["version"], m["learner"].upper(), ", ".join(m["arms"]), f"{m['rows']['total']:,}",
                  f"{w['first_contact']}..{w['last_contact']}", m["split"]["kind"],
                  ", ".join(_f(v.get("qini")) for v in m["metrics"].values()))
    console.print(t)


def _feedback(
    as_of: Annotated[str, typer.Option("--as-of", help="the outcome tags at this date")],
) -> None:
    """Write outcomes back as tags: responded_90d, best_channel, best_benefit_kind, contact_fatigue_30d."""
    from panhuo.learn.feedback import compute_feedback

    ws = workspace()
    con = _connect(ws)
    day = parse_date_option(as_of)
    with progress_bar() as bar:
        r = compute_feedback(ws, con, day, progress=step_progress(bar, "outcome tags"))
    t = Table(title=f"outcome tags 结果标签 as of {r.as_of.isoformat()} ({r.customers:,} customers)")
    for col in ("tag", "meaning", "distribution"):
        t.add_column(col)
    for name, (zh, summary) in r.summary.items():
        t.add_row(name, zh, summary)
    console.print(t)
    console.print(f"{r.contacts:,} contacts read; stored {r.path}; segments use them by name "
                  "(e.g. responded_90d and contact_fatigue_30d < 3)")


def register(app: typer.Typer) -> None:
    app.add_typer(uplift_app, name="uplift")
    app.command("feedback")(_feedback)
