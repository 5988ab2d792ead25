"""The data-quality gates of the transformation DAG, one function per task.

Write-audit-publish: dbt builds every model into the target schema (the audit area). Then
:func:`audit` checks the raw lake, staging and the marts (Great Expectations), compares this run
with recent ones (trends), writes the Data Docs and the calls-missing-BizibleId CSV, and alerts.
A check at ``error`` fails the task, so :func:`publish` never runs and the published marts stay
as they were. ``warn`` alerts and lets the run go on.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from calltrail.airflow.alerts import deliver
from calltrail.airflow.run_context import RunInfo
from calltrail.dbt_project import project_var
from calltrail.quality.outcome import ERROR, WARN, Outcome, raise_on_errors
from calltrail.settings import Settings
from calltrail.warehouse.target import Warehouse, open_warehouse

log = logging.getLogger(__name__)
BUILDS: str = project_var("calltrail__builds_table")  # where the project's record_build() macro writes



def _summary(outcomes: list[Outcome], settings: Settings, **more: Any) -> dict[str, Any]:
    return {**more, "checks": len(outcomes), "warnings": sum(o.severity == WARN for o in outcomes),
            "errors": sum(o.severity == ERROR for o in outcomes),
            "failed": [o.describe() for o in outcomes if o.failed],
            "data_docs": settings.data_docs_index, "alerts_file": str(settings.alerts_file)}


def check_source_freshness(settings: Settings, run: RunInfo, context: dict[str, Any] | None = None, *,
                           in_process: bool = False) -> dict:
    from calltrail.quality.freshness import check_freshness

    outcomes = check_freshness(settings, in_process=in_process)
    deliver(outcomes, settings, run, context)
    raise_on_errors(outcomes, "dbt source freshness")
    return _summary(outcomes, settings)


def export_missing_bizible_id_csv(con: Warehouse, settings: Settings, schema: str) -> int:
    """The calls-missing-BizibleId list as CSV beside the warehouse, for the call-tracking vendor."""
    con.write_csv(f"select * from {schema}.dq_calls_missing_bizible_id order by call_at, task_id",
                  settings.missing_bizible_id_csv)
    return con.execute(f"select count(*) from {schema}.dq_calls_missing_bizible_id").fetchone()[0]


def audit(settings: Settings, run: RunInfo, context: dict[str, Any] | None = None,
          schema: str | None = None, as_of: datetime | None = None) -> dict:
    """Check the build before it is published; alert; fail at ``error``.

    The build is read from ``schema`` (default: the schema dbt builds into on the configured
    target). The recent window ends at ``as_of`` (default: now): the threshold checks and the
    trend figures run over its rows as well as (the checks) over all rows.
    """
    import duckdb

    from calltrail.quality import trends
    from calltrail.quality.validate import (
        load_frames,
        raw_frames,
        thin_windows,
        validate_frames,
        warehouse_frames,
    )
    from calltrail.quality.window import Window

    schema = schema or settings.build_schema
    q = settings.quality
    window = Window.ending(q, as_of)
    raw = raw_frames(settings.lake_dir, q.raw_max_rows)
    built = warehouse_frames(schema, window)
    lake = duckdb.connect()
    try:
        data = load_frames(lake, raw)
    finally:
        lake.close()
    # DuckDB: waits (bounded) while another process holds the file, then fails naming it;
    # PostgreSQL, a Spark Thrift Server: the same for another calltrail process's writers' lock (unless read-only)
    con = open_warehouse(settings, doing="the data-quality audit")
    try:
        build = latest_build(con, schema)  # while the warehouse is held: the build the checks read
        data.update(load_frames(con, built))
        frames, outcomes = thin_windows(raw + built, data, window, q)
        outcomes += validate_frames(frames, data, q, settings.data_docs_dir, run_name=run.run_id, window=window)
        del data
        trends.ensure_history(con, settings.run_metrics)
        current = trends.measure(con, schema, window)
        previous = trends.previous_run(con, settings.run_metrics, run.run_id)
        new, new_rows = trends.measure_new(con, schema, previous, window.min_rows)
        history = trends.baselines(con, settings.run_metrics, run.run_id, q.trend.runs)
        outcomes += trends.compare(current, history, q.trend, window)
        outcomes += trends.compare_new(new, new_rows, history, q.trend, previous)
        passed = not any(o.severity == ERROR for o in outcomes)
        # Recorded only (the report page's trend lines): the build's published figures, this run's quarantine.
        shown = trends.measure_all(con, schema) | trends.quarantined_rows_since(settings.lake_dir, previous)
        trends.record(con, settings.run_metrics, run.run_id, run.dag_id, current | new | shown, passed,
                      trends.loaded_through(con, schema))
        missing = export_missing_bizible_id_csv(con, settings, schema)
        log.info("%d call(s) without a usable BizibleId listed in %s", missing, settings.missing_bizible_id_csv)
    finally:
        con.close()
    deliver(outcomes, settings, run, context)
    raise_on_errors(outcomes, "data-quality audit")
    return _summary(outcomes, settings, build=build)


def latest_build(con: Warehouse, schema: str) -> str | None:
    """The invocation id of the latest dbt command that wrote models into ``schema`` (the project's
    on-run-start hook records each), or None: publish is given it (macros/publish.sql)."""
    if not con.has_table(schema, BUILDS):
        return None
    row = con.execute(f"select invocation_id from {schema}.{BUILDS} order by started_at desc limit 1").fetchone()
    return row[0] if row else None
