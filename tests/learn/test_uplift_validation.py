"""The fast run of validation/uplift.py (two small replications); the full run is the script's own."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

__all__: list[str] = []


def _load(name: str) -> Any:
    path = Path(__file__).resolve().parents[2] / "validation" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"validation_{name}_test", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_uplift_targeting_beats_random_and_propensity_fast(capsys) -> None:
    v = _load("uplift")
    missed, mean = v.check(2, 4000, 4000, first_seed=11, rounds=30)
    out = capsys.readouterr().out
    assert missed == [], out
    assert "X-learner" in out and "propensity" in out and "random" in out
    assert mean["x"] > 1.5 * max(mean["random"], mean["propensity"])
    assert 0.1 < mean["random"] < 0.3  # a random fifth captures about a fifth
    assert mean["x"] <= mean["oracle"] + 1e-9


def test_the_world_has_harmed_customers_and_a_misleading_baseline() -> None:
    import numpy as np

    v = _load("uplift")
    w = v.world(50_000, np.random.default_rng(0))
    assert (w["tau"] < 0).mean() > 0.05  # some customers are harmed by contact
    likely = np.argsort(-w["p0"])[:5_000]  # the tenth most likely to trade anyway
    assert w["tau"][likely].mean() < w["tau"].mean()
