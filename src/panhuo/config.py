"""Settings and the workspace: ``panhuo.yaml`` (validated) and the folders panhuo keeps its data in.

The workspace is ``./.panhuo`` by default, ``$PANHUO_HOME`` when set, or ``--workspace``.
A fresh, empty directory works: the first command writes a ``panhuo.yaml`` with the defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from panhuo._io import atomic_write_text
from panhuo.errors import ConfigError

__all__ = [
    "StatusRules",
    "DuckDBSettings",
    "SparkSettings",
    "EngineSettings",
    "IngestSettings",
    "CalendarSettings",
    "TagSettings",
    "ChannelCap",
    "RunSettings",
    "DeliveryProvider",
    "DeliverySettings",
    "Settings",
    "Workspace",
    "load_settings",
    "resolve_workspace",
]

DEFAULT_WORKSPACE = ".panhuo"
SETTINGS_FILE = "panhuo.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class StatusRules(_Model):
    """Thresholds of the account-status rule (DESIGN.md section 2). Money in RMB, exact."""

    effective_min_assets: Decimal = Field(Decimal("10000.00"), ge=0, description="有效户 total-assets threshold")
    effective_comparison: Literal[">=", ">"] = ">="
    dormant_max_cash: Decimal = Field(Decimal("100.00"), ge=0, description="休眠户 cash ceiling")
    dormant_cash_comparison: Literal["<=", "<"] = "<="
    dormant_no_trade_years: int = Field(3, ge=1, le=20)
    new_empty_days: int = Field(30, ge=1, le=365, description="新开空户: opened within N days and never funded")
    use_dormant_flag: bool = Field(True, description="the counter's dormant_flag wins over the computed rule")
    keep_snapshots: int = Field(
        40, ge=1, le=5000, description="full per-customer status snapshots kept on disk (transitions are kept forever)"
    )

    @field_validator("effective_min_assets", "dormant_max_cash")
    @classmethod
    def _fen(cls, v: Decimal) -> Decimal:
        if v != v.quantize(Decimal("0.01")):
            raise ValueError(f"{v} is not a whole number of fen (two decimals at most)")
        return v


class DuckDBSettings(_Model):
    memory_limit: str = "6GB"
    threads: int | None = None
    temp_directory: str | None = None  # default: <workspace>/tmp/duckdb


class SparkSettings(_Model):
    master: str = "local[2]"
    connect_url: str | None = Field(None, description="Spark Connect address, e.g. sc://spark-gw:15002")
    app_name: str = "panhuo"
    driver_memory: str = "2g"
    conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("connect_url")
    @classmethod
    def _sc(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("sc://"):
            raise ValueError(f"{v!r} is not a Spark Connect address (sc://host:port)")
        return v


class EngineSettings(_Model):
    name: Literal["duckdb", "spark"] = "duckdb"
    duckdb: DuckDBSettings = Field(default_factory=DuckDBSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)


class IngestSettings(_Model):
    max_errors: int = Field(100, ge=1, le=100_000)
    encoding: Literal["auto", "utf-8", "utf-8-sig", "gbk", "gb18030"] = "auto"
    keep_loads: int = Field(3, ge=1, description="successful loads kept on disk")


class CalendarSettings(_Model):
    override_file: str | None = Field(None, description="the brokerage's own closures file (YAML)")


class TagSettings(_Model):
    keep_snapshots: int = Field(60, ge=1, le=5000, description="dated tag snapshots kept on disk (newest first)")
    batch_customers: int = Field(
        2_000_000,
        ge=1,
        description="customers per tag query: a larger base is computed in customer-id ranges of about this "
        "size, one after another, so the engine's memory stays bounded (10M customers fit in 8 GiB)",
    )


class ChannelCap(_Model):
    """Frequency caps of one channel per customer (None: no cap of that period)."""

    day: int | None = Field(None, ge=0)
    week: int | None = Field(None, ge=0)
    month: int | None = Field(None, ge=0)


class RunSettings(_Model):
    """Playbook runs: global control group, assignment seed, frequency caps, send window, batches."""

    global_control_share: float = Field(0.05, ge=0, le=0.5, description="persistent global control group share")
    global_salt: str = Field("panhuo-global-control-v1", min_length=1, description="salt of the global control hash")
    seed: str = Field("0", min_length=1, description="assignment seed hashed with (customer, playbook)")
    max_per_day: int = Field(1, ge=0, description="frequency cap: messages per customer per calendar day")
    max_per_week: int = Field(3, ge=0, description="frequency cap: messages per customer in 7 days")
    max_per_month: int = Field(8, ge=0, description="frequency cap: messages per customer in 30 days")
    outside_window: Literal["defer", "skip"] = Field("defer", description="outside the send window: defer or skip")
    batch_size: int = Field(10_000, ge=1, le=1_000_000, description="outbox rows per transaction")
    benefit_risk: dict[str, Literal["R1", "R2", "R3", "R4", "R5"]] = Field(
        default_factory=dict, description="product risk ratings added to (and overriding) the benefit catalogue's"
    )
    channel_caps: dict[Literal["app_push", "sms", "wechat", "call"], ChannelCap] = Field(
        default_factory=lambda: {"sms": ChannelCap(week=2), "call": ChannelCap(week=1)},
        description="frequency caps per customer per channel (a capped channel falls through to the next one)",
    )


class ContentSettings(_Model):
    """Message content (panhuo.content): SMS signature and unsubscribe text, length limits, the wording check."""

    brokerage_name: str = Field("盘活证券", min_length=1, max_length=40, description="shown as {{ brokerage_name }}")
    sms_signature: str = Field("盘活证券", min_length=2, max_length=20, description="SMS signature, sent as 【...】")
    sms_unsubscribe: str = Field("回T退订", min_length=2, max_length=20, description="SMS opt-out text")
    sms_single_segment: int = Field(70, ge=10, le=500, description="characters in a one-segment SMS")
    sms_multi_segment: int = Field(67, ge=10, le=500, description="characters per segment of a longer SMS")
    sms_max_segments: int = Field(3, ge=1, le=10)
    push_title_max: int = Field(20, ge=1, le=200, description="app push title, characters")
    push_body_max: int = Field(100, ge=1, le=2000, description="app push body, characters")
    default_link: str = Field("https://m.example.com/a", max_length=200, description="{{ link }} unless a playbook sets one")
    forbidden_phrases: list[str] = Field(
        default_factory=lambda: list(_default_forbidden()),
        description="wording that promises returns or no loss; refused before approval",
    )

    @field_validator("forbidden_phrases")
    @classmethod
    def _phrases(cls, v: list[str]) -> list[str]:
        if any(not p.strip() for p in v):
            raise ValueError("forbidden phrases must not be empty")
        return v


DELIVERY_CHANNELS: tuple[str, ...] = ("app_push", "sms", "wechat", "call")
ADVISOR = "advisor"  # the built-in "provider" of the call channel: tasks in the store, nothing sent


class DeliveryProvider(_Model):
    """One provider of ``delivery.providers``: where it is, which env vars hold its secrets, its limits.

    ``kind: contract`` speaks the provider contract (``/sms/send``, ``/push/send``, ``/wechat/send``);
    ``kind: webhook`` POSTs every message (with its segment and ``delivery.webhook_tags``) to ``base_url``,
    HMAC-signed with the secret in ``secret_env``. Credentials are never written here: only the names of
    the environment variables that hold them (checked when a worker starts).
    """

    kind: Literal["contract", "webhook"] = "contract"
    base_url: str = Field(min_length=1, description="http(s) URL of the provider (webhook: the message centre)")
    token_env: str | None = Field(None, min_length=1, description="env var holding the bearer token")
    secret_env: str | None = Field(None, min_length=1, description="env var holding the webhook HMAC secret")
    timeout: float = Field(5.0, gt=0, le=300, description="seconds per request")
    rate_per_second: float = Field(50.0, gt=0, le=100_000, description="token-bucket rate of requests")
    concurrency: int = Field(32, ge=1, le=1000, description="requests in flight at once")
    max_attempts: int = Field(5, ge=1, le=100, description="attempts before a message is a dead letter")

    @field_validator("base_url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v.rstrip("/")

    @field_validator("token_env", "secret_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not v.replace("_", "a").isalnum():
            raise ValueError(f"{v!r} is not an environment variable name")
        return v


class DeliveryWechat(_Model):
    """WeChat: where the openid comes from (the contract has no openid column; the customer id stands in)."""

    openid_from: Literal["customer_id"] = "customer_id"


class DeliverySettings(_Model):
    """``panhuo deliver``: providers, which provider serves each channel, retries and leases."""

    providers: dict[str, DeliveryProvider] = Field(
        default_factory=lambda: {"sim": DeliveryProvider(base_url="http://127.0.0.1:8765", token_env="PANHUO_SIM_TOKEN")},
        description="providers by name (credentials only from the environment variables named)",
    )
    channels: dict[str, str] = Field(
        default_factory=lambda: {"app_push": "sim", "sms": "sim", "wechat": "sim", "call": ADVISOR},
        description="the provider of each channel; call is always 'advisor' (call tasks for the advisor)",
    )
    wechat: DeliveryWechat = Field(default_factory=lambda: DeliveryWechat())
    webhook_tags: list[str] = Field(default_factory=list, description="tags sent along by a webhook provider")
    lease_seconds: int = Field(300, ge=1, le=86_400, description="a claimed batch is reclaimable after this")
    batch: int = Field(500, ge=1, le=100_000, description="messages claimed per batch")
    backoff_base: float = Field(0.5, ge=0, le=600, description="first retry wait in seconds (doubles, full jitter)")
    backoff_max: float = Field(30.0, ge=0, le=3600, description="longest wait between two attempts")
    max_wait: float = Field(60.0, ge=0, le=86_400,
                            description="a longer Retry-After defers the message instead of holding the batch")
    poll_seconds: float = Field(5.0, gt=0, le=3600, description="--follow: pause when nothing is due")
    archive_retention_days: int = Field(
        1825, ge=1, le=36_500,
        description="the message archive keeps sent messages this many days (`panhuo archive prune` deletes older)",
    )

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: dict[str, str]) -> dict[str, str]:
        for ch, provider in v.items():
            if ch not in DELIVERY_CHANNELS:
                raise ValueError(f"unknown channel {ch!r} (channels: {', '.join(DELIVERY_CHANNELS)})")
            if (ch == "call") != (provider == ADVISOR):
                raise ValueError(f"channel {ch!r}: " + ("call is served by 'advisor' (call tasks)" if ch == "call"
                                                         else f"'{ADVISOR}' serves only the call channel"))
        return v

    @model_validator(mode="after")
    def _known_providers(self) -> DeliverySettings:
        for ch, provider in self.channels.items():
            if provider != ADVISOR and provider not in self.providers:
                raise ValueError(f"channels.{ch}: unknown provider {provider!r} (providers: "
                                 f"{', '.join(sorted(self.providers)) or 'none'})")
        for name, p in self.providers.items():
            if p.kind == "webhook" and p.secret_env is None:
                raise ValueError(f"providers.{name}: a webhook provider needs secret_env (its HMAC secret)")
        return self


class MeasureSettings(_Model):
    """``panhuo report``: the cost of one message per channel in RMB (exact to the fen; call: advisor time)."""

    message_cost: dict[str, Decimal] = Field(
        default_factory=lambda: {"app_push": Decimal("0.00"), "sms": Decimal("0.05"), "wechat": Decimal("0.00"),
                                 "call": Decimal("3.00")},
        description="RMB per message sent, by channel (a channel left out costs 0)")

    @field_validator("message_cost")
    @classmethod
    def _costs(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        for ch, rmb in v.items():
            if ch not in DELIVERY_CHANNELS:
                raise ValueError(f"unknown channel {ch!r} (channels: {', '.join(DELIVERY_CHANNELS)})")
            if rmb < 0 or rmb != rmb.quantize(Decimal("0.01")):
                raise ValueError(f"message_cost.{ch}: {rmb} is not a non-negative amount in RMB to the fen")
        return v


def _default_forbidden() -> tuple[str, ...]:
    from panhuo.content.wording import DEFAULT_FORBIDDEN

    return DEFAULT_FORBIDDEN


class Settings(_Model):
    """Everything in ``panhuo.yaml``."""

    version: Literal[1] = 1
    timezone: Literal["Asia/Shanghai"] = "Asia/Shanghai"
    engine: EngineSettings = Field(default_factory=EngineSettings)
    store_url: str = Field("sqlite:///{workspace}/panhuo.db", description="operational store (SQLAlchemy URL)")
    status: StatusRules = Field(default_factory=StatusRules)
    asset_bands: list[Decimal] = Field(
        default_factory=lambda: [Decimal(1000), Decimal(10000), Decimal(100000), Decimal(1000000)],
        description="upper bounds of the asset bands in RMB (ascending)",
    )
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
    tags: TagSettings = Field(default_factory=TagSettings)
    content: ContentSettings = Field(default_factory=ContentSettings)
    runs: RunSettings = Field(default_factory=RunSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    acquisition_cost: Decimal = Field(Decimal("1000.00"), ge=0, description="cost of a new effective account")
    measure: MeasureSettings = Field(default_factory=MeasureSettings)

    @field_validator("asset_bands")
    @classmethod
    def _ascending(cls, v: list[Decimal]) -> list[Decimal]:
        if any(b <= a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError("asset bands must be strictly ascending")
        return v


def _format_validation(path: Path, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"{path}: field {loc}: {e['msg']}")
    return "\n".join(lines)


def load_settings(path: Path) -> Settings:
    """Read and validate a ``panhuo.yaml``; errors name the file and the field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation(path, exc)) from exc


def _dump(settings: Settings) -> str:
    data: Any = settings.model_dump(mode="json")
    head = (
        "# panhuo settings (validated on every command). Money in RMB; times Asia/Shanghai.\n"
        "# Engine: duckdb (embedded) or spark (engine.spark.master or engine.spark.connect_url).\n"
    )
    return head + yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def resolve_workspace(path: str | os.PathLike[str] | None = None) -> Path:
    """``--workspace`` wins, then ``$PANHUO_HOME``, then ``./.panhuo``."""
    if path:
        return Path(path).expanduser().resolve()
    env = os.environ.get("PANHUO_HOME")
    if env:
        return Path(env).expanduser().resolve()
    return (Path.cwd() / DEFAULT_WORKSPACE).resolve()


@dataclass(frozen=True)
class Workspace:
    """A workspace folder and its validated settings."""

    root: Path
    settings: Settings

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None, *, create: bool = True) -> Workspace:
        root = resolve_workspace(path)
        file = root / SETTINGS_FILE
        if not file.exists():
            if not create:
                raise ConfigError(f"{root}: no panhuo workspace here (run any panhuo command to create one)")
            root.mkdir(parents=True, exist_ok=True)
            atomic_write_text(file, _dump(Settings()))
        return cls(root=root, settings=load_settings(file))

    @property
    def settings_file(self) -> Path:
        return self.root / SETTINGS_FILE

    @property
    def warehouse_dir(self) -> Path:
        return self.root / "warehouse"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def store_url(self) -> str:
        return self.settings.store_url.replace("{workspace}", str(self.root))

    def save(self, settings: Settings) -> Workspace:
        atomic_write_text(self.settings_file, _dump(settings))
        return Workspace(self.root, settings)
