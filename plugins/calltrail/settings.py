"""The one place that reads the environment.

Every other module receives its values from a :class:`Settings` instance. Paths default to
folders under ``data/`` in the project root so that ``make run`` works on a fresh clone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WAREHOUSE_POOL = "calltrail_warehouse"  # one slot: DuckDB has one writer and readers conflict with it


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
    max_attempts: int = 5
    backoff_seconds: float = 2.0
    bulk_page_size: int = 50_000


@dataclass(frozen=True)
class QualitySettings:
    """Great Expectations thresholds: the share of rows that must pass (``mostly``)."""

    bizible_id_mostly: float = 0.90
    task_type_mostly: float = 0.80
    landing_page_mostly: float = 0.99
    task_types: tuple[str, ...] = ("Call", "Phone Call", "Inbound Call", "Outbound Call", "Email", "Meeting")


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
    salesforce: SalesforceSettings = field(default_factory=SalesforceSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    dbt_target: str = "duckdb"
    dbt_duckdb_memory_limit: str = "3500MB"
    dbt_docs_dir: Path = PROJECT_ROOT / "data" / "dbt_docs"
    # The process environment as read once here, for the child processes calltrail starts.
    environ: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def dbt_project_dir(self) -> Path:
        return PROJECT_ROOT / "dbt_project"

    @property
    def dbt_manifest(self) -> Path:
        return self.dbt_project_dir / "target" / "manifest.json"

    @property
    def task_landing_dir(self) -> Path:
        return self.landing_dir / "salesforce" / "task"

    @property
    def web_landing_dir(self) -> Path:
        return self.landing_dir / "web_events"


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
    )
    return Settings(
        landing_dir=_path(env, "CALLTRAIL_LANDING_DIR", data / "landing"),
        lake_dir=_path(env, "CALLTRAIL_LAKE_DIR", data / "lake"),
        warehouse=_path(env, "CALLTRAIL_WAREHOUSE", data / "warehouse" / "calltrail.duckdb"),
        airflow_home=_path(env, "AIRFLOW_HOME", data / "airflow"),
        demo_mode=_choice(env, "CALLTRAIL_DEMO", "auto", ("auto", "always", "never")),
        demo_visitors=_int(env, "CALLTRAIL_DEMO_VISITORS", 400, minimum=1),
        ingest_memory_limit=env.get("CALLTRAIL_INGEST_MEMORY_LIMIT") or "2GB",
        salesforce=sf,
        quality=QualitySettings(
            bizible_id_mostly=_share(env, "CALLTRAIL_DQ_BIZIBLE_ID_MOSTLY", 0.90),
            task_type_mostly=_share(env, "CALLTRAIL_DQ_TASK_TYPE_MOSTLY", 0.80),
            landing_page_mostly=_share(env, "CALLTRAIL_DQ_LANDING_PAGE_MOSTLY", 0.99),
            task_types=tuple(t.strip() for t in (env.get("CALLTRAIL_DQ_TASK_TYPES") or
                             "Call,Phone Call,Inbound Call,Outbound Call,Email,Meeting").split(",") if t.strip()),
        ),
        dbt_target=env.get("CALLTRAIL_DBT_TARGET") or "duckdb",
        dbt_duckdb_memory_limit=env.get("CALLTRAIL_DBT_DUCKDB_MEMORY_LIMIT") or "3500MB",
        dbt_docs_dir=_path(env, "CALLTRAIL_DBT_DOCS_DIR", data / "dbt_docs"),
        environ=env,
    )
