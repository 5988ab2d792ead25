"""The one place that reads the environment.

Every other module receives its values from a :class:`Settings` instance. Each setting is one row,
declared where its field is: ``name: type = _row(VARIABLE, default, parser, description)``. The
default is written once, as text in the variable's own syntax, and goes through the row's parser
like any value set in the environment; ``TABLE`` lists every row with the field it fills.

Paths default to folders under ``data/`` in the project root (``<data>/...``: under
``CALLTRAIL_DATA_DIR``) so that ``make run`` works on a fresh clone.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from calltrail.dbt_project import project_var

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WAREHOUSE_POOL = "calltrail_warehouse"  # one slot: DuckDB has one writer and readers conflict with it
LANDING_SETTLE_VAR = "CALLTRAIL_LANDING_SETTLE_SECONDS"  # `calltrail run` sets it to 0 for the demo files it wrote
TASK_RETRIES_VAR = "CALLTRAIL_TASK_RETRIES"  # `calltrail run` sets it to 0 for its `airflow dags test` runs
DATA = "<data>"  # in a path's default: the folder CALLTRAIL_DATA_DIR names
DUCKDB_BUILD_SCHEMA = "main"  # dbt-duckdb's default schema: the profile names none, so dbt builds here


class ConfigurationError(ValueError):
    """A setting has a value calltrail cannot use; the message names the variable."""


# A parser turns a variable's text into its value, or raises ConfigurationError naming the variable.
Parser = Callable[[str, str], Any]


def _text(name: str, raw: str) -> str:
    return raw.strip()


def _url(name: str, raw: str) -> str:
    return raw.strip().rstrip("/")


def _whole(minimum: int = 0) -> Parser:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigurationError(f"{name}={raw!r} is not a whole number") from None
        if value < minimum:
            raise ConfigurationError(f"{name}={value} must be at least {minimum}")
        return value

    return parse


def _port(name: str, raw: str) -> int:
    value = _whole(1)(name, raw)
    if value > 65535:
        raise ConfigurationError(f"{name}={value} is not a port: 1 to 65535")
    return value


# Ports read by the dbt profile, whose `| int` turns text into 0 without a word, and by calltrail's
# connections: checked when the settings are read, so that every command refuses them first.
PORTS_READ_ELSEWHERE = ("CALLTRAIL_PG_PORT", "CALLTRAIL_SPARK_PORT")
# The same for the schemas: dbt quotes a schema's name, calltrail's own SQL does not, so another
# name (upper case, a hyphen) would have them read and write two different schemas.
SCHEMAS_READ_ELSEWHERE = ("CALLTRAIL_PG_SCHEMA", "CALLTRAIL_SPARK_SCHEMA")


def _schema(name: str, raw: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", raw):
        raise ConfigurationError(f"{name}={raw!r}: a schema's name here is lower-case letters, digits and _, "
                                 "not starting with a digit")
    return raw


def _number(name: str, raw: str) -> float:
    """A number, not negative."""
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ConfigurationError(f"{name}={value} must not be negative")
    return value


def _seconds_at_least(minimum: float) -> Parser:
    def parse(name: str, raw: str) -> float:
        value = _number(name, raw)
        if value < minimum:
            raise ConfigurationError(f"{name}={value:g} must be at least {minimum:g} (seconds)")
        return value

    return parse


def _positive(name: str, raw: str) -> float:
    value = _number(name, raw)
    if value == 0:
        raise ConfigurationError(f"{name}=0 must be more than 0")
    return value


def _percent(name: str, raw: str) -> float:
    value = _number(name, raw)
    if value >= 100:
        raise ConfigurationError(f"{name}={value:g} must be below 100 (a share of the daily API requests)")
    return value


def _share(name: str, raw: str) -> float:
    value = _number(name, raw)
    if value > 1:
        raise ConfigurationError(f"{name}={value} must be a share between 0 and 1")
    return value


def _factor(name: str, raw: str) -> float:
    value = _number(name, raw)
    if value <= 1:
        raise ConfigurationError(f"{name}={value} must be above 1")
    return value


def _choice(*allowed: str) -> Parser:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ConfigurationError(f"{name}={value!r}: use one of {', '.join(allowed)}")
        return value

    return parse


_CRON_PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly", "@annually", "@midnight")


def _schedule(name: str, raw: str) -> str | None:
    """A cron expression (five fields) or an Airflow preset; ``off`` or ``none`` for manual runs only."""
    value = " ".join(raw.split())
    if value.lower() in ("off", "none"):
        return None
    if value.lower() in _CRON_PRESETS:
        return value.lower()
    parts = value.split(" ")
    if len(parts) != 5 or not all(re.fullmatch(r"[0-9A-Za-z*/,?#LW-]+", f) for f in parts):
        raise ConfigurationError(
            f"{name}={value!r} is not a schedule: give five cron fields (e.g. '0 4 * * 0', Sundays 04:00 UTC), "
            f"a preset ({', '.join(_CRON_PRESETS)}), or 'off' to run it only by hand")
    return value


def _items(name: str, raw: str) -> tuple[str, ...]:
    """A list, comma- or semicolon-separated."""
    return tuple(v.strip() for v in raw.replace(";", ",").split(",") if v.strip())


def _path(name: str, raw: str) -> Path:
    """A path as given: relative to the working folder, or starting with ``~``."""
    return Path(raw).expanduser().resolve()


@dataclass(frozen=True)
class Setting:
    """One row of the table: a variable, its default, how it is read, what it means, what it fills."""

    variable: str
    # As it would be written in the environment. A path's default is relative to the checkout, and
    # ``<data>/...`` is under CALLTRAIL_DATA_DIR.
    default: str
    parse: Parser = field(repr=False)
    description: str
    fills: str = ""  # the field of Settings, e.g. "salesforce.overlap_minutes"; set when TABLE is built

    def read(self, env: Mapping[str, str], data_dir: Path | None = None) -> Any:
        """The value in ``env``; the default when the variable is unset or blank."""
        raw = env.get(self.variable)
        if raw is None or raw.strip() == "":
            return self.default_value(data_dir)
        return self.parse(self.variable, raw)

    def default_value(self, data_dir: Path | None = None) -> Any:
        if self.parse is not _path:
            return self.parse(self.variable, self.default)
        if self.default.startswith(DATA + "/"):
            base = data_dir if data_dir is not None else DATA_DIR.default_value()
            return base / self.default.removeprefix(DATA + "/")
        return PROJECT_ROOT / self.default


def _row(variable: str, default: str, parse: Parser, description: str) -> Any:
    """A dataclass field read from ``variable``; its default is the row's default."""
    row = Setting(variable, default, parse, description)
    return field(default=row.default_value(), metadata={"setting": row})


DATA_DIR = Setting("CALLTRAIL_DATA_DIR", "data", _path,
                   "parent of every location below that is not set itself")


@dataclass(frozen=True)
class SalesforceSettings:
    conn_id: str = _row("CALLTRAIL_SF_CONN_ID", "salesforce_default", _text,
                        "the Airflow connection calltrail reads Salesforce through")
    bizible_id_field: str = _row("CALLTRAIL_SF_BIZIBLE_ID_FIELD", "bizible2__BizibleId__c", _text,
                                 "the Task field the call-tracking vendor writes the BizibleId into")
    touchpoint_date_field: str = _row("CALLTRAIL_SF_TOUCHPOINT_DATE_FIELD", "bizible2__Bizible_Touchpoint_Date__c",
                                      _text, "the Task field with the interaction time")
    overlap_minutes: int = _row("CALLTRAIL_SF_OVERLAP_MINUTES", "15", _whole(),
                                "each extraction starts reading this many minutes before the watermark")
    max_attempts: int = _row("CALLTRAIL_SF_MAX_ATTEMPTS", "5", _whole(1),
                             "attempts per API call for what can recover (5xx, timeouts, broken bodies)")
    backoff_seconds: float = _row("CALLTRAIL_SF_BACKOFF_SECONDS", "2", _number,
                                  "first wait between attempts; doubles per attempt")
    bulk_page_size: int = _row("CALLTRAIL_SF_BULK_PAGE_SIZE", "50000", _whole(1),
                               "records per Bulk API 2.0 result page")
    connect_attempts: int = _row("CALLTRAIL_SF_CONNECT_ATTEMPTS", "3", _whole(1),
                                 "attempts per API call when the host cannot be reached at all")
    max_backoff_seconds: float = _row("CALLTRAIL_SF_MAX_BACKOFF_SECONDS", "60", _number,
                                      "longest single wait; a longer Retry-After fails the call")
    connect_timeout_seconds: float = _row("CALLTRAIL_SF_CONNECT_TIMEOUT_SECONDS", "10", _positive,
                                          "TCP/TLS connect timeout of every request")
    read_timeout_seconds: float = _row("CALLTRAIL_SF_READ_TIMEOUT_SECONDS", "120", _positive,
                                       "longest wait for the next bytes of an answer")
    api_reserve_percent: float = _row("CALLTRAIL_SF_API_RESERVE_PERCENT", "10", _percent,
                                      "share of the org's daily API requests left to other integrations")
    # Decided by a COUNT() through queryAll: above it Bulk API 2.0 queryAll, at or below it REST queryAll.
    bulk_threshold: int = _row("CALLTRAIL_SF_BULK_THRESHOLD", "10000", _whole(),
                               "above this many records an extraction or the Id listing uses Bulk API 2.0")
    reconcile_schedule: str | None = _row("CALLTRAIL_SF_RECONCILE_SCHEDULE", "0 4 * * 0", _schedule,
                                          "when the reconciliation of deletes runs: cron, preset, or off")
    reconcile_max_delete_share: float = _row("CALLTRAIL_SF_RECONCILE_MAX_DELETE_SHARE", "0.5", _share,
                                             "largest share of the lake's live records of an object one "
                                             "reconciliation may mark deleted")


# Field-population checks (Great Expectations) with two thresholds each: the share of rows that
# must pass (GX ``mostly``). Below ``warn`` the run alerts and continues; below ``error`` it fails
# before the marts are published. Environment: CALLTRAIL_DQ_<CHECK>_WARN / CALLTRAIL_DQ_<CHECK>_ERROR.
DEFAULT_THRESHOLDS: dict[str, tuple[float, float]] = {
    "call_bizible_id_population": (0.90, 0.75),
    "call_bizible_id_format": (0.98, 0.90),
    "call_task_type_population": (0.80, 0.50),
    "session_landing_page_population": (0.99, 0.95),
    "touchpoint_landing_page_population": (0.99, 0.95),
    "opportunity_people_population": (0.95, 0.50),
}
# Task.Type values expected as touchpoint types: Salesforce's standard picklist (Call, Email, Meeting,
# Other) and the call types vendors write. Any other value still becomes a touchpoint type; the check
# `touchpoint_type_known` only warns and names it, so an org adds its own values here.
DEFAULT_TASK_TYPES = ("Call", "Phone Call", "Inbound Call", "Outbound Call", "Email", "Meeting", "Other")


def _threshold_rows() -> tuple[Setting, ...]:
    """Two rows per check, filling ``<check>.warn`` and ``<check>.error`` of ``quality.thresholds``."""
    return tuple(
        Setting(f"CALLTRAIL_DQ_{check.upper()}_{level.upper()}", str(value), _share,
                f"share of rows that must pass {check} before a run {'warns' if level == 'warn' else 'fails'}",
                fills=f"{check}.{level}")
        for check, pair in DEFAULT_THRESHOLDS.items() for level, value in zip(("warn", "error"), pair, strict=True))


@dataclass(frozen=True)
class Threshold:
    warn: float
    error: float


@dataclass(frozen=True)
class TrendSettings:
    """This run's metrics against the median of recent published runs."""

    factor: float = _row("CALLTRAIL_DQ_TREND_FACTOR", "2", _factor,
                         "a trend figure alerts when it moves beyond this factor of its baseline")
    min_change: float = _row("CALLTRAIL_DQ_TREND_MIN_CHANGE", "0.05", _share,
                             "shares must also move by at least this much")
    runs: int = _row("CALLTRAIL_DQ_TREND_RUNS", "7", _whole(1), "published runs that form the baseline")
    min_runs: int = _row("CALLTRAIL_DQ_TREND_MIN_RUNS", "3", _whole(1),
                         "no trend comparison before this many runs are recorded")
    severity: str = _row("CALLTRAIL_DQ_TREND_SEVERITY", "warn", _choice("warn", "error"),
                         "the severity of a trend alert")


@dataclass(frozen=True)
class FreshnessSettings:
    """dbt source freshness: hours since rows last arrived in the lake (``_loaded_at``)."""

    web_events_warn_hours: int = _row("CALLTRAIL_FRESHNESS_WEB_EVENTS_WARN_HOURS", "6", _whole(1),
                                      "hours since web events last reached the lake before a warning")
    web_events_error_hours: int = _row("CALLTRAIL_FRESHNESS_WEB_EVENTS_ERROR_HOURS", "24", _whole(1),
                                       "hours since web events last reached the lake before an error")
    salesforce_task_warn_hours: int = _row("CALLTRAIL_FRESHNESS_SALESFORCE_TASK_WARN_HOURS", "24", _whole(1),
                                           "hours since Tasks last reached the lake before a warning")
    salesforce_task_error_hours: int = _row("CALLTRAIL_FRESHNESS_SALESFORCE_TASK_ERROR_HOURS", "72", _whole(1),
                                            "hours since Tasks last reached the lake before an error")


@dataclass(frozen=True)
class AlertSettings:
    slack_conn_id: str = _row("CALLTRAIL_ALERT_SLACK_CONN_ID", "slack_alerts", _text,
                              "the Airflow connection for Slack alerts")
    smtp_conn_id: str = _row("CALLTRAIL_ALERT_SMTP_CONN_ID", "smtp_alerts", _text,
                             "the Airflow connection for e-mail alerts")
    emails: tuple[str, ...] = _row("CALLTRAIL_ALERT_EMAILS", "", _items, "recipients of the e-mail alerts")
    max_record_ids: int = 10  # not a setting: record Ids an alert lists before "and N more"


@dataclass(frozen=True)
class QualitySettings:
    thresholds: dict[str, Threshold] = field(
        default_factory=lambda: {k: Threshold(*v) for k, v in DEFAULT_THRESHOLDS.items()},
        metadata={"settings": _threshold_rows()})
    task_types: tuple[str, ...] = _row("CALLTRAIL_DQ_TASK_TYPES", ",".join(DEFAULT_TASK_TYPES), _items,
                                       "Task Types expected as touchpoint types")
    raw_max_rows: int = _row("CALLTRAIL_DQ_RAW_MAX_ROWS", "500000", _whole(1),
                             "newest lake rows per dataset the raw-lake checks read")
    # The recent window: threshold checks and trend figures also run over the rows whose event time
    # (call time, session start, event time) falls in the last ``window_days`` days before the audit.
    window_days: int = _row("CALLTRAIL_DQ_WINDOW_DAYS", "7", _whole(1), "length of the recent window, in days")
    # A window check (and a trend share) is judged only over at least this many rows; fewer are
    # reported as not judged, so a quiet week cannot fail the run on three calls.
    window_min_rows: int = _row("CALLTRAIL_DQ_WINDOW_MIN_ROWS", "100", _whole(1),
                                "rows a recent check or a trend share needs to be judged")
    trend: TrendSettings = field(default_factory=TrendSettings)
    freshness: FreshnessSettings = field(default_factory=FreshnessSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default=DATA_DIR.default_value(), metadata={"setting": DATA_DIR})
    landing_dir: Path = _row("CALLTRAIL_LANDING_DIR", f"{DATA}/landing", _path, "files that arrive from outside")
    lake_dir: Path = _row("CALLTRAIL_LAKE_DIR", f"{DATA}/lake", _path, "raw data as Parquet, with quarantine/")
    warehouse: Path = _row("CALLTRAIL_WAREHOUSE", f"{DATA}/warehouse/calltrail.duckdb", _path,
                           "the DuckDB file dbt builds")
    airflow_home: Path = _row("AIRFLOW_HOME", f"{DATA}/airflow", _path, "the local Airflow's home")
    demo_mode: str = _row("CALLTRAIL_DEMO", "auto", _choice("auto", "always", "never"),
                          "when the demo data set is generated")
    demo_visitors: int = _row("CALLTRAIL_DEMO_VISITORS", "400", _whole(1), "size of the demo data set")
    # One of the dbt var calltrail__attribution_models: `calltrail` checks it (settings reads no var).
    summary_model: str = _row("CALLTRAIL_SUMMARY_MODEL", "full_path", _text,
                              "the attribution model whose revenue by channel the summary shows")
    ingest_memory_limit: str = _row("CALLTRAIL_INGEST_MEMORY_LIMIT", "2GB", _text,
                                    "DuckDB's memory per ingestion task")
    # A landing file modified within this many seconds is watched that long before it is read, and
    # left for the next run if it still changes (a sender still writing it).
    landing_settle_seconds: float = _row(LANDING_SETTLE_VAR, "10", _number,
                                         "how long a just-modified landing file is watched before it is read")
    # How long calltrail (and dbt) wait for another process to release the DuckDB warehouse before
    # they fail with a message that names it.
    warehouse_lock_wait_seconds: float = _row("CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS", "60", _number,
                                              "how long to wait for another process to release the warehouse")
    salesforce: SalesforceSettings = field(default_factory=SalesforceSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    dbt_target: str = _row("CALLTRAIL_DBT_TARGET", "duckdb", _choice("duckdb", "postgres", "spark"),
                           "the dbt target in dbt_project/profiles.yml")
    spark_warehouse_dir: Path = _row("CALLTRAIL_SPARK_WAREHOUSE_DIR", f"{DATA}/warehouse/spark", _path,
                                     "the spark target's tables and metastore (session method)")
    # session: Spark in the process (pyspark); thrift: a Spark Thrift Server, the profile's spark_thrift output.
    spark_method: str = _row("CALLTRAIL_SPARK_METHOD", "session", _choice("session", "thrift"),
                             "how the spark target reaches Spark: in the process, or a Spark Thrift Server")
    # Read by the profile's spark_thrift output (dbt, and calltrail's connection): checked here.
    spark_auth: str = _row("CALLTRAIL_SPARK_AUTH", "none", _choice("none", "ldap", "kerberos"),
                           "how the Spark Thrift Server authenticates calltrail")
    spark_use_ssl: str = _row("CALLTRAIL_SPARK_USE_SSL", "false", _choice("true", "false"),
                              "whether the connection to the Spark Thrift Server uses TLS")
    # A writers' lock on a Spark Thrift Server whose holder gave no heartbeat for this long is taken
    # for dead (calltrail.warehouse.thrift_lock); the holder renews it every 15 s, or every quarter
    # of this limit when that is less.
    spark_lock_stale_seconds: float = _row("CALLTRAIL_SPARK_LOCK_STALE_SECONDS", "300", _seconds_at_least(10),
                                           "after how long without a heartbeat a Thrift Server's writers' lock is taken for dead")
    dbt_duckdb_memory_limit: str = _row("CALLTRAIL_DBT_DUCKDB_MEMORY_LIMIT", "3500MB", _text,
                                        "DuckDB's memory_limit for the dbt build")
    dbt_docs_dir: Path = _row("CALLTRAIL_DBT_DOCS_DIR", f"{DATA}/dbt_docs", _path, "where each run writes the dbt docs")
    # dbt's target folder (manifest, run artifacts); two installations sharing a checkout need one each.
    dbt_target_dir: Path = _row("CALLTRAIL_DBT_TARGET_DIR", "dbt_project/target", _path, "dbt's target folder")
    data_docs_dir: Path = _row("CALLTRAIL_DATA_DOCS_DIR", f"{DATA}/gx_data_docs", _path,
                               "where each audit writes the Great Expectations Data Docs")
    data_docs_url: str = _row("CALLTRAIL_DATA_DOCS_URL", "", _url,
                              "where the Data Docs folder is served; empty: a file:// link")
    report_dir: Path = _row("CALLTRAIL_REPORT_DIR", f"{DATA}/report", _path,
                            "where each publish writes the report page (index.html and its assets)")
    airflow_host: str = _row("CALLTRAIL_AIRFLOW_HOST", "127.0.0.1", _text,
                             "where `make airflow` serves the UI and the API")
    airflow_port: int = _row("CALLTRAIL_AIRFLOW_PORT", "8080", _port, "its port")
    # Scheduler retries of the tasks that call a remote service (the Salesforce API extraction).
    # `calltrail run` (make run) sets CALLTRAIL_TASK_RETRIES=0 for its `airflow dags test` runs: it is
    # interactive and must not wait out retry delays; the scheduler of `make airflow` keeps them.
    task_retries: int = _row(TASK_RETRIES_VAR, "2", _whole(), "scheduler retries of the tasks that call Salesforce")
    task_retry_delay_minutes: float = _row("CALLTRAIL_TASK_RETRY_DELAY_MINUTES", "5", _number,
                                           "the delay between those retries")
    # Every task of every DAG (Airflow's execution_timeout): a task still running after this long is
    # stopped, fails and alerts, so a hang cannot hold a DAG whose runs take turns (max_active_runs=1).
    task_timeout_minutes: float = _row("CALLTRAIL_TASK_TIMEOUT_MINUTES", "180", _number,
                                       "a task still running after this long is stopped and alerts; 0: no limit")
    # The last resorts for a task its timeout cannot reach (a call that never returns to Python, a
    # log handler that never returns, a frozen process): the task's own thread kills its process this
    # long after the limit (calltrail.airflow.timeouts), and `calltrail run`, whose DAGs run one task at
    # a time, stops a run in which no task ended for the limit plus this long.
    task_timeout_grace_minutes: float = _row(
        "CALLTRAIL_TASK_TIMEOUT_GRACE_MINUTES", "5", _number,
        "a task still running this long after its limit alerts and kills its process; `calltrail run` "
        "stops a run in which no task ended for the limit plus this long")
    quarantine_alert_rows: int = _row("CALLTRAIL_QUARANTINE_ALERT_ROWS", "100", _whole(),
                                      "more quarantined rows than this in one ingestion task raise an alert")
    # The warehouse's schemas besides the one dbt builds into (CALLTRAIL_PG_SCHEMA, CALLTRAIL_SPARK_SCHEMA;
    # `main` in the DuckDB file): two deployments that share a Spark metastore or a PostgreSQL
    # database give each its own names. The defaults are the dbt project's vars; calltrail passes
    # the values to every dbt command it runs (transform.dbt.dbt_vars).
    lake_schema: str = _row("CALLTRAIL_LAKE_SCHEMA", project_var("calltrail__lake_schema"), _schema,
                            "the lake's tables (PostgreSQL) or views (Spark) dbt reads; unused on DuckDB")
    publish_schema: str = _row("CALLTRAIL_PUBLISH_SCHEMA", project_var("calltrail__publish_schema"), _schema,
                               "the published marts, which consumers read")
    publish_log_schema: str = _row("CALLTRAIL_PUBLISH_LOG_SCHEMA", project_var("calltrail__publish_log_schema"),
                                   _schema, "the log of publications (table publications)")
    quality_schema: str = _row("CALLTRAIL_QUALITY_SCHEMA", "quality", _schema,
                               "the data-quality history of the runs (table run_metrics)")
    # The process environment as read once here, for the child processes calltrail starts.
    environ: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def dbt_project_dir(self) -> Path:
        return PROJECT_ROOT / "dbt_project"

    @property
    def build_schema(self) -> str:
        """The schema dbt builds into on the configured target (the audit area before publish)."""
        variable = {"postgres": "CALLTRAIL_PG_SCHEMA", "spark": "CALLTRAIL_SPARK_SCHEMA"}.get(self.dbt_target)
        if variable is None:
            return DUCKDB_BUILD_SCHEMA
        return self.environ.get(variable, "").strip() or profile_variables(self.dbt_output)[variable]

    @property
    def publications(self) -> str:
        """The table of the publication log, ``schema.table``."""
        return f"{self.publish_log_schema}.publications"

    @property
    def run_metrics(self) -> str:
        """The table of the data-quality history, ``schema.table``."""
        return f"{self.quality_schema}.run_metrics"

    @property
    def spark_thrift(self) -> bool:
        """Whether the warehouse is a Spark Thrift Server: the spark target with the thrift method."""
        return self.dbt_target == "spark" and self.spark_method == "thrift"

    @property
    def dbt_output(self) -> str:
        """The output of dbt_project/profiles.yml dbt runs with: the target's, but on Spark through
        a Thrift Server the output ``spark_thrift``."""
        return "spark_thrift" if self.spark_thrift else self.dbt_target

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
        return self.salesforce_landing_dir("task")

    def salesforce_landing_dir(self, folder: str) -> Path:
        """Files of one Salesforce object: ``landing/salesforce/<object in lower snake case>/``."""
        return self.landing_dir / "salesforce" / folder

    @property
    def web_landing_dir(self) -> Path:
        return self.landing_dir / "web_events"


def _rows(cls: type, prefix: str = "") -> Iterator[Setting]:
    for f in fields(cls):
        if "setting" in f.metadata:
            yield replace(f.metadata["setting"], fills=prefix + f.name)
        for row in f.metadata.get("settings", ()):
            yield replace(row, fills=f"{prefix}{f.name}.{row.fills}")
        if is_dataclass(f.default_factory):
            yield from _rows(f.default_factory, f"{prefix}{f.name}.")


# Every setting, in the order of the fields they fill.
TABLE: tuple[Setting, ...] = tuple(_rows(Settings))


def _build(cls: type, values: Mapping[str, Any], prefix: str = "") -> Any:
    """An instance of ``cls`` from the values read, keyed by the field they fill."""
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        key = prefix + f.name
        if key in values:
            kwargs[f.name] = values[key]
        elif "settings" in f.metadata:  # the thresholds: check -> Threshold(warn, error)
            kwargs[f.name] = {check: Threshold(values[f"{key}.{check}.warn"], values[f"{key}.{check}.error"])
                              for check in DEFAULT_THRESHOLDS}
        elif is_dataclass(f.default_factory):
            kwargs[f.name] = _build(f.default_factory, values, key + ".")
    return cls(**kwargs)


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read calltrail's settings from ``env`` (default: the process environment)."""
    env = dict(os.environ if env is None else env)
    data_dir = DATA_DIR.read(env)
    values = {row.fills: row.read(env, data_dir) for row in TABLE}
    settings: Settings = _build(Settings, values)
    for check, t in settings.quality.thresholds.items():
        if t.error > t.warn:
            prefix = f"CALLTRAIL_DQ_{check.upper()}"
            raise ConfigurationError(f"{prefix}_ERROR={t.error} is above {prefix}_WARN={t.warn}: "
                                     "the error threshold must not be stricter than the warning one")
    for variable in PORTS_READ_ELSEWHERE:
        if env.get(variable, "").strip():
            _port(variable, env[variable].strip())
    for variable in SCHEMAS_READ_ELSEWHERE:
        if variable in env:
            _schema(variable, env[variable])
    settings = replace(settings, environ=env)
    _distinct_schemas(settings)
    return settings


def _distinct_schemas(settings: Settings) -> None:
    """Each schema has one use: publish would copy the build onto itself, a lake view could replace
    a model of the same name."""
    build = {"duckdb": "the build schema (main in the DuckDB file)",
             "postgres": "CALLTRAIL_PG_SCHEMA", "spark": "CALLTRAIL_SPARK_SCHEMA"}[settings.dbt_target]
    uses = [(build, settings.build_schema), ("CALLTRAIL_LAKE_SCHEMA", settings.lake_schema),
            ("CALLTRAIL_PUBLISH_SCHEMA", settings.publish_schema),
            ("CALLTRAIL_PUBLISH_LOG_SCHEMA", settings.publish_log_schema),
            ("CALLTRAIL_QUALITY_SCHEMA", settings.quality_schema)]
    for i, (variable, name) in enumerate(uses):
        for other, other_name in uses[:i]:
            if name == other_name:
                raise ConfigurationError(f"{variable}={name} is the schema of {other} too: each of the "
                                         "warehouse's schemas needs a name of its own")


def in_use(settings: Settings) -> Iterator[tuple[Setting, Any]]:
    """Each row of the table with the value ``settings`` holds for it."""
    for row in TABLE:
        value: Any = settings
        for part in row.fills.split("."):
            value = value[part] if isinstance(value, dict) else getattr(value, part)
        yield row, value


def _as_text(value: Any) -> str:
    if value is None:
        return "off"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _line(variable: str, value: str, default: str, given: bool, meaning: str) -> str:
    origin = f"set; default {shlex.quote(default)}" if given else "default"
    return f"{variable}={shlex.quote(value)}  # {origin}: {meaning}"


# The variables of the warehouse's connection, which the dbt profile reads (its defaults are the
# profile's) and calltrail's connections read with it; the *_PASSWORD ones are never printed.
READ_BY_THE_PROFILE: dict[str, str] = {
    "CALLTRAIL_PG_HOST": "the PostgreSQL server; while it is not set, `calltrail run` starts a throwaway "
                         "server for the run instead (the scheduler needs one set)",
    "CALLTRAIL_PG_PORT": "the PostgreSQL server's port",
    "CALLTRAIL_PG_USER": "the user dbt and calltrail connect as",
    "CALLTRAIL_PG_PASSWORD": "that user's password",
    "CALLTRAIL_PG_DATABASE": "the database of the warehouse",
    "CALLTRAIL_PG_SCHEMA": "the schema dbt builds the models in",
    "CALLTRAIL_PG_SSLMODE": "TLS: libpq's sslmode (verify-full checks the server's certificate and name); "
                            "empty, libpq's prefer",
    "CALLTRAIL_PG_SSLROOTCERT": "the CA file that checks the server's certificate",
    "CALLTRAIL_SPARK_SCHEMA": "the schema dbt builds the models in",
    "CALLTRAIL_SPARK_MASTER": "where Spark runs: local[*] on this machine, or a cluster's master URL",
    "CALLTRAIL_SPARK_SHUFFLE_PARTITIONS": "the partitions of each shuffle",
    "CALLTRAIL_SPARK_DRIVER_MEMORY": "the Spark driver's heap",
    "CALLTRAIL_SPARK_HOST": "the Spark Thrift Server",
    "CALLTRAIL_SPARK_PORT": "the Spark Thrift Server's port",
    "CALLTRAIL_SPARK_USER": "the user dbt and calltrail connect as",
    "CALLTRAIL_SPARK_PASSWORD": "the password of the authentication ldap",
    "CALLTRAIL_SPARK_KERBEROS_SERVICE_NAME": "the server's Kerberos service name (often hive)",
    "CALLTRAIL_SPARK_SSL_CA": "a PEM file of the CA that signed the server's certificate, when the system "
                              "does not trust it (calltrail's connection; dbt-spark does not check it)",
}
# Read by calltrail's connection to an output's warehouse, not by the profile.
_CONNECTION_ONLY = {"spark_thrift": {"CALLTRAIL_SPARK_SSL_CA": ""}}
_ENV_VAR = re.compile(r"env_var\(\s*'(CALLTRAIL_\w+)'\s*(?:,\s*'([^']*)')?\s*\)")


def profile_variables(output: str) -> dict[str, str]:
    """The ``CALLTRAIL_*`` variables the output ``output`` of dbt_project/profiles.yml reads and
    calltrail's connection to it reads besides, in the profile's order, each with its default."""
    return dict(_profile_variables(output))


@functools.cache
def _profile_variables(output: str) -> dict[str, str]:
    import yaml

    profile = yaml.safe_load((PROJECT_ROOT / "dbt_project" / "profiles.yml").read_text())
    found: dict[str, str] = {}
    for variable, default in _ENV_VAR.findall(str(profile["calltrail"]["outputs"][output])):
        found.setdefault(variable, default)
    return {**found, **_CONNECTION_ONLY.get(output, {})}


def describe(settings: Settings) -> list[str]:
    """One line per setting, in the environment's syntax: ``VARIABLE=value  # where it came from: meaning``.
    Then the configured warehouse's connection, as the dbt profile reads it (passwords not shown)."""
    lines = []
    for row, value in in_use(settings):
        given = settings.environ.get(row.variable, "").strip() != ""
        lines.append(_line(row.variable, _as_text(value), row.default, given, row.description))
    variables = {v: d for v, d in profile_variables(settings.dbt_output).items() if v in READ_BY_THE_PROFILE}
    if variables:
        lines.append(f"# the warehouse's connection: read by the output {settings.dbt_output} of "
                     "dbt_project/profiles.yml and by calltrail's connection to it")
    for variable, default in variables.items():
        given = settings.environ.get(variable, "") != ""
        if variable.endswith("_PASSWORD"):
            lines.append(f"# {variable}: {'set, not shown' if given else 'not set'}: {READ_BY_THE_PROFILE[variable]}")
        else:
            value = settings.environ[variable] if given else default
            lines.append(_line(variable, value, default, given, READ_BY_THE_PROFILE[variable]))
    return lines
