"""Data contract version 1: the input tables, their columns and how each is typed when stored.

Every column has a *kind* that fixes how it is parsed and how it is stored in the warehouse:

=========  =========================================  ===============================
kind       accepted input                             stored as
=========  =========================================  ===============================
id         any text (never interpreted)               string
text       any text                                   string
enum       one of ``values`` (case and space folded)  string (canonical spelling)
money      RMB, at most two decimals, >= 0            int64 fen, column ``<name>_fen``
number     a decimal number >= 0                      float64 (quantities, not money)
int        a whole number                             int64
date       ISO ``2024-01-31`` or ``20240131``         date32
timestamp  ISO date-time, Asia/Shanghai wall time     timestamp[us] (naive, Shanghai)
bool       true/false, 1/0, y/n, yes/no, 是/否        bool
json       a JSON document                            string
=========  =========================================  ===============================

Money is exact: stored as integer fen, never as float.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "CONTRACT_VERSION",
    "Column",
    "Table",
    "TABLES",
    "RISK_LEVELS",
    "CHANNELS",
    "PERSONALISED",
    "PERMISSION_CHANNELS",
    "MARKETS",
    "ASSET_CLASSES",
    "SIDES",
    "stored_name",
    "input_arrow_type",
]

CONTRACT_VERSION = 1

RISK_LEVELS = ("C1", "C2", "C3", "C4", "C5")
CHANNELS = ("app_push", "sms", "wechat", "call")
#: the pseudo-channel of contact_permissions that records consent to personalised (model-driven)
#: marketing; allowed = false is the customer's PIPL refusal
PERSONALISED = "personalised"
PERMISSION_CHANNELS = (*CHANNELS, PERSONALISED)
MARKETS = ("SH", "SZ", "BJ", "OTC")
ASSET_CLASSES = ("stock", "fund", "bond", "option", "other")
SIDES = ("buy", "sell")
GENDERS = ("M", "F", "U")
GROUPS = ("treated", "holdout")

KINDS = ("id", "text", "enum", "money", "number", "int", "date", "timestamp", "bool", "json")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    required: bool = False  # the column must be present in the file
    nullable: bool = True  # an empty value is allowed
    values: tuple[str, ...] = ()  # for enum
    aliases: dict[str, str] = field(default_factory=dict)  # extra spellings for enum values
    min_value: int | None = None  # for int
    max_value: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name}: unknown kind {self.kind!r}")

    @property
    def stored(self) -> str:
        return stored_name(self.name, self.kind)


def input_arrow_type(kind: str):  # -> pyarrow.DataType
    """The Parquet (Arrow) type a producer writes for a column of ``kind``: money as decimal(18,2)."""
    import pyarrow as pa

    return {
        "id": pa.string(), "text": pa.string(), "enum": pa.string(), "json": pa.string(),
        "money": pa.decimal128(18, 2), "number": pa.float64(), "int": pa.int64(), "date": pa.date32(),
        "timestamp": pa.timestamp("us"), "bool": pa.bool_(),
    }[kind]


def stored_name(name: str, kind: str) -> str:
    return f"{name}_fen" if kind == "money" else name


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    required: bool = True  # the table must be part of every load
    key: tuple[str, ...] = ()  # unique key
    references_customers: bool = True

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _id(name: str = "customer_id") -> Column:
    return Column(name, "id", required=True, nullable=False)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "customers",
            (
                _id(),
                Column("open_date", "date", required=True, nullable=False),
                Column("birth_year", "int", min_value=1900, max_value=2100),
                Column("gender", "enum", values=GENDERS, aliases={"男": "M", "女": "F", "未知": "U"}),
                Column("province", "text"),
                Column("city", "text"),
                Column("branch_id", "text"),
                Column("advisor_id", "text"),
                Column("risk_level", "enum", values=RISK_LEVELS),
                Column("risk_assessed_on", "date"),
                Column("phone", "text"),
                Column("app_user", "bool"),
                Column("wechat_bound", "bool"),
                Column("dormant_flag", "bool"),
            ),
            key=("customer_id",),
            references_customers=False,
        ),
        Table(
            "balances",
            (
                _id(),
                Column("as_of", "date", required=True, nullable=False),
                Column("cash", "money", required=True, nullable=False),
                Column("securities_value", "money", required=True, nullable=False),
                Column("product_value", "money", required=True, nullable=False),
            ),
            key=("customer_id", "as_of"),
        ),
        Table(
            "trades",
            (
                _id(),
                Column("trade_date", "date", required=True, nullable=False),
                Column("market", "enum", required=True, nullable=False, values=MARKETS),
                Column("symbol", "text"),
                Column("asset_class", "enum", required=True, nullable=False, values=ASSET_CLASSES),
                Column("side", "enum", required=True, nullable=False, values=SIDES, aliases={"b": "buy", "s": "sell", "买": "buy", "卖": "sell"}),
                Column("quantity", "number"),
                Column("amount", "money", required=True, nullable=False),
                Column("commission", "money", required=True, nullable=False),
            ),
        ),
        Table(
            "app_events",
            (
                _id(),
                Column("event_time", "timestamp", required=True, nullable=False),
                Column("event", "text", required=True, nullable=False),
                Column("channel", "text"),
            ),
        ),
        Table(
            "contact_permissions",
            (
                _id(),
                Column("channel", "enum", required=True, nullable=False, values=PERMISSION_CHANNELS),
                Column("allowed", "bool", required=True, nullable=False),
                Column("updated_at", "timestamp"),
            ),
        ),
        Table(
            "holdings",
            (
                _id(),
                Column("as_of", "date", required=True, nullable=False),
                Column("symbol", "text", required=True, nullable=False),
                Column("asset_class", "enum", values=ASSET_CLASSES),
                Column("market_value", "money", required=True, nullable=False),
            ),
            required=False,
        ),
        Table(
            "market_events",
            (
                Column("date", "date", required=True, nullable=False),
                Column("kind", "text", required=True, nullable=False),
                Column("attributes", "json"),
            ),
            required=False,
            references_customers=False,
        ),
        Table(
            "contact_history",
            (
                _id(),
                Column("campaign_id", "text", required=True, nullable=False),
                Column("sent_at", "timestamp", required=True, nullable=False),
                Column("channel", "enum", values=CHANNELS),
                Column("benefit", "text"),
                Column("group", "enum", required=True, nullable=False, values=GROUPS),
                Column("propensity", "number"),
            ),
            required=False,
        ),
    )
}
