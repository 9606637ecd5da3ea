"""Settings from ``touchpoint.toml`` and ``TOUCHPOINT_*`` environment variables (the environment wins).

Where the file is looked for, in order: the path in ``TOUCHPOINT_CONFIG``, then ``./touchpoint.toml``.
Every setting is documented in ``docs/configuration.md`` (a test keeps the two in step).

>>> from touchpoint.config import Settings
>>> Settings(data_dir="/tmp/tp").resolved_warehouse_url()
'duckdb:///tmp/tp/warehouse.duckdb'
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from touchpoint.errors import ConfigError

DEFAULT_CONFIG_FILE = "touchpoint.toml"
ENVIRONMENTS = ("development", "test", "production")

#: Cadence words a job's ``every`` takes besides a duration such as ``"5s"``, ``"10m"``, ``"2h"``, ``"3d"``.
CADENCE_WORDS = {"hourly": 3600.0, "daily": 86400.0, "weekly": 7 * 86400.0}
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
CADENCE_HELP = "a number with a unit (s, m, h, d, w), e.g. '5s', '10m', '2h', or one of: hourly, daily, weekly"


def parse_cadence(value: str | float | int) -> float:
    """Seconds in a job cadence: ``"5s"``, ``"10m"``, ``"2h"``, ``"1d"``, ``"hourly"``, ``"daily"``, ``"weekly"``.

    >>> parse_cadence("5s"), parse_cadence("1.5m"), parse_cadence("daily")
    (5.0, 90.0, 86400.0)
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a cadence; use {CADENCE_HELP}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower()
        if text in CADENCE_WORDS:
            return CADENCE_WORDS[text]
        unit = _UNITS.get(text[-1:]) if text else None
        try:
            seconds = float(text[:-1]) * unit if unit is not None else float("nan")
        except ValueError:
            seconds = float("nan")
    if not seconds == seconds or seconds < 0.1 or seconds > 366 * 86400:  # NaN, too short, too long
        raise ValueError(f"{value!r} is not a cadence between 0.1s and 366d; use {CADENCE_HELP}")
    return seconds


#: The consent purposes and their default while nobody said (docs/privacy.md, "Consent").
DEFAULT_PURPOSES = {
    "analytics": "opt_out",
    "personalisation": "opt_out",
    "marketing_email": "opt_in",
    "marketing_sms": "opt_in",
    "advertising": "opt_in",
    "sharing": "opt_in",
}
#: Segment consent categories (as OneTrust and Segment's consent manager name them) and their purpose.
DEFAULT_CATEGORIES = {
    "performance": "analytics",
    "functional": "personalisation",
    "personalization": "personalisation",
    "marketing": "advertising",
    "targeting": "advertising",
    "email": "marketing_email",
    "sms": "marketing_sms",
    "data_sharing": "sharing",
    "sale_of_data": "sharing",
}
PURPOSE_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
#: Countries (ISO 3166-1 alpha-2) and the consent region each belongs to: the EU's 27 and the rest of the
#: EEA (Iceland, Liechtenstein, Norway), where the GDPR applies. A country not listed is its own region.
# fmt: off
EEA_COUNTRIES = ("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
                 "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO")
# fmt: on
DEFAULT_REGIONS = dict.fromkeys(EEA_COUNTRIES, "EU")
REGION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
CAP = re.compile(r"(email|webhook):[1-9][0-9]{0,5}/[1-9][0-9]{0,4}[mhd]")  # automations_frequency_caps
QUIET_HOURS = re.compile(r"((?:[01][0-9]|2[0-3]):[0-5][0-9])-((?:[01][0-9]|2[0-3]):[0-5][0-9])")


class JobSettings(BaseModel):
    """One ``[jobs.NAME]`` table of ``touchpoint.toml`` (see docs/jobs.md)."""

    model_config = ConfigDict(extra="forbid")

    every: str | None = Field(
        None, description="how often the job runs (for jobs run after new events: at most this often)"
    )
    enabled: bool = Field(True, description="false stops the server running the job on its own")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(str(k) for k in data if k not in cls.model_fields)
            if unknown:
                raise ValueError(
                    f"unknown key {unknown[0]!r}; a [jobs.NAME] table takes: {', '.join(cls.model_fields)}"
                )
        return data

    @field_validator("every", mode="before")
    @classmethod
    def _check_every(cls, value: Any) -> str | None:
        if value is None:
            return None
        parse_cadence(value)
        if isinstance(value, int | float):  # a bare number is seconds (`every = 2.0`), kept with its unit
            return f"{float(value)}s"
        return str(value).strip()

    def seconds(self) -> float | None:
        return None if self.every is None else parse_cadence(self.every)


def config_file_path() -> Path:
    """The configuration file in force: ``$TOUCHPOINT_CONFIG`` or ``./touchpoint.toml``."""
    return Path(os.environ.get("TOUCHPOINT_CONFIG", DEFAULT_CONFIG_FILE))


class Settings(BaseSettings):
    """All of touchpoint's settings. Field names map to ``TOUCHPOINT_<NAME>`` variables."""

    model_config = SettingsConfigDict(env_prefix="TOUCHPOINT_", extra="forbid", validate_default=True)

    env: str = Field(
        "development",
        description="development, test or production (production: `touchpoint serve` refuses default secrets "
        "and plain HTTP; docs/security.md)",
    )
    data_dir: Path = Field(Path("touchpoint-data"), description="where the embedded warehouse and demo files live")
    warehouse_url: str | None = Field(
        None, description="Ibis connection URL; default: an embedded DuckDB file in data_dir"
    )
    host: str = Field("127.0.0.1", description="address `touchpoint serve` listens on")
    port: int = Field(8000, ge=1, le=65535, description="port `touchpoint serve` listens on")
    public_url: str | None = Field(
        None, description="URL clients reach the server at (what analytics.js is told); default: from host and port"
    )
    max_event_bytes: int = Field(32 * 1024, gt=0, description="largest single event accepted (Segment: 32 KB)")
    max_batch_bytes: int = Field(500 * 1024, gt=0, description="largest request body (Segment: 500 KB)")
    max_batch_events: int = Field(2500, gt=0, description="most events in one batch (Segment: 2,500)")
    commit_max_events: int = Field(50_000, gt=0, description="most events one group commit writes")
    commit_max_wait_ms: float = Field(
        2.0, ge=0, description="how long a group commit waits for more requests to join it"
    )
    queue_max_events: int = Field(
        200_000, gt=0, description="events waiting to be committed before the collector answers 429"
    )
    collector_log: bool | None = Field(
        None,
        description="acknowledge collector requests after an fsync'd append to a local log, and load the log "
        "into the warehouse in groups (docs/collect.md); false: after the warehouse commit; unset: on where the "
        "log has a directory (a DuckDB file warehouse, or collector_log_dir set)",
    )
    collector_log_dir: Path | None = Field(
        None,
        description="where the collector log's segments live; default: `collector-log` beside the DuckDB file "
        "(required with another warehouse)",
    )
    collector_log_load_ms: float = Field(
        20.0,
        ge=0,
        description="how often the collector log's loader commits (sooner when a read waits for it; under load, "
        "after a load of 1,000 events or more, the wait stretches to 4 times the last load, at most 1 s or 5 "
        "times this)",
    )
    collector_log_segment_mb: int = Field(64, gt=0, description="size at which the collector log starts a new file")
    memory_ceiling_mb: int | None = Field(
        None,
        ge=0,
        description="resident memory of the server the collector keeps under: past it, requests answer 429 with "
        "Retry-After; unset: half the machine's memory; 0: none. When set, DuckDB's memory_limit defaults "
        "to half of it",
    )
    import_chunk_events: int = Field(100_000, gt=0, description="events per transaction in file imports")
    max_request_bytes: int = Field(
        1024 * 1024,
        gt=0,
        description="largest request body of every endpoint but the collector's (which has max_batch_bytes); "
        "larger answers 413",
    )
    rate_limit_per_key: int = Field(
        6000, ge=0, description="requests a minute one API key may make (a bucket of as many); 0: no limit"
    )
    rate_limit_per_address: int = Field(
        600,
        ge=0,
        description="requests a minute from one client address without a valid key (no key, an unknown key, "
        "dashboard sign-in, unsubscribe links); 0: no limit",
    )
    signin_failures_per_user: int = Field(
        5, gt=0, description="failed dashboard sign-ins for one user name per 5 minutes before 429"
    )
    signin_failures_per_address: int = Field(
        30, gt=0, description="failed dashboard sign-ins from one client address per 5 minutes before 429"
    )
    tls_certfile: Path | None = Field(
        None, description="PEM certificate chain: `touchpoint serve` speaks HTTPS itself (with tls_keyfile)"
    )
    tls_keyfile: Path | None = Field(None, description="PEM private key of tls_certfile")
    behind_tls_proxy: bool = Field(
        False,
        description="a reverse proxy terminates TLS in front of the server: X-Forwarded-Proto and -For are "
        "trusted from forwarded_allow_ips",
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="addresses (comma-separated, or '*') whose X-Forwarded-Proto/-For headers are trusted: "
        "the TLS proxy's",
    )
    duckdb_memory_limit: str | None = Field(None, description="DuckDB memory_limit, e.g. '4GB'")
    duckdb_threads: int | None = Field(
        None,
        gt=0,
        description="DuckDB worker threads (default: all cores; in the server one fewer, which the interpreter that "
        "answers HTTP and validates events keeps)",
    )
    duckdb_checkpoint_mb: int = Field(
        256,
        gt=0,
        description="size of DuckDB's write-ahead log at which it is folded into the database file (its "
        "checkpoint_threshold; DuckDB's default is 16). Fewer checkpoints make ingestion cheaper; a restart after "
        "a crash replays up to this much of the log (about 1 s per 100 MB)",
    )
    server_switch_interval_ms: float = Field(
        1.0,
        gt=0,
        le=100,
        description="how long (ms) a thread of `touchpoint serve` may hold Python's interpreter lock while others "
        "wait (CPython's switch interval, 5 ms by default): shorter lets the HTTP handlers and the senders, "
        "waiting on sockets, go on sooner while a job computes",
    )
    journeys_session_timeout_minutes: float = Field(
        30.0, gt=0, le=10080, description="session inactivity timeout in minutes"
    )
    journeys_channel_rules: list[dict[str, Any]] | None = Field(
        None, description="channel rules replacing the defaults (see docs/journeys.md)"
    )
    jobs: dict[str, JobSettings] = Field(
        default_factory=dict, description="per-job cadence and switch: [jobs.NAME] every, enabled (docs/jobs.md)"
    )
    log_format: str = Field("text", description="log lines of `touchpoint serve`: text or json")
    run_jobs: bool = Field(
        True, description="whether `touchpoint serve` runs the jobs (false: a collector and API only, as --no-jobs)"
    )

    retention: dict[str, int | str] = Field(
        default_factory=dict,
        description="days each table's rows are kept, by table name, merged over the defaults (events 761 = "
        "25 months, quarantine 30, audit_log never); 'never' keeps them (docs/privacy.md, Retention)",
    )

    @field_validator("retention", mode="before")
    @classmethod
    def _check_retention(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError("retention must be a table of table names to days, e.g. [retention] quarantine = 30")
        for table, days in value.items():
            never = isinstance(days, str) and days.strip().lower() == "never"
            whole = isinstance(days, int) and not isinstance(days, bool) and 0 < days <= 36_600
            if not (never or whole):
                raise ValueError(
                    f"retention.{table} = {days!r} is not a number of days; use a whole number from 1 to 36600, "
                    "or 'never'"
                )
        return {str(t): ("never" if isinstance(d, str) else d) for t, d in value.items()}

    @field_validator("env")
    @classmethod
    def _check_env(cls, value: str) -> str:
        if value not in ENVIRONMENTS:
            raise ValueError(f"env {value!r} is not known; use one of {', '.join(ENVIRONMENTS)}")
        return value

    @model_validator(mode="after")
    def _check_tls(self) -> Settings:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("tls_certfile and tls_keyfile go together; set both (or neither)")
        return self

    @field_validator("log_format")
    @classmethod
    def _check_log_format(cls, value: str) -> str:
        if value not in ("text", "json"):
            raise ValueError(f"log_format {value!r} is not known; use 'text' or 'json'")
        return value

    brand_name: str | None = Field(
        None,
        max_length=200,
        description="our brand as survey answers name it; relative attractiveness compares it with the others",
    )

    smtp_url: str | None = Field(
        None,
        description="where automations send email: smtp://host:port (STARTTLS when offered, "
        "?starttls=require to insist), smtps://host:port (TLS); user:password@ in the URL or the next settings",
    )
    smtp_username: str | None = Field(None, description="SMTP user name (overrides one in smtp_url)")
    smtp_password: str | None = Field(None, description="SMTP password (overrides one in smtp_url)")
    smtp_sender: str | None = Field(
        None, description="the From address of automation emails, e.g. 'Shop <news@shop.example>'"
    )
    default_timezone: str = Field(
        "UTC",
        description="the IANA time zone of a contact without a 'timezone' trait (an automation's wait_until) "
        "and, for quiet hours, without a context.timezone in their events",
    )
    smtp_connections: int = Field(
        4, ge=1, le=32, description="SMTP connections an automations delivery run sends over side by side"
    )
    automations_signing_key: str | None = Field(
        None,
        min_length=16,
        description="signs unsubscribe links and webhook bodies (HMAC-SHA256); default: a random key kept "
        "in <data_dir>/automations.key",
    )

    automations_frequency_caps: list[str] = Field(
        default_factory=lambda: ["email:3/7d"],
        description="at most N messages per channel per contact in a rolling window, each 'CHANNEL:N/PERIOD' "
        "(e.g. 'email:3/7d', 'webhook:10/24h'); transactional messages are exempt; [] for none",
    )
    automations_quiet_hours: str | None = Field(
        None,
        description="no automation email in this daily window of the recipient's local time, e.g. '21:00-08:00' "
        "(held until it ends); unset: none",
    )
    automations_quiet_hours_spread: float = Field(
        600.0, ge=0, le=3600, description="seconds over which messages held by quiet hours are released"
    )
    automations_global_control: float = Field(
        0.0,
        ge=0,
        lt=0.5,
        description="the share of all profiles no automation ever contacts (the global control group, "
        "e.g. 0.05); 0: none",
    )

    consent_purposes: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_PURPOSES),
        description="the purposes consent is asked for, each 'opt_in' (denied until granted) or 'opt_out' "
        "(granted until denied); see docs/privacy.md",
    )
    consent_categories: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_CATEGORIES),
        description="Segment consent categories (context.consent.categoryPreferences) mapped to purposes; "
        "a category named like a purpose needs no entry",
    )
    consent_region_defaults: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="per purpose, the default for unknown consent in a region, e.g. "
        "{analytics = {EU = 'opt_in', US = 'opt_out'}}; other regions keep the purpose's default",
    )
    consent_regions: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_REGIONS),
        description="country code (ISO 3166-1 alpha-2) -> consent region, merged over the default (EU and EEA "
        "countries -> 'EU'); any other country is its own region",
    )
    analytics_denied: str = Field(
        "exclude",
        description="events whose analytics consent is denied: 'exclude' (stored, left out of analytics reads) "
        "or 'drop' (not stored, counted)",
    )

    @field_validator("consent_purposes")
    @classmethod
    def _check_purposes(cls, value: dict[str, str]) -> dict[str, str]:
        for name, default in value.items():
            if not PURPOSE_NAME.fullmatch(name) or name == "transactional":
                raise ValueError(
                    f"consent purpose {name!r} is not a purpose name; use lower-case letters, digits and '_' "
                    "(e.g. marketing_email); 'transactional' needs no consent and cannot be configured"
                )
            if default not in ("opt_in", "opt_out"):
                raise ValueError(f"consent_purposes.{name} is {default!r}; use 'opt_in' or 'opt_out'")
        return value

    @field_validator("consent_region_defaults", mode="before")
    @classmethod
    def _check_region_defaults(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, dict[str, str]] = {}
        for purpose, regions in value.items():
            if not isinstance(regions, dict):
                raise ValueError(
                    f"consent_region_defaults.{purpose} is {regions!r}; use a table of region = 'opt_in' or 'opt_out'"
                )
            out[str(purpose)] = {}
            for region, default in regions.items():
                kind = str(default).replace("-", "_").lower()
                if kind not in ("opt_in", "opt_out"):
                    raise ValueError(
                        f"consent_region_defaults.{purpose}.{region} is {default!r}; use 'opt_in' or 'opt_out'"
                    )
                if not REGION_NAME.fullmatch(str(region)):
                    raise ValueError(f"consent_region_defaults.{purpose}: {region!r} is not a region name (e.g. EU)")
                out[str(purpose)][str(region).upper()] = kind
        return out

    @field_validator("consent_regions", mode="before")
    @classmethod
    def _check_regions(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out = dict(DEFAULT_REGIONS)  # merged over the default: an entry adds or changes one country
        for country, region in value.items():
            if not (isinstance(country, str) and len(country) == 2 and country.isalpha()):
                raise ValueError(f"consent_regions: {country!r} is not a two-letter country code (e.g. DE)")
            if not (isinstance(region, str) and REGION_NAME.fullmatch(region)):
                raise ValueError(f"consent_regions.{country} = {region!r} is not a region name (e.g. EU)")
            out[country.upper()] = region.upper()
        return out

    @field_validator("analytics_denied")
    @classmethod
    def _check_analytics_denied(cls, value: str) -> str:
        if value not in ("exclude", "drop"):
            raise ValueError(f"analytics_denied {value!r} is not known; use 'exclude' or 'drop'")
        return value

    @model_validator(mode="after")
    def _check_categories(self) -> Settings:
        for purpose in self.consent_region_defaults:
            if purpose not in self.consent_purposes:
                raise ValueError(
                    f"consent_region_defaults.{purpose}: {purpose!r} is not in consent_purposes "
                    f"({', '.join(sorted(self.consent_purposes))})"
                )
        for category, purpose in self.consent_categories.items():
            if purpose not in self.consent_purposes:
                raise ValueError(
                    f"consent_categories.{category} maps to {purpose!r}, which is not in consent_purposes "
                    f"({', '.join(sorted(self.consent_purposes))})"
                )
        return self

    @field_validator("automations_frequency_caps")
    @classmethod
    def _check_caps(cls, value: list[str]) -> list[str]:
        for cap in value:
            if not CAP.fullmatch(cap.strip()):
                raise ValueError(
                    f"automations_frequency_caps: {cap!r} is not CHANNEL:N/PERIOD; use e.g. 'email:3/7d' "
                    "(channels email, webhook; periods in m, h or d)"
                )
        return [c.strip() for c in value]

    @field_validator("automations_quiet_hours")
    @classmethod
    def _check_quiet_hours(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        m = QUIET_HOURS.fullmatch(value.strip())
        if m is None or m[1] == m[2]:
            raise ValueError(
                f"automations_quiet_hours {value!r} is not HH:MM-HH:MM with two different times (e.g. '21:00-08:00')"
            )
        return value.strip()

    @field_validator("default_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"default_timezone {value!r} is not an IANA time zone (e.g. 'Europe/Berlin')") from None
        return value

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(
                f"smtp_url {value!r} is not an SMTP URL; use e.g. 'smtp://127.0.0.1:2525' or 'smtps://mail.example:465'"
            )
        return value.strip()

    @field_validator("warehouse_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            raise ValueError(f"warehouse_url {value!r} is not a URL; use e.g. 'duckdb:///path/to/file.duckdb'")
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"public_url {value!r} is not an http(s) URL; use e.g. 'https://collect.example.com'")
        return value.strip().rstrip("/")

    def resolved_public_url(self) -> str:
        """``public_url``, or ``http://<host>:<port>`` (a wildcard bind address becomes the loopback one)."""
        if self.public_url:
            return self.public_url
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = config_file_path()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path.exists():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        elif "TOUCHPOINT_CONFIG" in os.environ:
            raise ConfigError(
                f"TOUCHPOINT_CONFIG points to {str(path)!r}, which does not exist",
                hint="create the file or unset TOUCHPOINT_CONFIG",
            )
        return tuple(sources)

    def resolved_warehouse_url(self) -> str:
        """The warehouse URL, defaulting to ``duckdb:///<data_dir>/warehouse.duckdb``."""
        if self.warehouse_url:
            return self.warehouse_url
        return f"duckdb://{self.data_dir.expanduser().absolute() / 'warehouse.duckdb'}"

    def uses_collector_log(self) -> bool:
        """Whether the collector acknowledges after an append to its log: ``collector_log`` when set, else where
        the log has a directory (``collector_log_dir``, or a DuckDB file warehouse to keep it beside).

        >>> Settings(data_dir="/tmp/tp").uses_collector_log(), Settings(warehouse_url="duckdb://:memory:").uses_collector_log()
        (True, False)
        >>> Settings(warehouse_url="postgresql://db/tp").uses_collector_log()
        False
        """
        if self.collector_log is not None:
            return self.collector_log
        try:
            self.resolved_collector_log_dir()
        except ConfigError:
            return False
        return True

    def resolved_collector_log_dir(self) -> Path:
        """Where the collector log lives: ``collector_log_dir``, else beside the DuckDB warehouse file.

        >>> str(Settings(data_dir="/tmp/tp").resolved_collector_log_dir())
        '/tmp/tp/collector-log'
        """
        if self.collector_log_dir is not None:
            return self.collector_log_dir.expanduser().absolute()
        url = self.resolved_warehouse_url()
        path = url.removeprefix("duckdb://").split("?", 1)[0]
        if not url.startswith("duckdb://") or path in ("", ":memory:") or path.startswith(":memory:"):
            raise ConfigError(
                f"collector_log needs a directory for its files, and the {urlsplit(url).scheme} warehouse has no "
                "file beside which to keep them",
                hint="set collector_log_dir to a local directory (on a disk that survives restarts)",
            )
        return Path(path).parent / "collector-log"


_CACHE: dict[str, Settings] = {}


def get_settings() -> Settings:
    """The process's settings, read once and cached; :func:`override_settings` replaces them."""
    cached = _CACHE.get("settings")
    if cached is not None:
        return cached
    try:
        settings = Settings()
    except ConfigError:
        raise
    except Exception as exc:  # pydantic's ValidationError lists every bad field
        raise ConfigError(
            f"invalid configuration: {exc}",
            hint=f"check the TOUCHPOINT_* environment variables and {config_file_path()}",
        ) from exc
    _CACHE["settings"] = settings
    return settings


def override_settings(**changes: Any) -> Settings:
    """Replace the cached settings with a validated copy carrying ``changes`` (``--data``, tests)."""
    merged = get_settings().model_dump() | changes
    try:
        settings = Settings.model_validate(merged)
    except Exception as exc:
        raise ConfigError(f"invalid setting: {exc}", hint="fix the value passed on the command line") from exc
    _CACHE["settings"] = settings
    return settings


def reset_settings() -> None:
    """Forget the cached settings so the next :func:`get_settings` reads file and environment again."""
    _CACHE.clear()
