"""The catalogue: exactly the agreed tag names, one spec each, stored names and types."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import panhuo.tags
from panhuo.tags import TAG_SCHEMA, TAGS, tag_spec

AGREED = """
total_assets asset_band total_assets_30d_ago total_assets_90d_ago total_assets_365d_ago asset_trend_90d cash_share
product_holder last_trade_date trading_days_since_last_trade trade_count_30d trade_count_90d trade_count_365d
traded_amount_30d traded_amount_90d traded_amount_365d commission_30d commission_90d commission_365d
preferred_asset_class preferred_market net_commission_rate last_login logins_30d logins_90d active_days_30d
active_days_90d monthly_active content_views_30d push_opens_30d app_user complaints_90d consent_app_push consent_sms
consent_wechat consent_call reach_app_push reach_sms reach_wechat reach_call refuses_personalised tenure_days
tenure_years anniversary_today age age_band province branch_id advisor_served risk_level assessment_expired status
status_since months_in_status trading_days_in_status contacts_90d contacts_365d responses_90d responses_365d
last_contact_date
""".split()  # noqa: SIM905 - reads as the agreed list

MONEY = {"total_assets", "total_assets_30d_ago", "total_assets_90d_ago", "total_assets_365d_ago",
         "traded_amount_30d", "traded_amount_90d", "traded_amount_365d", "commission_30d", "commission_90d",
         "commission_365d"}


def test_catalogue_has_exactly_the_agreed_names() -> None:
    assert [s.name for s in TAGS] == AGREED


def test_money_tags_are_stored_as_int64_fen() -> None:
    assert {s.name for s in TAGS if s.kind == "money"} == MONEY
    for name in MONEY:
        assert tag_spec(name).stored == f"{name}_fen"
        assert str(TAG_SCHEMA.field(f"{name}_fen").type) == "int64"


def test_every_spec_has_meanings() -> None:
    for s in TAGS:
        assert s.zh and s.en and s.how, s.name
        assert any("\u4e00" <= ch <= "\u9fff" for ch in s.zh), s.name


def test_tag_spec_accepts_stored_names_and_suggests() -> None:
    assert tag_spec("traded_amount_30d_fen").name == "traded_amount_30d"
    with pytest.raises(KeyError, match="did you mean total_assets"):
        tag_spec("total_asset")
    with pytest.raises(KeyError):
        tag_spec("age_fen")


def test_every_module_declares_all() -> None:
    for info in pkgutil.iter_modules(panhuo.tags.__path__):
        mod = importlib.import_module(f"panhuo.tags.{info.name}")
        assert mod.__doc__, info.name
        assert isinstance(getattr(mod, "__all__", None), list), info.name
        for name in mod.__all__:
            assert hasattr(mod, name), (info.name, name)
