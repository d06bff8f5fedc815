"""The fast run of validation/ope.py (30 small replications); the 200-replication run is the script's own."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

__all__: list[str] = []


def _load() -> Any:
    path = Path(__file__).resolve().parents[2] / "validation" / "ope.py"
    spec = importlib.util.spec_from_file_location("validation_ope_test", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_ope_intervals_cover_known_policy_values_fast(capsys) -> None:
    v = _load()
    _missed, coverage = v.check(30, 3000, n_pilot=6000, n_truth=100_000, rounds=30)
    out = capsys.readouterr().out
    assert "policy rule: true value" in out and "policy model uplift>0.03" in out
    # 30 replications: the >= 90% goal is the full run's; here far below it would mean a broken estimator
    for name, by_method in coverage.items():
        for method, share in by_method.items():
            assert share >= 0.8, (name, method, out)


def test_logged_actions_follow_their_propensities() -> None:
    import numpy as np

    v = _load()
    d = v.log(60_000, np.random.default_rng(1))
    high = d["probs"][:, 0] == 0.3
    sms_high = (d["action"][high] == 0).mean()
    assert abs(sms_high - 0.5) < 0.02
    rows = np.arange(len(d["y"]))
    assert np.allclose(d["propensity"], d["probs"][rows, d["action"] + 1])
