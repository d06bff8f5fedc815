"""``panhuo scores train|apply``: fit the score models and store per-customer score snapshots.

Two models, chosen with ``--model bgnbd|propensity|all`` (default ``all``):

- ``bgnbd``: ``train --as-of DATE`` fits BG/NBD on trading days up to DATE and stores the parameters
  as a model version under ``<workspace>/models/bgnbd/``;
- ``propensity``: ``train --as-of DATE`` trains the reactivation propensity model on the strict time
  split of :mod:`panhuo.scores.propensity_data` (computing the status and tags it needs at the
  anchors), prints the out-of-time AUC, Brier score and the top feature importances, and stores the
  version under ``<workspace>/models/propensity/<version>/``.

``apply --as-of DATE`` scores with the newest model of each chosen family trained on data up to
DATE and stores the snapshots under ``<workspace>/warehouse/scores/<family>/``; ``--model`` also
takes a version id (``bgnbd-2026-11-24-1a2b3c``, ``propensity-...``), which applies that version
of its family. ``--out FILE`` also exports the scores written (.parquet or .csv; with both families,
joined on ``customer_id``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from panhuo.cli._common import console, parse_date_option, progress_bar, step_progress, workspace
from panhuo.errors import ConfigError

if TYPE_CHECKING:
    from panhuo.scores.bgnbd import ScoreResult
    from panhuo.scores.propensity import PropensityScoreResult, PropensityTrainResult

__all__ = ["FAMILIES", "register", "scores_app"]

FAMILIES = ("bgnbd", "propensity")

scores_app = typer.Typer(
    name="scores",
    help="Customer scores: BG/NBD P(alive) and expected trading days, reactivation propensity "
    "(train the models, then apply them).",
    no_args_is_help=True,
)



def _params_table(title: str, params: dict[str, float]) -> Table:
    t = Table(title=title)
    for name in ("r", "alpha", "a", "b"):
        t.add_column(name, justify="right")
    t.add_row(*(f"{params[n]:.4g}" for n in ("r", "alpha", "a", "b")))
    return t


def _families(model: str) -> tuple[list[str], str | None]:
    """(families to run, version id or None) from ``--model``."""
    if model in ("all", "latest"):
        return list(FAMILIES), None
    if model in FAMILIES:
        return [model], None
    for family in FAMILIES:
        if model.startswith(f"{family}-"):
            return [family], model
    raise ConfigError(f"--model {model!r}: use bgnbd, propensity, all or a model version id (bgnbd-..., propensity-...)")


_MODEL_HELP = "bgnbd, propensity or all (default); apply also takes a version id (bgnbd-2026-11-24-1a2b3c)"


def _print_propensity(result: PropensityTrainResult, top: int = 10) -> None:
    h, tr = result.holdout, result.train
    a = result.anchors
    console.print(
        f"propensity model version [bold]{result.version}[/]: trained at anchor {a['model_anchor']} "
        f"(outcomes to {a['model_label_end']}), {result.seconds:.1f}s"
    )
    auc = "n/a" if h["auc"] is None else f"{h['auc']:.3f}"
    console.print(
        f"holdout (backtest model from {a['backtest_anchor']}, scored at {a['holdout_anchor']}, outcomes to "
        f"{a['holdout_label_end']}): AUC {auc}, Brier {h['brier']:.4f} (base rate {h['base_rate']:.3f}: "
        f"{h['brier_base_rate']:.4f}), {h['rows']:,} sleeping customers; in-sample AUC "
        f"{'n/a' if tr['auc'] is None else format(tr['auc'], '.3f')}"
    )
    t = Table(title=f"top {top} feature importances (share of gain)")
    t.add_column("feature")
    t.add_column("importance", justify="right")
    for name, share in list(result.feature_importance.items())[:top]:
        t.add_row(name, f"{share:.1%}")
    console.print(t)


@scores_app.command("train")
def train(
    as_of: Annotated[str, typer.Option("--as-of", help="train on data up to this date (2026-11-24)")],
    model: Annotated[str, typer.Option("--model", help=_MODEL_HELP)] = "all",
) -> None:
    """Fit the score models on data up to --as-of and store each as a new model version."""
    from panhuo.engines import connect

    families, version = _families(model)
    if version is not None:
        raise ConfigError(f"--model {model!r}: train takes bgnbd, propensity or all, not a version id")
    day = parse_date_option(as_of)
    ws = workspace()
    con = connect(ws.settings.engine, ws.tmp_dir)
    if "bgnbd" in families:
        from panhuo.scores.bgnbd import train_bgnbd

        with progress_bar() as bar:
            result = train_bgnbd(ws, con, day, progress=step_progress(bar, "BG/NBD train"))
        console.print(_params_table(f"BG/NBD on trading days up to {day.isoformat()}", result.params))
        console.print(
            f"model version [bold]{result.version}[/]: {result.customers:,} customers with a trade "
            f"({result.distinct_rows:,} distinct summaries), log-likelihood {result.log_likelihood:,.1f}, "
            f"{result.seconds:.1f}s"
        )
    if "propensity" in families:
        from panhuo.scores.propensity import train_propensity

        with progress_bar() as bar:
            presult = train_propensity(ws, con, day, progress=step_progress(bar, "propensity train"))
        _print_propensity(presult)


def _print_bgnbd_scores(result: ScoreResult) -> None:
    console.print(_params_table(f"BG/NBD model {result.version}", result.params))
    mean = "n/a" if result.mean_p_alive is None else f"{result.mean_p_alive:.3f}"
    console.print(
        f"scored {result.scored:,} of {result.customers:,} customers (the others never traded); "
        f"mean P(alive) {mean}; stored {result.path}"
    )


def _print_propensity_scores(result: PropensityScoreResult) -> None:
    mean = "n/a" if result.mean_propensity is None else f"{result.mean_propensity:.3f}"
    console.print(
        f"propensity model {result.version}: scored {result.scored:,} of {result.customers:,} customers "
        f"(those sleeping at {result.as_of.isoformat()}); mean reactivation propensity {mean}; stored {result.path}"
    )


def _export(paths: list[Path], out: Path) -> None:
    import pyarrow.parquet as pq

    from panhuo._io import atomic_write_table

    table = pq.read_table(paths[0])
    for p in paths[1:]:
        table = table.join(pq.read_table(p), "customer_id", join_type="full outer")
    table = table.sort_by("customer_id")
    atomic_write_table(out, table)
    console.print(f"wrote {table.num_rows:,} rows to {out}")


@scores_app.command("apply")
def apply(
    as_of: Annotated[str, typer.Option("--as-of", help="score the customers at this date")],
    out: Annotated[Path | None, typer.Option("--out", help="also export the scores to FILE.parquet or FILE.csv")] = None,
    model: Annotated[str, typer.Option("--model", help=_MODEL_HELP)] = "all",
) -> None:
    """Score customers with the newest trained models (or --model VERSION) and store the snapshots."""
    from panhuo.engines import connect

    families, version = _families(model)
    day = parse_date_option(as_of)
    if out is not None and out.suffix.lower() not in (".parquet", ".csv"):
        raise ConfigError(f"--out {out}: the file must end in .parquet or .csv")
    ws = workspace()
    con = connect(ws.settings.engine, ws.tmp_dir)
    paths: list[Path] = []
    if "bgnbd" in families:
        from panhuo.scores.bgnbd import score_bgnbd

        with progress_bar() as bar:
            result = score_bgnbd(ws, con, day, progress=step_progress(bar, "BG/NBD scores"), model=version or "latest")
        _print_bgnbd_scores(result)
        paths.append(result.path)
    if "propensity" in families:
        from panhuo.scores.propensity import score_propensity

        with progress_bar() as bar:
            presult = score_propensity(ws, con, day, progress=step_progress(bar, "propensity scores"),
                                       model=version or "latest")
        _print_propensity_scores(presult)
        paths.append(presult.path)
    if out is not None:
        _export(paths, out)


def register(app: typer.Typer) -> None:
    app.add_typer(scores_app, name="scores")
