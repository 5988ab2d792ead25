"""The one place that reads the environment.

Every other module receives its values from a :class:`Settings` instance. Paths default to
folders under ``data/`` in the project root so that ``make run`` works on a fresh clone.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WAREHOUSE_POOL = "calltrail_warehouse"  # one slot: DuckDB has one writer and readers conflict with it
TASK_RETRIES_VAR = "CALLTRAIL_TASK_RETRIES"  # `calltrail run` sets it to 0 for its `airflow dags test` runs


class ConfigurationError(ValueError):
    """A setting has a value calltrail cannot use; the message names the variable."""


def _int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ConfigurationError(f"{name}={value} must be at least {minimum}")
    return value


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ConfigurationError(f"{name}={value} must not be negative")
    return value


def _positive(env: dict[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if value == 0:
        raise ConfigurationError(f"{name}=0 must be more than 0")
    return value


def _percent(env: dict[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if value >= 100:
        raise ConfigurationError(f"{name}={value:g} must be below 100 (a share of the daily API requests)")
    return value


def _choice(env: dict[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in allowed:
        raise ConfigurationError(f"{name}={value!r}: use one of {', '.join(allowed)}")
    return value


def _path(env: dict[str, str], name: str, default: Path) -> Path:
    raw = env.get(name)
    return Path(raw).expanduser().resolve() if raw else default


@dataclass(frozen=True)
class SalesforceSettings:
    conn_id: str = "salesforce_default"
    bizible_id_field: str = "bizible2__BizibleId__c"
    touchpoint_date_field: str = "bizible2__Bizible_Touchpoint_Date__c"
    overlap_minutes: int = 15
    max_attempts: int = 5  # per API call, for what can recover (5xx, timeouts, broken bodies)
    backoff_seconds: float = 2.0
    bulk_page_size: int = 50_000
    connect_attempts: int = 3  # per API call when the host cannot be reached at all
    max_backoff_seconds: float = 60.0  # cap of one wait; a longer Retry-After fails the call
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 120.0
    api_reserve_percent: float = 10.0  # share of the org's daily API requests left to other integrations
    # Above this many Tasks an extraction (or the reconciliation's Id list) uses Bulk API 2.0
    # queryAll, at or below it REST queryAll; decided by a COUNT() through queryAll.
    bulk_threshold: int = 10_000
    # Reconciliation of deletes beyond the Recycle Bin: a cron expression or preset, or "off".
    reconcile_schedule: str | None = "0 4 * * 0"
    # The reconciliation refuses to mark more than this share of the lake's live Tasks deleted.
    reconcile_max_delete_share: float = 0.5


_CRON_PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly", "@annually", "@midnight")


def _schedule(env: dict[str, str], name: str, default: str) -> str | None:
    """A cron expression (five fields) or an Airflow preset; ``off`` or ``none`` for manual runs only."""
    value = " ".join((env.get(name) or default).split())
    if value.lower() in ("off", "none"):
        return None
    if value.lower() in _CRON_PRESETS:
        return value.lower()
    fields = value.split(" ")
    if len(fields) != 5 or not all(re.fullmatch(r"[0-9A-Za-z*/,?#LW-]+", f) for f in fields):
        raise ConfigurationError(
            f"{name}={value!r} is not a schedule: give five cron fields (e.g. '0 4 * * 0', Sundays 04:00 UTC), "
            f"a preset ({', '.join(_CRON_PRESETS)}), or 'off' to run it only by hand")
    return value


# Field-population checks (Great Expectations) with two thresholds each: the share of rows that
# must pass (GX ``mostly``). Below ``warn`` the run alerts and continues; below ``error`` it fails
# before the marts are published. Environment: CALLTRAIL_DQ_<CHECK>_WARN / CALLTRAIL_DQ_<CHECK>_ERROR.
DEFAULT_THRESHOLDS: dict[str, tuple[float, float]] = {
    "call_bizible_id_population": (0.90, 0.75),
    "call_bizible_id_format": (0.98, 0.90),
    "call_task_type_population": (0.80, 0.50),
    "session_landing_page_population": (0.99, 0.95),
    "touchpoint_landing_page_population": (0.99, 0.95),
}
# Task.Type values expected as touchpoint types: Salesforce's standard picklist (Call, Email, Meeting,
# Other) and the call types vendors write. Any other value still becomes a touchpoint type; the check
# `touchpoint_type_known` only warns and names it, so an org adds its own values here.
DEFAULT_TASK_TYPES = ("Call", "Phone Call", "Inbound Call", "Outbound Call", "Email", "Meeting", "Other")


@dataclass(frozen=True)
class Threshold:
    warn: float
    error: float


@dataclass(frozen=True)
class TrendSettings:
    """This run's metrics against the median of recent published runs."""

    factor: float = 2.0  # alert when a metric moves by more than this factor either way
    min_change: float = 0.05  # ... and, for shares, by at least this much in absolute terms
    runs: int = 7  # how many recent runs form the baseline
    min_runs: int = 3  # no trend alert before this many runs are recorded
    severity: str = "warn"


@dataclass(frozen=True)
class FreshnessSettings:
    """dbt source freshness: hours since rows last arrived in the lake (``_loaded_at``)."""

    web_events_warn_hours: int = 6
    web_events_error_hours: int = 24
    salesforce_task_warn_hours: int = 24
    salesforce_task_error_hours: int = 72


@dataclass(frozen=True)
class AlertSettings:
    slack_conn_id: str = "slack_alerts"
    smtp_conn_id: str = "smtp_alerts"
    emails: tuple[str, ...] = ()
    max_record_ids: int = 10


@dataclass(frozen=True)
class QualitySettings:
    thresholds: dict[str, Threshold] = field(
        default_factory=lambda: {k: Threshold(*v) for k, v in DEFAULT_THRESHOLDS.items()})
    task_types: tuple[str, ...] = DEFAULT_TASK_TYPES
    raw_max_rows: int = 500_000  # raw-lake checks read at most this many of the newest rows per dataset
    # The recent window: threshold checks and trend figures also run over the rows whose event time
    # (call time, session start, event time) falls in the last ``window_days`` days before the audit.
    window_days: int = 7
    # A window check (and a trend share) is judged only over at least this many rows; fewer are
    # reported as not judged, so a quiet week cannot fail the run on three calls.
    window_min_rows: int = 100
    trend: TrendSettings = field(default_factory=TrendSettings)
    freshness: FreshnessSettings = field(default_factory=FreshnessSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)


def _share(env: dict[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if value > 1:
        raise ConfigurationError(f"{name}={value} must be a share between 0 and 1")
    return value


@dataclass(frozen=True)
class Settings:
    landing_dir: Path
    lake_dir: Path
    warehouse: Path
    airflow_home: Path = PROJECT_ROOT / "data" / "airflow"
    demo_mode: str = "auto"
    demo_visitors: int = 400
    ingest_memory_limit: str = "2GB"
    # A landing file modified within this many seconds is watched that long before it is read, and
    # left for the next run if it still changes (a sender still writing it).
    landing_settle_seconds: float = 10.0
    # How long calltrail (and dbt) wait for another process to release the DuckDB warehouse before
    # they fail with a message that names it.
    warehouse_lock_wait_seconds: float = 60.0
    salesforce: SalesforceSettings = field(default_factory=SalesforceSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    dbt_target: str = "duckdb"
    dbt_duckdb_memory_limit: str = "3500MB"
    dbt_docs_dir: Path = PROJECT_ROOT / "data" / "dbt_docs"
    # dbt's target folder (manifest, run artifacts); two installations sharing a checkout need one each.
    dbt_target_dir: Path = PROJECT_ROOT / "dbt_project" / "target"
    data_docs_dir: Path = PROJECT_ROOT / "data" / "gx_data_docs"
    data_docs_url: str = ""  # where the Data Docs folder is served, if it is; else a file:// link
    airflow_host: str = "127.0.0.1"  # where `make airflow` serves the UI and API
    airflow_port: int = 8080
    # Scheduler retries of the tasks that call a remote service (the Salesforce API extraction).
    # `calltrail run` (make run) sets CALLTRAIL_TASK_RETRIES=0 for its `airflow dags test` runs: it is
    # interactive and must not wait out retry delays; the scheduler of `make airflow` keeps them.
    task_retries: int = 2
    task_retry_delay_minutes: float = 5.0
    # More quarantined rows than this in one ingestion task run raise an alert (warn).
    quarantine_alert_rows: int = 100
    # The process environment as read once here, for the child processes calltrail starts.
    environ: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def dbt_project_dir(self) -> Path:
        return PROJECT_ROOT / "dbt_project"

    @property
    def dbt_manifest(self) -> Path:
        return self.dbt_target_dir / "manifest.json"

    @property
    def alerts_file(self) -> Path:
        """Every alert as one JSON line, whichever channels also received it."""
        return self.warehouse.parent / "alerts.jsonl"

    @property
    def missing_bizible_id_csv(self) -> Path:
        """The calls-missing-BizibleId list, for hand-off to the call-tracking vendor."""
        return self.warehouse.parent / "calls_missing_bizible_id.csv"

    @property
    def data_docs_index(self) -> str:
        if self.data_docs_url:
            return f"{self.data_docs_url}/index.html"
        return (self.data_docs_dir / "index.html").as_uri()

    @property
    def task_landing_dir(self) -> Path:
        return self.landing_dir / "salesforce" / "task"

    @property
    def web_landing_dir(self) -> Path:
        return self.landing_dir / "web_events"


def _quality(env: dict[str, str]) -> QualitySettings:
    thresholds = {}
    for name, (warn, error) in DEFAULT_THRESHOLDS.items():
        prefix = f"CALLTRAIL_DQ_{name.upper()}"
        t = Threshold(_share(env, f"{prefix}_WARN", warn), _share(env, f"{prefix}_ERROR", error))
        if t.error > t.warn:
            raise ConfigurationError(f"{prefix}_ERROR={t.error} is above {prefix}_WARN={t.warn}: "
                                     "the error threshold must not be stricter than the warning one")
        thresholds[name] = t
    fresh = FreshnessSettings(
        web_events_warn_hours=_int(env, "CALLTRAIL_FRESHNESS_WEB_EVENTS_WARN_HOURS", 6, minimum=1),
        web_events_error_hours=_int(env, "CALLTRAIL_FRESHNESS_WEB_EVENTS_ERROR_HOURS", 24, minimum=1),
        salesforce_task_warn_hours=_int(env, "CALLTRAIL_FRESHNESS_SALESFORCE_TASK_WARN_HOURS", 24, minimum=1),
        salesforce_task_error_hours=_int(env, "CALLTRAIL_FRESHNESS_SALESFORCE_TASK_ERROR_HOURS", 72, minimum=1),
    )
    trend = TrendSettings(
        factor=_float(env, "CALLTRAIL_DQ_TREND_FACTOR", 2.0),
        min_change=_share(env, "CALLTRAIL_DQ_TREND_MIN_CHANGE", 0.05),
        runs=_int(env, "CALLTRAIL_DQ_TREND_RUNS", 7, minimum=1),
        min_runs=_int(env, "CALLTRAIL_DQ_TREND_MIN_RUNS", 3, minimum=1),
        severity=_choice(env, "CALLTRAIL_DQ_TREND_SEVERITY", "warn", ("warn", "error")),
    )
    if trend.factor <= 1:
        raise ConfigurationError(f"CALLTRAIL_DQ_TREND_FACTOR={trend.factor} must be above 1")
    alerts = AlertSettings(
        slack_conn_id=env.get("CALLTRAIL_ALERT_SLACK_CONN_ID") or "slack_alerts",
        smtp_conn_id=env.get("CALLTRAIL_ALERT_SMTP_CONN_ID") or "smtp_alerts",
        emails=_list(env, "CALLTRAIL_ALERT_EMAILS", ()),
    )
    return QualitySettings(
        thresholds=thresholds,
        task_types=_list(env, "CALLTRAIL_DQ_TASK_TYPES", DEFAULT_TASK_TYPES),
        raw_max_rows=_int(env, "CALLTRAIL_DQ_RAW_MAX_ROWS", 500_000, minimum=1),
        window_days=_int(env, "CALLTRAIL_DQ_WINDOW_DAYS", 7, minimum=1),
        window_min_rows=_int(env, "CALLTRAIL_DQ_WINDOW_MIN_ROWS", 100, minimum=1),
        trend=trend, freshness=fresh, alerts=alerts,
    )


def _list(env: dict[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return tuple(v.strip() for v in raw.replace(";", ",").split(",") if v.strip())


def load(env: dict[str, str] | None = None) -> Settings:
    """Read calltrail's settings from ``env`` (default: the process environment)."""
    env = dict(os.environ if env is None else env)
    data = _path(env, "CALLTRAIL_DATA_DIR", PROJECT_ROOT / "data")
    sf = SalesforceSettings(
        conn_id=env.get("CALLTRAIL_SF_CONN_ID") or "salesforce_default",
        bizible_id_field=env.get("CALLTRAIL_SF_BIZIBLE_ID_FIELD") or "bizible2__BizibleId__c",
        touchpoint_date_field=env.get("CALLTRAIL_SF_TOUCHPOINT_DATE_FIELD")
        or "bizible2__Bizible_Touchpoint_Date__c",
        overlap_minutes=_int(env, "CALLTRAIL_SF_OVERLAP_MINUTES", 15),
        max_attempts=_int(env, "CALLTRAIL_SF_MAX_ATTEMPTS", 5, minimum=1),
        backoff_seconds=_float(env, "CALLTRAIL_SF_BACKOFF_SECONDS", 2.0),
        bulk_page_size=_int(env, "CALLTRAIL_SF_BULK_PAGE_SIZE", 50_000, minimum=1),
        connect_attempts=_int(env, "CALLTRAIL_SF_CONNECT_ATTEMPTS", 3, minimum=1),
        max_backoff_seconds=_float(env, "CALLTRAIL_SF_MAX_BACKOFF_SECONDS", 60.0),
        connect_timeout_seconds=_positive(env, "CALLTRAIL_SF_CONNECT_TIMEOUT_SECONDS", 10.0),
        read_timeout_seconds=_positive(env, "CALLTRAIL_SF_READ_TIMEOUT_SECONDS", 120.0),
        api_reserve_percent=_percent(env, "CALLTRAIL_SF_API_RESERVE_PERCENT", 10.0),
        bulk_threshold=_int(env, "CALLTRAIL_SF_BULK_THRESHOLD", 10_000),
        reconcile_schedule=_schedule(env, "CALLTRAIL_SF_RECONCILE_SCHEDULE", "0 4 * * 0"),
        reconcile_max_delete_share=_share(env, "CALLTRAIL_SF_RECONCILE_MAX_DELETE_SHARE", 0.5),
    )
    return Settings(
        landing_dir=_path(env, "CALLTRAIL_LANDING_DIR", data / "landing"),
        lake_dir=_path(env, "CALLTRAIL_LAKE_DIR", data / "lake"),
        warehouse=_path(env, "CALLTRAIL_WAREHOUSE", data / "warehouse" / "calltrail.duckdb"),
        airflow_home=_path(env, "AIRFLOW_HOME", data / "airflow"),
        demo_mode=_choice(env, "CALLTRAIL_DEMO", "auto", ("auto", "always", "never")),
        demo_visitors=_int(env, "CALLTRAIL_DEMO_VISITORS", 400, minimum=1),
        ingest_memory_limit=env.get("CALLTRAIL_INGEST_MEMORY_LIMIT") or "2GB",
        landing_settle_seconds=_float(env, "CALLTRAIL_LANDING_SETTLE_SECONDS", 10.0),
        warehouse_lock_wait_seconds=_float(env, "CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS", 60.0),
        salesforce=sf,
        quality=_quality(env),
        dbt_target=env.get("CALLTRAIL_DBT_TARGET") or "duckdb",
        dbt_duckdb_memory_limit=env.get("CALLTRAIL_DBT_DUCKDB_MEMORY_LIMIT") or "3500MB",
        dbt_docs_dir=_path(env, "CALLTRAIL_DBT_DOCS_DIR", data / "dbt_docs"),
        dbt_target_dir=_path(env, "CALLTRAIL_DBT_TARGET_DIR", PROJECT_ROOT / "dbt_project" / "target"),
        data_docs_dir=_path(env, "CALLTRAIL_DATA_DOCS_DIR", data / "gx_data_docs"),
        data_docs_url=(env.get("CALLTRAIL_DATA_DOCS_URL") or "").rstrip("/"),
        airflow_host=env.get("CALLTRAIL_AIRFLOW_HOST") or "127.0.0.1",
        airflow_port=_int(env, "CALLTRAIL_AIRFLOW_PORT", 8080, minimum=1),
        task_retries=_int(env, TASK_RETRIES_VAR, 2),
        task_retry_delay_minutes=_float(env, "CALLTRAIL_TASK_RETRY_DELAY_MINUTES", 5.0),
        quarantine_alert_rows=_int(env, "CALLTRAIL_QUARANTINE_ALERT_ROWS", 100),
        environ=env,
    )
