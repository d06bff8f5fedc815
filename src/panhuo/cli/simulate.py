"""``panhuo simulate``: play N weeks of runs, delivery and simulated responses, the bandit learning.

``panhuo simulate --weeks 8 [--customers K] [--seed S] [--out FILE]``: on the current workspace's
data, or (``--customers``, or a workspace without data) on a generated brokerage of K customers.
When no live Thompson playbook exists, the simulation playbook ``sim-weekly-wake`` is put live
through the four-eyes lifecycle (sim-ops writes, sim-compliance approves). Each week prints the runs,
the arm probabilities per tier for the next run, and the cumulative expected regret against the best
arm of each tier next to a fixed equal split's; the JSON summary goes to ``--out`` (default
``<workspace>/simulate/summary.json``). Killed and rerun, it continues with the first week not done.
See :mod:`panhuo.simulate.loop`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from panhuo.cli._common import console, parse_date_option, progress_bar, workspace

if TYPE_CHECKING:
    from panhuo.config import Workspace

__all__ = ["register", "run_simulation"]


def run_simulation(ws: Workspace, weeks: int, *, seed: int = 0, customers: int | None = None,
                   as_of: Any = None, out: Path | None = None) -> dict[str, Any]:
    """Play the weeks not done yet (up to ``weeks`` in all), printing each; returns the summary written."""
    from rich.table import Table

    from panhuo.calendar import calendar_for
    from panhuo.simulate.loop import (
        Simulation,
        SimulateError,
        check_weeks,
        ensure_sim_playbook,
        latest_start,
        prepare_brokerage,
    )
    from panhuo.warehouse import Warehouse

    check_weeks(weeks)
    state = ws.root / "simulate" / "state.json"
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    # fresh: no data, or only the brokerage an earlier, cut-short simulate was preparing (prepared again)
    fresh = wh.current_id is None or wh.manifest().source == str((ws.root / "simulate" / "generated").resolve())
    if customers is not None and not fresh and not state.exists():
        raise SimulateError(f"--customers generates a brokerage, but the workspace {ws.root} already holds data: "
                            "simulate on it without --customers, or give an empty --workspace")
    if not state.exists() and (customers is not None or fresh):
        n = customers or 2_000
        as_of = as_of or latest_start(calendar_for(ws), weeks)  # the weeks must fit the trading calendar
        with progress_bar() as bar:
            task = bar.add_task("prepare", total=4)
            day = prepare_brokerage(ws, n, seed, as_of, progress=lambda s, d, t: bar.update(
                task, completed=d, total=t, description=f"prepare: {s}"))
        console.print(f"generated brokerage: {n:,} customers, seed {seed}, as of {day} (status and tags computed)")
    added = ensure_sim_playbook(ws)
    if added:
        console.print(f"{added}: no live Thompson playbook, so the simulation playbook was added by sim-ops, "
                      "approved by sim-compliance and put live")
    sim = Simulation(ws, seed=seed)
    start = sim.start()
    sim.check_fits(weeks)
    if sim.weeks_done:
        console.print(f"resuming: {sim.weeks_done} of {weeks} week(s) already played (start {start})")
    with progress_bar() as bar:
        total = bar.add_task("weeks", total=weeks, completed=min(sim.weeks_done, weeks))
        step = bar.add_task("", total=4)
        for w in range(sim.weeks_done + 1, weeks + 1):
            def note(s: str, d: int, t: int, _w: int = w) -> None:
                bar.update(step, completed=d, total=t, description=f"week {_w}: {s}")

            rec = sim.week(w, progress=note)
            bar.update(total, completed=w)
            bar.console.print(_week_line(rec, sim.summary()["weeks"][w - 1]["cumulative_regret"]), highlight=False)
            for line in _allocation_lines(rec):
                bar.console.print(line, highlight=False)
    summary = sim.summary()
    _print_allocation(summary, Table)
    path = out or ws.root / "simulate" / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True, default=str), encoding="utf-8")
    tmp.replace(path)
    console.print(f"simulation summary (JSON): [bold]{path}[/]")
    return summary


def _week_line(rec: dict[str, Any], cum: dict[str, dict[str, float]]) -> str:
    runs = ", ".join(f"{r['playbook_id']} {r['treated']} treated/{r['holdout']} holdout" for r in rec["runs"]) or "no run due"
    regret = "; ".join(f"{pid} regret {c['policy']:.2f} vs equal split {c['equal_split']:.2f}" for pid, c in cum.items())
    return f"week {rec['week']} ({rec['run_day']}): {runs}; cumulative {regret or 'regret n/a (no arms)'}"


def _allocation_lines(rec: dict[str, Any]) -> list[str]:
    """The arm probabilities per tier each Thompson playbook will use at the next run day, one line per playbook."""
    out = []
    for pid, tiers in rec["next_allocation"].items():
        parts = [f"{'(pooled)' if t == '*' else t} " + "/".join(f"{a} {p:.2f}" for a, p in probs.items())
                 for t, probs in tiers.items()]
        out.append(f"  {pid} arm probabilities for the next run: " + "; ".join(parts))
    return out


def _print_allocation(summary: dict[str, Any], table_cls: Any) -> None:
    weeks = summary["weeks"]
    if not weeks:
        return
    for pid, tiers in weeks[-1]["next_allocation"].items():
        arms = list(next(iter(tiers.values())))
        t = table_cls(title=f"{pid}: arm probabilities per tier for the next run (Thompson, floored)")
        t.add_column("tier")
        for a in arms:
            t.add_column(a, justify="right")
        for tier, p in tiers.items():
            t.add_row("(pooled)" if tier == "*" else tier, *(f"{p[a]:.3f}" for a in arms))
        console.print(t)


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate(
        weeks: Annotated[int, typer.Option("--weeks", min=1, max=104, help="weeks to simulate in all")] = 8,
        customers: Annotated[int | None, typer.Option("--customers", min=100,
                                                      help="simulate on a generated brokerage of this size")] = None,
        seed: Annotated[int, typer.Option("--seed", min=0, help="seed of the world (and of the generated brokerage)")] = 0,
        as_of: Annotated[str | None, typer.Option("--as-of", help="as-of date of a generated brokerage")] = None,
        out: Annotated[Path | None, typer.Option("--out", help="JSON summary (default <workspace>/simulate/summary.json)")] = None,
    ) -> None:
        """Play N weeks of due runs, delivery and simulated responses (loaded as data); Thompson learns per tier."""
        run_simulation(workspace(), weeks, seed=seed, customers=customers,
                       as_of=parse_date_option(as_of) if as_of else None, out=out)
