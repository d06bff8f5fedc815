"""Thompson sampling per segment: the arm probabilities of a ``allocation: thompson`` playbook.

Posteriors are Beta-Bernoulli per (playbook, tier, arm) on the playbook's success event
(``method.success``), updated from the measured outcomes of treated assignments whose window is
**closed** by the run's as-of date (:func:`panhuo.measure.outcomes.playbook_outcomes`): a success adds one to ``alpha``, a
failure one to ``beta``, starting from Beta(1, 1). The segment is the customer's tier (分层, first
matching tier of the workspace's ``tiers.yaml`` or panhuo's scheme) on the latest tag snapshot on or
before the run's as-of date, so what was learnt about, say, active high-value sleepers is used for
them and not for the dormant.

The probability of an arm in a tier is P(arm is best) under the tier's posteriors, by Monte Carlo
with a seed fixed by (settings seed, playbook, tier, as-of) through sha256, mixed with an
exploration floor: ``p = floor + (1 - K * floor) * P(best)``, so every arm keeps at least ``floor``
(default 0.05). A customer whose tier is unknown (no tags) gets the pooled posteriors of all tiers.
The run engine passes the per-customer matrix to :func:`panhuo.runs.assignment.assign`, whose
stable-hash draw picks the arm and logs ``(1 - holdout) * p`` as the propensity of every
assignment, so off-policy evaluation stays valid. Same data, settings and seed: same numbers.

Settings (optional file ``<workspace>/bandit.yaml``)::

    floor: 0.05        # minimum probability of every arm, 0 <= floor <= 1 / number of arms
    draws: 20000       # Monte Carlo draws per tier
    seed: 0            # Monte Carlo seed (mixed with playbook, tier and as-of)
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from panhuo.errors import ConfigError

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace
    from panhuo.playbooks.schema import PlaybookSpec

__all__ = [
    "POOLED",
    "SETTINGS_FILE",
    "Allocation",
    "BanditSettings",
    "Posteriors",
    "allocation",
    "cached_allocation",
    "customer_matrix",
    "customer_tiers",
    "floored",
    "load_bandit_settings",
    "observed_posteriors",
    "tier_probabilities",
]

SETTINGS_FILE = "bandit.yaml"
#: the key of the pooled posteriors (every tier together), used for customers without a tier
POOLED = "*"


@dataclass(frozen=True)
class BanditSettings:
    """Exploration floor, Monte Carlo draws and seed of the Thompson allocation."""

    floor: float = 0.05
    draws: int = 20_000
    seed: int = 0

    def check(self, arms: int, where: str = "bandit settings") -> None:
        if not 0 <= self.floor <= 1:
            raise ConfigError(f"{where}: floor must be between 0 and 1, got {self.floor}")
        if arms and self.floor * arms > 1 + 1e-12:
            raise ConfigError(f"{where}: floor {self.floor} x {arms} arms exceeds 1: lower the floor")
        if not 100 <= self.draws <= 10_000_000:
            raise ConfigError(f"{where}: draws must be between 100 and 10,000,000, got {self.draws}")


def load_bandit_settings(ws: Workspace) -> BanditSettings:
    """``<workspace>/bandit.yaml`` when present, else the defaults; errors name the file and the field."""
    import yaml

    path = ws.root / SETTINGS_FILE
    if not path.exists():
        return BanditSettings()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping (floor, draws, seed), got {type(raw).__name__}")
    unknown = sorted(set(raw) - {"floor", "draws", "seed"})
    if unknown:
        raise ConfigError(f"{path}: unknown field(s) {', '.join(unknown)} (known: floor, draws, seed)")
    kinds = {"floor": (int, float), "draws": (int,), "seed": (int,)}
    for k, v in raw.items():
        if isinstance(v, bool) or not isinstance(v, kinds[k]):
            raise ConfigError(f"{path}: field {k}: expected a number, got {v!r}")
    out = BanditSettings(floor=float(raw.get("floor", 0.05)), draws=int(raw.get("draws", 20_000)),
                         seed=int(raw.get("seed", 0)))
    out.check(0, str(path))
    return out


def _mc_seed(seed: int, *parts: str) -> int:
    """A Monte Carlo seed from the settings seed and the parts (stable across runs and machines)."""
    text = "\x1f".join([str(seed), *parts])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def floored(p: np.ndarray, floor: float) -> np.ndarray:
    """``floor + (1 - K * floor) * p`` along the last axis (K arms): every arm keeps at least ``floor``."""
    k = p.shape[-1]
    return floor + (1.0 - k * floor) * p


def tier_probabilities(successes: Sequence[float], failures: Sequence[float], settings: BanditSettings,
                       *parts: str) -> np.ndarray:
    """Floored P(arm is best) under Beta(1 + s, 1 + f) posteriors, seeded by ``parts``."""
    from panhuo.runs.assignment import thompson_probabilities

    s, f = np.asarray(successes, float), np.asarray(failures, float)
    if (s < 0).any() or (f < 0).any():
        raise ValueError("successes and failures must be non-negative")
    if np.allclose(s, s[0]) and np.allclose(f, f[0]):  # symmetric posteriors: exactly equal, no noise
        best = np.full(len(s), 1.0 / len(s))
    else:
        best = thompson_probabilities(s, f, draws=settings.draws, seed=_mc_seed(settings.seed, *parts))
    return floored(best, settings.floor)


@dataclass
class Posteriors:
    """Successes and failures per tier and arm (arms in the playbook's order); ``POOLED`` sums the tiers."""

    arms: list[str]
    counts: dict[str, np.ndarray] = field(default_factory=dict)  # tier -> (K, 2) successes, failures

    def add(self, tier: str | None, arm: str, success: bool, n: int = 1) -> None:
        if arm not in self.arms:
            return  # an arm the playbook no longer has
        j = self.arms.index(arm)
        for key in ({tier, POOLED} if tier else {POOLED}):
            c = self.counts.setdefault(key, np.zeros((len(self.arms), 2)))
            c[j, 0 if success else 1] += n

    def add_rows(self, rows: Iterable[tuple[str | None, str, bool]]) -> None:
        for tier, arm, success in rows:
            self.add(tier, arm, success)

    def of(self, tier: str | None) -> np.ndarray:
        got = self.counts.get(tier or POOLED)
        if got is None:
            got = self.counts.get(POOLED, np.zeros((len(self.arms), 2)))
        return got

    def to_json(self) -> dict[str, Any]:
        return {t: {a: {"alpha": 1 + int(c[j, 0]), "beta": 1 + int(c[j, 1])} for j, a in enumerate(self.arms)}
                for t, c in sorted(self.counts.items())}


@dataclass
class Allocation:
    """Arm probabilities per tier (``POOLED`` for customers without a known tier) of one playbook run."""

    playbook_id: str
    as_of: dt.date
    arms: list[str]
    by_tier: dict[str, np.ndarray]
    posteriors: Posteriors
    settings: BanditSettings

    def of(self, tier: str | None) -> np.ndarray:
        got = self.by_tier.get(tier) if tier else None
        return got if got is not None else self.by_tier[POOLED]

    def matrix(self, tiers: Sequence[str | None]) -> np.ndarray:
        """``(n, K)`` probabilities, one row per customer."""
        out = np.empty((len(tiers), len(self.arms)))
        cache: dict[str | None, np.ndarray] = {}
        for i, t in enumerate(tiers):
            row = cache.get(t)
            if row is None:
                row = cache[t] = self.of(t)
            out[i] = row
        return out

    def to_json(self) -> dict[str, Any]:
        return {"playbook_id": self.playbook_id, "as_of": self.as_of.isoformat(), "floor": self.settings.floor,
                "probabilities": {t: dict(zip(self.arms, map(float, p), strict=True))
                                  for t, p in sorted(self.by_tier.items())},
                "posteriors": self.posteriors.to_json()}


def _tier_scheme(ws: Workspace, aud: Any) -> Any:
    from panhuo.segments.tiers import load_tiers

    own = ws.root / "tiers.yaml"
    return load_tiers(own, aud.symbols, "tiers.yaml") if own.exists() else load_tiers(symbols=aud.symbols)


_TIER_CACHE: dict[tuple[str, dt.date, str | None], pa.Table] = {}


def tier_table(ws: Workspace, con: BaseBackend, as_of: dt.date) -> pa.Table | None:
    """``(customer_id, tier)`` of every customer on the latest tag snapshot on or before ``as_of``; None
    without tags. Cached per (workspace, as-of, snapshot, load) for the slices of one run."""
    from panhuo.errors import WarehouseError
    from panhuo.segments.audience import audience
    from panhuo.segments.tiers import tier_expr
    from panhuo.warehouse import Warehouse

    try:
        aud = audience(ws, con, as_of)
    except WarehouseError:
        return None
    load = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads).current_id
    key = (str(ws.root), as_of, f"{aud.as_of}|{load}")
    got = _TIER_CACHE.get(key)
    if got is None:
        t = aud.table
        got = con.to_pyarrow(t.select(customer_id=t.customer_id,
                                      tier=tier_expr(_tier_scheme(ws, aud), t, aud.symbols, aud.as_of)))
        if len(_TIER_CACHE) >= 8:
            _TIER_CACHE.pop(next(iter(_TIER_CACHE)))
        _TIER_CACHE[key] = got
    return got


def customer_tiers(ws: Workspace, con: BaseBackend, ids: Sequence[str], as_of: dt.date) -> list[str | None]:
    """The tier of each id on ``as_of`` (None when the customer has no tags then)."""
    table = tier_table(ws, con, as_of)
    if table is None or not len(ids):
        return [None] * len(ids)
    pos = pc.index_in(pa.array(list(ids), pa.string()), value_set=table.column("customer_id").combine_chunks())
    return pc.take(table.column("tier").combine_chunks(), pos).to_pylist()


def observed_posteriors(ws: Workspace, con: BaseBackend, spec: PlaybookSpec, before: dt.date,
                        outcomes: Any = None) -> tuple[Posteriors, int]:
    """Posteriors from the treated assignments whose window is closed and ended on or before ``before``.

    Returns the posteriors and the number of outcomes counted. A playbook without finished runs has
    the prior only. ``outcomes`` (a :class:`panhuo.measure.outcomes.Outcomes`) spares measuring again.
    """
    from panhuo.measure.outcomes import MeasureError, playbook_outcomes

    arms = [a.id for a in spec.method.arms or []]
    post = Posteriors(arms)
    if outcomes is None:
        try:
            outcomes = playbook_outcomes(ws, con, spec.id)
        except MeasureError:
            return post, 0
    t = outcomes.rows
    # closed, and closed by ``before`` (a window ending later was not known then: the same in a backtest)
    mask = pc.and_(pc.and_(t["closed"], pc.equal(t["grp"], "treated")),
                   pc.less_equal(t["window_end"], pa.scalar(before)))
    mask = pc.fill_null(mask, False)
    mask = pc.and_(mask, pc.is_valid(t["arm"]))
    if "in_data" in t.column_names:
        mask = pc.and_(mask, t["in_data"])
    got = t.filter(mask).select(["customer_id", "as_of", "arm", "success"]).to_pylist()
    by_day: dict[dt.date, list[dict[str, Any]]] = {}
    for r in got:
        by_day.setdefault(r["as_of"], []).append(r)
    for day, rows in sorted(by_day.items()):
        tiers = customer_tiers(ws, con, [r["customer_id"] for r in rows], day)
        post.add_rows((tier, r["arm"], bool(r["success"])) for tier, r in zip(tiers, rows, strict=True))
    return post, len(got)


def allocation(ws: Workspace, spec: PlaybookSpec, as_of: dt.date, *, con: BaseBackend | None = None,
               settings: BanditSettings | None = None, posteriors: Posteriors | None = None) -> Allocation:
    """The arm probabilities of every tier for a run of ``spec`` at ``as_of`` (and pooled)."""
    from panhuo.engines import connect

    arms = [a.id for a in spec.method.arms or []]
    if not arms:
        raise ConfigError(f"playbook {spec.id!r} has no arms: Thompson allocation needs at least two")
    settings = settings or load_bandit_settings(ws)
    settings.check(len(arms), f"playbook {spec.id}")
    if posteriors is None:
        con = con or connect(ws.settings.engine, ws.tmp_dir)
        posteriors, _ = observed_posteriors(ws, con, spec, as_of)
    by_tier: dict[str, np.ndarray] = {}
    for tier in {POOLED, *posteriors.counts}:
        c = posteriors.of(tier)
        by_tier[tier] = tier_probabilities(c[:, 0], c[:, 1], settings, spec.id, tier, as_of.isoformat())
    return Allocation(spec.id, as_of, arms, by_tier, posteriors, settings)


_ALLOC_CACHE: dict[tuple[Any, ...], Allocation] = {}


def cached_allocation(ws: Workspace, spec: PlaybookSpec, as_of: dt.date, con: BaseBackend) -> Allocation:
    """:func:`allocation`, computed once per (playbook content, as-of, load in force, finished runs) in
    this process: the slices of one run, and a simulation's look-ahead, share it."""
    from panhuo.warehouse import Warehouse

    load = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads).current_id
    key = (str(ws.root), spec.model_dump_json(), as_of, load, _done_runs(ws, spec.id), load_bandit_settings(ws))
    alloc = _ALLOC_CACHE.get(key)
    if alloc is None:
        alloc = allocation(ws, spec, as_of, con=con)
        if len(_ALLOC_CACHE) >= 8:
            _ALLOC_CACHE.pop(next(iter(_ALLOC_CACHE)))
        _ALLOC_CACHE[key] = alloc
    return alloc


def customer_matrix(ws: Workspace, spec: PlaybookSpec, ids: Sequence[str], as_of: dt.date) -> np.ndarray:
    """``(len(ids), arms)`` Thompson probabilities of each customer (by their tier on ``as_of``)."""
    from panhuo.engines import connect

    con = connect(ws.settings.engine, ws.tmp_dir)
    alloc = cached_allocation(ws, spec, as_of, con)
    return alloc.matrix(customer_tiers(ws, con, ids, as_of))


def _done_runs(ws: Workspace, playbook_id: str) -> int:
    """Finished runs of the playbook (part of the allocation cache key: a new run may close a window)."""
    from sqlalchemy import func, select

    from panhuo.runs.models import Run
    from panhuo.store.db import open_store

    store = open_store(ws)
    try:
        with store.session() as s:
            return int(s.execute(select(func.count()).select_from(Run).where(
                Run.playbook_id == playbook_id, Run.state == "done")).scalar_one())
    finally:
        store.dispose()
