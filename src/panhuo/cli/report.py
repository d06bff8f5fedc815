"""``panhuo report``: the measured increment of playbooks and past campaigns over their holdout, with 95% CIs.

``panhuo report [--playbook ID | --campaign ID] [--window N] [--format md|json|html] [--out FILE]``.
Without ``--playbook``/``--campaign`` every playbook with a finished run is reported, followed by the
programme view (every playbook's treated customers against the persistent global control group).
Output goes to stdout, or is written atomically to ``--out FILE``. ``--format html`` is one
self-contained zh-CN page (inline CSS and SVG charts, no script, no external asset;
:mod:`panhuo.report.measure`). The long steps (reading assignments, outcomes, estimates) show a progress
bar on stderr when it is a terminal.

JSON format (``"format": "panhuo.report/1"``, stable: fields are only ever added; money in RMB as numbers
rounded to the fen)::

    {
      "format": "panhuo.report/1",
      "generated_at": "2026-11-26T09:42:00+08:00",
      "acquisition_cost_rmb": 1000.0,            # settings: acquisition_cost
      "message_cost_rmb": {"sms": 0.05, ...},    # settings: measure.message_cost
      "items": [                                  # one per playbook (--playbook) or campaign (--campaign)
        {
          "kind": "playbook" | "campaign",
          "id": "wake-sleeping",
          "success_event": "trade",               # login | trade | deposit | back_to_effective | activated
          "window_trading_days": 10,
          "data_end": "2026-03-02",               # the data's last date
          "final": true,                          # false while any window is still open
          "assignments": 200, "measured": 200,    # rows in total, rows whose window is closed
          "missing_customers": 0,                 # assigned customers absent from the data: left out
          "pending": {"assignments": 0, "max_trading_days_remaining": 0},
          "control": "holdout",                   # what the treated are compared with
          "n_global_control": 0,
          "tier_names": {"dormant_rich": "休眠高净值", ...},
          "notes": ["..."],                       # what is unknown (no status history, no tags on a date, ...)
          "windows": [{"run_id": 1, "as_of": "2026-01-30", "window_start": "2026-02-02",
                       "window_end": "2026-02-13", "closed": true, "days_remaining": 0, "assignments": 200}],
          "groups": [                             # arm "all"/tier "all" first, then per arm, per tier, per arm x tier
            {
              "arm": "all", "tier": "all",
              "n_treated": 140, "n_holdout": 60,
              "conversions": {"treated": 30, "holdout": 9},
              "conversion_rate": {"treated": 0.214286, "holdout": 0.15},
              "incremental_conversions": {"estimate": 9.0, "ci_low": -2.1, "ci_high": 20.1},
              "incremental_conversions_cuped": {...same keys..., or null without a pre-period},
              "incremental_commission_rmb": {"estimate": 812.5, "ci_low": -90.2, "ci_high": 1715.2},
              "incremental_commission_rmb_cuped": {...},
              "estimator": "cuped",               # which figures significance and ROI use (cuped | ipw)
              "significant": {"conversions": false, "commission": false},   # 95% CI excludes 0
              "not_estimable": null,              # or the reason (no holdout, no closed window, ...)
              "reach": {"contacted": 130, "share": 0.928571},   # treated with a message sent (null: unknown)
              "cost": {"benefit_rmb": 400.0, "message_rmb": 20.0, "messages": {"sms": 130, ...},
                       "message_rmb_by_channel": {"sms": 6.5, ...}, "total_rmb": 420.0},
              "cost_rmb": 420.0,                  # benefits issued (ledger) + messages sent
              "roi": {"estimate": 1.93, "ci_low": 0.2, "ci_high": 3.6},   # null unless significant
              "roi_note": null,                   # why there is no ROI (not significant, no cost, ...)
              "cost_per_incremental_reactivation_rmb": 46.67,   # null unless the increment is significant
              "cost_per_incremental_reactivation_range_rmb": [20.9, 120.3],
              "acquisition_cost_rmb": 1000.0
            }
          ]
        }
      ],
      "programme": {...an item of kind "programme", control "global_control", "playbooks": [...]...}
                                                  # or null (with --playbook / --campaign)
    }

When an increment is not estimable its ``{estimate, ci_low, ci_high}`` are all null and
``not_estimable`` says why; no number is made up. Estimators: :mod:`panhuo.measure.estimate`;
outcome definitions: :mod:`panhuo.measure.outcomes`; comparisons and costs: :mod:`panhuo.measure.report`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from panhuo.cli._common import err_console, workspace
from panhuo.errors import ConfigError

__all__ = ["register", "make_report"]

# one implementation, in panhuo.measure.report (the service and the demo call it there too)
from panhuo.measure.report import make_report  # noqa: E402


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
        fmt: Annotated[str, typer.Option("--format", help="md, json or html")] = "md",
        out: Annotated[Path | None, typer.Option("--out", help="write to FILE (atomically) instead of stdout")] = None,
    ) -> None:
        """Incremental conversions and commission over the holdout, with 95% CIs, per playbook/campaign, arm and tier."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from panhuo._io import atomic_write_text
        from panhuo.measure.report import to_markdown

        if fmt not in ("md", "json", "html"):
            raise ConfigError(f"panhuo report: --format {fmt!r} is not md, json or html")
        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       console=err_console, transient=True, disable=not err_console.is_terminal)
        with bar:
            task = bar.add_task("report", total=None)

            def note(step: str, done: int, total: int) -> None:
                bar.update(task, description=step, completed=done, total=total)

            data = make_report(workspace(), playbook=playbook, campaign=campaign, window=window, progress=note)
        if fmt == "json":
            text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
        elif fmt == "html":
            from panhuo.report.measure import render_report

            text = render_report(data)
        else:
            text = to_markdown(data)
        if out is None:
            typer.echo(text, nl=False)
        else:
            atomic_write_text(out, text)
            err_console.print(f"wrote the report to {out}")
