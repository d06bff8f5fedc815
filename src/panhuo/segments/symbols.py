"""The symbol table of the expression language: which names exist, their kind, and their column.

A symbol is a tag or a score: ``name -> (kind, column)``. Kinds are ``money``, ``int``, ``float``,
``bool``, ``date`` and ``string``. Money is written in RMB in expressions and stored as int64 fen in
the column ``<name>_fen``. The compiler needs nothing else, so it works over any Ibis table.

:data:`BUILTIN` is the catalogue of the tag library and scores by name (kinds only), used to check
YAML files when no data is at hand; :func:`symbols_for_table` derives the table of a real
Ibis table (the tag library's own catalogue, when installed, gives kinds and meanings).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = [
    "BUILTIN",
    "ENUM_VALUES",
    "KINDS",
    "Kind",
    "Symbol",
    "SymbolTable",
    "builtin_symbols",
    "symbols_for_table",
]

Kind = Literal["money", "int", "float", "bool", "date", "string"]
KINDS: tuple[str, ...] = ("money", "int", "float", "bool", "date", "string")


@dataclass(frozen=True)
class Symbol:
    """One name usable in expressions; ``values`` lists the allowed values of an enum-like string."""

    name: str
    kind: str
    column: str
    zh: str = ""
    en: str = ""
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class SymbolTable(Mapping[str, Symbol]):
    """Names -> symbols (immutable). ``with_symbols`` returns a table with more names."""

    symbols: Mapping[str, Symbol] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Symbol:
        return self.symbols[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.symbols)

    def __len__(self) -> int:
        return len(self.symbols)

    def with_symbols(self, extra: Iterable[Symbol]) -> SymbolTable:
        merged = dict(self.symbols)
        merged.update({s.name: s for s in extra})
        return SymbolTable(merged)

    @classmethod
    def of(cls, symbols: Iterable[Symbol]) -> SymbolTable:
        return cls({s.name: s for s in symbols})


def _sym(name: str, kind: str, values: tuple[str, ...] = ()) -> Symbol:
    return Symbol(name, kind, f"{name}_fen" if kind == "money" else name, values=values)


ENUM_VALUES: dict[str, tuple[str, ...]] = {
    "status": ("effective", "sleeping", "dormant", "new_empty"),
    "asset_trend_90d": ("up", "flat", "down"),
    "risk_level": ("C1", "C2", "C3", "C4", "C5"),
    "preferred_market": ("SH", "SZ", "BJ", "OTC"),
    "preferred_asset_class": ("stock", "fund", "bond", "option", "other"),
    "best_channel": ("app_push", "sms", "wechat", "call"),
}

_KINDS_BY_NAME: dict[str, str] = {
    **{n: "money" for n in ("total_assets", "total_assets_30d_ago", "total_assets_90d_ago", "total_assets_365d_ago")},
    **{f"{p}_{w}": "money" for p in ("traded_amount", "commission") for w in ("30d", "90d", "365d")},
    **{f"trade_count_{w}": "int" for w in ("30d", "90d", "365d")},
    **{f"{p}_{c}": "bool" for p in ("consent", "reach") for c in ("app_push", "sms", "wechat", "call")},
    **{n: "int" for n in ("trading_days_since_last_trade", "logins_30d", "logins_90d", "active_days_30d",
                          "active_days_90d", "content_views_30d", "push_opens_30d", "tenure_days", "age",
                          "months_in_status", "contacts_90d", "contacts_365d", "responses_90d", "responses_365d",
                          "complaints_90d", "tenure_years", "trading_days_in_status")},
    **{n: "bool" for n in ("product_holder", "monthly_active", "app_user", "advisor_served", "assessment_expired",
                           "refuses_personalised", "anniversary_today")},
    **{n: "date" for n in ("last_trade_date", "last_login", "status_since", "last_contact_date")},
    **{n: "string" for n in ("asset_band", "asset_trend_90d", "preferred_asset_class", "preferred_market",
                             "age_band", "province", "branch_id", "risk_level", "status")},
    **{n: "float" for n in ("cash_share", "net_commission_rate")},
    # scores
    **{n: "float" for n in ("p_alive", "expected_trading_days_90", "reactivation_propensity", "uplift")},
    "uplift_arm": "string",
    # outcome tags (panhuo.learn.feedback)
    "responded_90d": "bool",
    "contact_fatigue_30d": "int",
    **{n: "string" for n in ("best_channel", "best_benefit_kind")},
}

#: The tag library's and the scores' names with their kinds (no data needed).
BUILTIN: SymbolTable = SymbolTable.of(_sym(n, k, ENUM_VALUES.get(n, ())) for n, k in _KINDS_BY_NAME.items())


def builtin_symbols() -> SymbolTable:
    """:data:`BUILTIN`, with kinds and meanings from ``panhuo.tags.TAGS`` when that package exists."""
    try:
        from panhuo.tags import TAGS  # type: ignore[import-not-found, attr-defined]
    except ImportError:
        return BUILTIN
    extra = []
    for spec in _iter_specs(TAGS):
        kind = getattr(spec, "kind", None)
        if kind not in KINDS:
            continue
        name = spec.name
        extra.append(Symbol(name, kind, f"{name}_fen" if kind == "money" else name, getattr(spec, "zh", ""),
                            getattr(spec, "en", ""), ENUM_VALUES.get(name, ())))
    return BUILTIN.with_symbols(extra)


def _iter_specs(catalogue: object) -> Iterable:
    if isinstance(catalogue, Mapping):
        return catalogue.values()
    return catalogue  # type: ignore[return-value]


def _kind_of(dtype: object) -> str | None:
    if dtype.is_boolean():  # type: ignore[attr-defined]
        return "bool"
    if dtype.is_integer():  # type: ignore[attr-defined]
        return "int"
    if dtype.is_floating() or dtype.is_decimal():  # type: ignore[attr-defined]
        return "float"
    if dtype.is_date() or dtype.is_timestamp():  # type: ignore[attr-defined]
        return "date"
    if dtype.is_string():  # type: ignore[attr-defined]
        return "string"
    return None


def symbols_for_table(table: ir.Table, catalogue: SymbolTable | None = None) -> SymbolTable:
    """The symbols a table offers: ``x_fen`` integer columns are money ``x``; other columns by type.

    ``catalogue`` (default :func:`builtin_symbols`) supplies meanings and enum values for known names;
    the table's own column types decide what is there.
    """
    cat = builtin_symbols() if catalogue is None else catalogue
    out: list[Symbol] = []
    schema = table.schema()
    for col, dtype in schema.items():
        if col == "customer_id":
            continue
        if col.endswith("_fen") and (dtype.is_integer() or dtype.is_floating()):
            name = col[: -len("_fen")]
            known = cat.get(name)
            out.append(Symbol(name, "money", col, known.zh if known else "", known.en if known else ""))
            continue
        kind = _kind_of(dtype)
        if kind is None:
            continue
        known = cat.get(col)
        if known is not None and known.kind in ("int", "float") and kind in ("int", "float"):
            kind = known.kind if kind == "int" else "float"
        out.append(Symbol(col, kind, col, known.zh if known else "", known.en if known else "",
                          known.values if known else ()))
    return SymbolTable.of(out)
