"""``panhuo report``: the measured increment of playbooks and past campaigns over their holdout, with 95% CIs.

``panhuo report [--playbook ID | --campaign ID] [--window N] [--format md|json] [--out FILE]``. Without
``--playbook``/``--campaign`` every playbook with a finished run is reported. Output goes to stdout, or
is written atomically to ``--out FILE``.

JSON format (``"format": "panhuo.report/1"``, stable; money in RMB as numbers rounded to the fen)::

    {
      "format": "panhuo.report/1",
      "generated_at": "2026-11-26T09:42:00+08:00",
      "acquisition_cost_rmb": 1000.0,            # settings: acquisition_cost
      "items": [                                  # one per playbook (--playbook) or campaign (--campaign)
        {
          "kind": "playbook" | "campaign",
          "id": "wake-sleeping",
          "success_event": "trade",               # login | trade | deposit
          "window_trading_days": 10,
          "data_end": "2026-03-02",               # the data's last date
          "final": true,                          # false while any window is still open
          "assignments": 200, "measured": 200,    # rows in total, rows whose window is closed
          "missing_customers": 0,                 # assigned customers absent from the data: left out
          "pending": {"assignments": 0, "max_trading_days_remaining": 0},
          "n_global_control": 0,
          "windows": [{"run_id": 1, "as_of": "2026-01-30", "window_start": "2026-02-02",
                       "window_end": "2026-02-13", "closed": true, "days_remaining": 0, "assignments": 200}],
          "groups": [                             # arm "all" first, then one per arm when there are several
            {
              "arm": "all", "tier": "all",
              "n_treated": 140, "n_holdout": 60,
              "conversions": {"treated": 30, "holdout": 9},
              "conversion_rate": {"treated": 0.214286, "holdout": 0.15},
              "incremental_conversions": {"estimate": 9.0, "ci_low": -2.1, "ci_high": 20.1},
              "incremental_conversions_cuped": {...same keys..., or null without a pre-period},
              "incremental_commission_rmb": {"estimate": 812.5, "ci_low": -90.2, "ci_high": 1715.2},
              "incremental_commission_rmb_cuped": {...},
              "significant": {"conversions": false, "commission": false},   # 95% CI excludes 0
              "not_estimable": null,              # or the reason (no holdout, no closed window, ...)
              "cost_rmb": 420.0,                  # benefits reserved in the ledger (null for campaigns)
              "cost_per_incremental_reactivation_rmb": 46.67,   # null unless the estimate is > 0
              "acquisition_cost_rmb": 1000.0
            }
          ]
        }
      ]
    }

When an increment is not estimable its ``{estimate, ci_low, ci_high}`` are all null and
``not_estimable`` says why; no number is made up. Estimators: :mod:`panhuo.measure.estimate`;
outcome definitions: :mod:`panhuo.measure.outcomes`.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from panhuo.cli._common import console, workspace
from panhuo.errors import ConfigError

__all__ = ["register", "make_report"]


def _playbooks_with_runs(ws: Any) -> list[str]:
    from sqlalchemy import select

    from panhuo.runs.models import Run
    from panhuo.store import open_store

    store = open_store(ws)
    try:
        with store.session() as s:
            return list(s.execute(select(Run.playbook_id).where(Run.state == "done").distinct()
                                  .order_by(Run.playbook_id)).scalars())
    finally:
        store.dispose()


def make_report(ws: Any, *, playbook: str | None = None, campaign: str | None = None,
                window: int = 10) -> dict[str, Any]:
    """The report dict (see the module docstring) for one playbook, one campaign, or every playbook run."""
    from panhuo.engines import connect
    from panhuo.measure.outcomes import MeasureError, campaign_outcomes, playbook_outcomes
    from panhuo.measure.report import FORMAT, benefit_costs, build_report

    if playbook and campaign:
        raise ConfigError("panhuo report: give --playbook or --campaign, not both")
    con = connect(ws.settings.engine, ws.tmp_dir)
    cost = ws.settings.acquisition_cost
    items = []
    if campaign:
        items.append(build_report(campaign_outcomes(ws, con, campaign, window_days=window), acquisition_cost=cost))
    else:
        ids = [playbook] if playbook else _playbooks_with_runs(ws)
        if not ids:
            raise MeasureError("no playbook has a finished run yet: nothing to report (see `panhuo run`)")
        for pid in ids:
            out = playbook_outcomes(ws, con, pid)
            run_ids = sorted({r["run_id"] for r in out.runs})
            items.append(build_report(out, acquisition_cost=cost, costs=benefit_costs(ws, run_ids)))
    from zoneinfo import ZoneInfo

    return {
        "format": FORMAT,
        "generated_at": dt.datetime.now(ZoneInfo("Asia/Shanghai")).isoformat(timespec="seconds"),
        "acquisition_cost_rmb": float(cost),
        "items": items,
    }


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        playbook: Annotated[str | None, typer.Option("--playbook", help="report this playbook only")] = None,
        campaign: Annotated[
            str | None, typer.Option("--campaign", help="report a past campaign from contact_history")
        ] = None,
        window: Annotated[
            int, typer.Option("--window", min=1, max=60, help="a campaign's success window in trading days")
        ] = 10,
        fmt: Annotated[str, typer.Option("--format", help="md or json")] = "md",
        out: Annotated[Path | None, typer.Option("--out", help="write to FILE (atomically) instead of stdout")] = None,
    ) -> None:
        """Incremental conversions and commission over the holdout, with 95% CIs, per playbook/campaign and arm."""
        from panhuo._io import atomic_write_text
        from panhuo.measure.report import to_markdown

        if fmt not in ("md", "json"):
            raise ConfigError(f"panhuo report: --format {fmt!r} is not md or json")
        data = make_report(workspace(), playbook=playbook, campaign=campaign, window=window)
        text = json.dumps(data, ensure_ascii=False, indent=2) + "\n" if fmt == "json" else to_markdown(data)
        if out is None:
            typer.echo(text, nl=False)
        else:
            atomic_write_text(out, text)
            console.print(f"wrote the report to {out}")
