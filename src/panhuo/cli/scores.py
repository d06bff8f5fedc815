"""``panhuo scores train|apply``: fit the score models and store per-customer score snapshots.

``train --as-of DATE`` fits BG/NBD on trading days up to DATE and stores the parameters as a model
version under ``<workspace>/models/bgnbd/``. ``apply --as-of DATE`` scores every customer with the
newest model trained on data up to DATE (or ``--model VERSION``) and stores the snapshot under
``<workspace>/warehouse/scores/bgnbd/``; ``--out FILE`` also exports it (.parquet or .csv).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from panhuo.cli._common import console, parse_date_option, progress_bar, workspace
from panhuo.errors import ConfigError

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = ["register", "scores_app"]

scores_app = typer.Typer(
    name="scores",
    help="Customer scores: BG/NBD P(alive) and expected trading days (train the model, then apply it).",
    no_args_is_help=True,
)


def _note(bar: Progress, label: str):  # -> Callable[[str, int, int], None]
    task = bar.add_task(label, total=None)

    def note(step: str, done: int, total: int) -> None:
        bar.update(task, completed=done, total=total, description=f"{label}: {step}")

    return note


def _params_table(title: str, params: dict[str, float]) -> Table:
    t = Table(title=title)
    for name in ("r", "alpha", "a", "b"):
        t.add_column(name, justify="right")
    t.add_row(*(f"{params[n]:.4g}" for n in ("r", "alpha", "a", "b")))
    return t


@scores_app.command("train")
def train(
    as_of: Annotated[str, typer.Option("--as-of", help="train on trades up to this date (2026-11-24)")],
) -> None:
    """Fit BG/NBD on trading days up to --as-of and store it as a new model version."""
    from panhuo.engines import connect
    from panhuo.scores.bgnbd import train_bgnbd

    day = parse_date_option(as_of)
    ws = workspace()
    con = connect(ws.settings.engine, ws.tmp_dir)
    with progress_bar() as bar:
        result = train_bgnbd(ws, con, day, progress=_note(bar, "BG/NBD train"))
    console.print(_params_table(f"BG/NBD on trading days up to {day.isoformat()}", result.params))
    console.print(
        f"model version [bold]{result.version}[/]: {result.customers:,} customers with a trade "
        f"({result.distinct_rows:,} distinct summaries), log-likelihood {result.log_likelihood:,.1f}, "
        f"{result.seconds:.1f}s"
    )


@scores_app.command("apply")
def apply(
    as_of: Annotated[str, typer.Option("--as-of", help="score every customer at this date")],
    out: Annotated[Path | None, typer.Option("--out", help="also export the scores to FILE.parquet or FILE.csv")] = None,
    model: Annotated[
        str, typer.Option("--model", help="model version to apply (default: newest trained up to --as-of)")
    ] = "latest",
) -> None:
    """Score every customer (P(alive), expected trading days in the next 90) and store the snapshot."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from panhuo._io import atomic_path
    from panhuo.engines import connect
    from panhuo.scores.bgnbd import score_bgnbd

    day = parse_date_option(as_of)
    if out is not None and out.suffix.lower() not in (".parquet", ".csv"):
        raise ConfigError(f"--out {out}: the file must end in .parquet or .csv")
    ws = workspace()
    con = connect(ws.settings.engine, ws.tmp_dir)
    with progress_bar() as bar:
        result = score_bgnbd(ws, con, day, progress=_note(bar, "BG/NBD scores"), model=model)
    console.print(_params_table(f"BG/NBD model {result.version}", result.params))
    mean = "n/a" if result.mean_p_alive is None else f"{result.mean_p_alive:.3f}"
    console.print(
        f"scored {result.scored:,} of {result.customers:,} customers (the others never traded); "
        f"mean P(alive) {mean}; stored {result.path}"
    )
    if out is not None:
        table = pq.read_table(result.path)
        with atomic_path(out) as tmp:
            if out.suffix.lower() == ".csv":
                pacsv.write_csv(table, tmp)
            else:
                pq.write_table(table, tmp)
        console.print(f"wrote {table.num_rows:,} rows to {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(scores_app, name="scores")
