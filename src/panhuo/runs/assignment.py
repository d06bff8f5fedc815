"""Assignment: treatment/holdout, arms and the persistent global control group, by stable hashes.

Every draw is ``sha256("customer \\x1f playbook \\x1f seed \\x1f purpose")``: the first 8 bytes,
big-endian, top 53 bits / 2**53 -> a uniform in [0, 1). The same customer, playbook and seed give
the same number on every run, machine, Python and engine, which is why the hash is computed here in
Python/numpy over the candidate ids (fetched as Arrow) rather than in the query engine: DuckDB's
``hash()`` is engine- and version-specific and Spark has no equal function, while sha256 is the same
everywhere. The per-id digest is ``hashlib`` (C); everything after it is vectorised numpy
(about 1 s per million ids).

Groups: ``global_control`` (uniform of (customer, global salt) below the global share: no playbook
ever touches them), ``holdout`` (below the playbook's holdout share) and ``treated`` (the rest, with an
arm drawn by its weight). Each row carries its propensity: the probability of the group and arm it
got (holdout: ``h``; treated on arm ``a``: ``(1 - h) * p_a``), so a later policy can be evaluated
off-policy. Thompson allocation (``allocation: thompson``) gives each customer the arm probabilities of
their tier from :mod:`panhuo.learn.bandit` (:func:`customer_probabilities`, a per-customer matrix that
:func:`assign` takes as ``probs``); :func:`thompson_probabilities` computes P(best) from successes and
failures.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from panhuo.playbooks.schema import PlaybookSpec

if TYPE_CHECKING:
    import datetime as dt

    from panhuo.config import Workspace

__all__ = [
    "DEFAULT_ARM",
    "Assigned",
    "arm_probabilities",
    "assign",
    "customer_probabilities",
    "global_control",
    "thompson_probabilities",
    "unit_hash",
]

DEFAULT_ARM = "main"
_SEP = "\x1f"


def unit_hash(ids: Iterable[str], *parts: str) -> np.ndarray:
    """A stable uniform in [0, 1) per id: sha256 of ``id`` joined with ``parts``."""
    suffix = _SEP + _SEP.join(parts) if parts else ""
    digest = hashlib.sha256
    raw = b"".join(digest(f"{cid}{suffix}".encode()).digest()[:8] for cid in ids)
    words = np.frombuffer(raw, dtype=">u8").astype(np.uint64)
    return (words >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def global_control(ids: Sequence[str], salt: str, share: float) -> np.ndarray:
    """Whether each customer is in the persistent global control group (independent of any playbook)."""
    if share <= 0:
        return np.zeros(len(ids), dtype=bool)
    return unit_hash(ids, "global-control", salt) < share


def thompson_probabilities(
    successes: Sequence[int], failures: Sequence[int], *, draws: int = 20_000, seed: int = 0
) -> np.ndarray:
    """P(arm is best) under Beta(1 + s, 1 + f) posteriors, by Monte Carlo with a fixed seed."""
    rng = np.random.default_rng(seed)
    s, f = np.asarray(successes, float), np.asarray(failures, float)
    samples = rng.beta(1 + s[:, None], 1 + f[:, None], size=(len(s), draws))
    wins = np.bincount(samples.argmax(axis=0), minlength=len(s))
    return wins / draws


def arm_probabilities(spec: PlaybookSpec) -> list[tuple[str, float]]:
    """The arms of a playbook with their allocation probabilities (one default arm when none are listed)."""
    arms = spec.method.arms
    if not arms:
        return [(DEFAULT_ARM, 1.0)]
    if spec.method.allocation == "thompson":
        # no outcomes recorded yet: every posterior is Beta(1, 1), so P(best) is exactly equal
        return [(a.id, 1 / len(arms)) for a in arms]
    weights = [a.weight if a.weight is not None else 1.0 for a in arms]
    total = sum(weights)
    return [(a.id, w / total) for a, w in zip(arms, weights, strict=True)]


def customer_probabilities(ws: Workspace | None, spec: PlaybookSpec, ids: Sequence[str], as_of: dt.date
                           ) -> np.ndarray | None:
    """Per-customer arm probabilities ``(len(ids), arms)`` of a Thompson playbook (by each customer's tier,
    from the posteriors of its closed windows, :mod:`panhuo.learn.bandit`); None for fixed allocation."""
    if spec.method.allocation != "thompson" or not spec.method.arms or ws is None or not len(ids):
        return None
    from panhuo.learn.bandit import customer_matrix

    return customer_matrix(ws, spec, ids, as_of)


@dataclass(frozen=True)
class Assigned:
    """Per customer (aligned with the ids given): group, arm (None in holdout) and propensity."""

    group: np.ndarray  # str: treated | holdout
    arm: np.ndarray  # object: arm id or None
    propensity: np.ndarray  # float64


def assign(
    ids: Sequence[str],
    playbook_id: str,
    seed: str,
    holdout: float,
    arms: Sequence[tuple[str, float]],
    allowed: np.ndarray | None = None,
    probs: np.ndarray | None = None,
) -> Assigned:
    """Holdout or treated, and the arm, for each id by stable hashes of (customer, playbook, seed).

    ``allowed`` (n x arms, bool) limits each customer to some arms (e.g. suitability): their
    probabilities are renormalised per customer and the propensity logged is the renormalised one.
    Every row must allow at least one arm. ``probs`` (n x arms, rows summing to 1) gives each customer
    their own arm probabilities (Thompson allocation per tier) instead of the ``arms``' shared ones.
    """
    n = len(ids)
    u_hold = unit_hash(ids, playbook_id, seed, "holdout")
    u_arm = unit_hash(ids, playbook_id, seed, "arm")
    held = u_hold < holdout
    names = np.array([a for a, _ in arms], dtype=object)
    if probs is not None:
        probs = np.asarray(probs, dtype=np.float64)
        if probs.shape != (n, len(arms)):
            raise ValueError(f"probs must be {n} x {len(arms)} (customers x arms), got {probs.shape}")
        if n and (probs.min() < 0 or not np.allclose(probs.sum(axis=1), 1.0)):
            raise ValueError("each customer's arm probabilities must be non-negative and sum to 1")
    else:
        probs = np.tile(np.array([p for _, p in arms], dtype=np.float64), (n, 1))
    if allowed is not None:
        probs = probs * allowed
    probs = probs / probs.sum(axis=1, keepdims=True) if n else probs
    cum = np.cumsum(probs, axis=1)
    # the last allowed arm ends exactly at 1, so a draw never lands on a disallowed arm after it
    cum = np.where(cum >= 1 - 1e-12, 1.0, cum)
    pick = (u_arm[:, None] < cum).argmax(axis=1) if n else np.zeros(0, dtype=int)
    chosen = probs[np.arange(n), pick] if n else np.zeros(0)
    group = np.where(held, "holdout", "treated")
    arm = np.where(held, None, names[pick]) if n else np.array([], dtype=object)
    propensity = np.where(held, holdout, (1.0 - holdout) * chosen) if n else np.array([], dtype=np.float64)
    return Assigned(group=group, arm=arm, propensity=propensity.astype(np.float64))
