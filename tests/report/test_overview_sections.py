"""The overview's tier, score and propensity sections: present when stored, escaped, offline, optional.

One small synthetic brokerage (300 customers) goes through generate -> ingest -> status -> tags
in-process once; the tests then write the overview before and after scoring, and render it with a
hand-made propensity report whose texts try to inject markup.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from panhuo.config import Workspace
from panhuo.engines import connect
from panhuo.report.charts import calibration_plot, stacked_columns
from panhuo.report.overview import render_overview, write_overview
from panhuo.report.sections import propensity_section, score_section, tier_section

__all__: list[str] = []

AS_OF = dt.date(2026, 11, 24)
REMOTE = re.compile(r"https?:|(src|href)=[\"']?//", re.IGNORECASE)
EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    from panhuo.contract.ingest import ingest
    from panhuo.generate import generate_brokerage
    from panhuo.status.history import compute_status
    from panhuo.tags import compute_tags

    root = tmp_path_factory.mktemp("overview")
    generate_brokerage(root / "data", customers=300, seed=5, as_of=AS_OF)
    ws = Workspace.open(root / "ws")
    con = connect(ws.settings.engine, ws.tmp_dir)
    ingest(ws, root / "data", con=con)
    compute_status(ws, con, AS_OF, backfill=False)
    compute_tags(ws, con, AS_OF)
    return ws, con


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_without_scores_the_page_has_tiers_but_no_score_sections(built) -> None:
    ws, con = built
    assert score_section(ws, con, AS_OF) is None
    text = _text(write_overview(ws, con, AS_OF))
    assert 'id="tiers"' in text and "客户分层" in text and "分层策略" in text
    assert 'id="p-alive"' not in text and 'id="propensity"' not in text
    assert not REMOTE.search(text)


def test_with_scores_every_section_is_there_and_offline(built) -> None:
    from panhuo.scores import score_bgnbd

    ws, con = built
    score_bgnbd(ws, con, AS_OF)
    sec = score_section(ws, con, AS_OF)
    assert sec is not None and sec.customers == 300
    assert sum(sec.p_alive.values()) == sum(sec.e90.values()) == 300
    text = _text(write_overview(ws, con, AS_OF))
    for marker in ('id="tiers"', 'id="p-alive"', 'id="expected-days"', "存活概率分布", "预期交易天数分布"):
        assert marker in text
    assert "<script" not in text.lower()
    assert not REMOTE.search(text), "the overview must not load anything remote"
    # tier shares come from the same rows `panhuo segments tiers` prints
    tiers = tier_section(ws, con, AS_OF)
    assert tiers is not None and sum(r.customers for r in tiers.rows) == 300
    for r in tiers.rows:
        assert r.zh in text


def test_propensity_section_is_escaped_and_drawn(built) -> None:
    from panhuo.status.summary import summarize

    ws, con = built
    report = {
        "model_version": f"propensity-{EVIL}",
        "metrics": {"auc": 0.71, EVIL: 0.5, "holdout_customers": 12000},
        "calibration": [{"decile": i, "mean_predicted": i / 20, "observed_rate": i / 22, "customers": 100}
                        for i in range(1, 11)],
        "feature_importance": {"logins_30d": 40.0, EVIL: 10.0, "total_assets": 25.0},
    }
    prop = propensity_section(report)
    assert prop is not None and len(prop.calibration) == 10 and prop.importance[0] == ("logins_30d", 40.0)
    text = render_overview(ws, summarize(ws, con, AS_OF), tier_section(ws, con, AS_OF),
                           score_section(ws, con, AS_OF), prop)
    assert 'id="propensity"' in text and "特征重要性" in text and 'aria-label="calibration"' in text
    assert EVIL not in text and "&lt;script&gt;" in text
    assert text.count("<circle") == 10
    assert not REMOTE.search(text)


def test_propensity_section_accepts_a_list_of_features_and_skips_empty_reports() -> None:
    assert propensity_section(None) is None
    assert propensity_section({}) is None
    assert propensity_section({"metrics": {}, "calibration": [], "feature_importance": []}) is None
    sec = propensity_section({"feature_importance": [{"feature": "a", "importance": 1}, ("b", 3)]})
    assert sec is not None and [k for k, _ in sec.importance] == ["b", "a"]


def test_chart_geometry() -> None:
    cols = stacked_columns(["x", "y"], {("x", "s"): 3, ("y", "s"): 1, ("y", "t"): 1}, ["s", "t"], {"s": "#000"},
                           height=100.0)
    assert [c.total for c in cols] == [3, 2]
    assert cols[0].segments[0].height == pytest.approx(100.0) and cols[1].segments[0].height == pytest.approx(100 / 3)
    plot = calibration_plot([(0.0, 0.0, "a"), (0.25, 0.3, "b")], size=100.0, pad=10.0)
    assert plot.top == pytest.approx(0.3)
    assert (plot.points[0].x, plot.points[0].y) == (10.0, 110.0)
    assert (plot.points[1].x, plot.points[1].y) == (pytest.approx(10 + 100 * 0.25 / 0.3, abs=0.1), 10.0)
    assert plot.path.startswith("M10.0,110.0 L")
