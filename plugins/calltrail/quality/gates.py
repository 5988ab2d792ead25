"""The data-quality gates of the transformation DAG, one function per task.

Write-audit-publish: dbt builds every model into the target schema (the audit area). Then
:func:`audit` checks the raw lake, staging and the marts (Great Expectations), compares this run
with recent ones (trends), writes the Data Docs and the calls-missing-BizibleId CSV, and alerts.
A check at ``error`` fails the task, so :func:`publish` never runs and the published marts stay
as they were. ``warn`` alerts and lets the run go on.
"""

from __future__ import annotations

import logging
from typing import Any

from calltrail.quality.alerts import RunInfo, deliver
from calltrail.quality.outcome import ERROR, WARN, DataQualityError, Outcome, raise_on_errors
from calltrail.settings import Settings

log = logging.getLogger(__name__)

BUILD_SCHEMA = "main"  # where dbt builds on DuckDB (the profile's default schema)


def _summary(outcomes: list[Outcome], settings: Settings) -> dict[str, Any]:
    return {"checks": len(outcomes), "warnings": sum(o.severity == WARN for o in outcomes),
            "errors": sum(o.severity == ERROR for o in outcomes),
            "failed": [o.describe() for o in outcomes if o.failed],
            "data_docs": settings.data_docs_index, "alerts_file": str(settings.alerts_file)}


def check_source_freshness(settings: Settings, run: RunInfo, context: dict[str, Any] | None = None) -> dict:
    from calltrail.quality.freshness import check_freshness
    from calltrail.transform.dbt_commands import release_in_process_warehouse

    release_in_process_warehouse()
    outcomes = check_freshness(settings)
    deliver(outcomes, settings, run, context)
    raise_on_errors(outcomes, "dbt source freshness")
    return _summary(outcomes, settings)


def export_missing_bizible_id_csv(con: Any, settings: Settings, schema: str = BUILD_SCHEMA) -> int:
    """The calls-missing-BizibleId list as CSV beside the warehouse, for the call-tracking vendor."""
    from calltrail.lake.convert import _lit

    target = settings.missing_bizible_id_csv
    tmp = target.with_suffix(".csv.tmp")
    con.execute(f"copy (select * from {schema}.dq_calls_missing_bizible_id order by call_at, task_id) "
                f"to {_lit(str(tmp))} (header, delimiter ',')")
    tmp.replace(target)
    return con.execute(f"select count(*) from {schema}.dq_calls_missing_bizible_id").fetchone()[0]


def audit(settings: Settings, run: RunInfo, context: dict[str, Any] | None = None,
          schema: str = BUILD_SCHEMA) -> dict:
    """Check the build before it is published; alert; fail at ``error``."""
    import duckdb

    from calltrail.quality import trends
    from calltrail.quality.validate import load_frames, raw_frames, validate_frames, warehouse_frames
    from calltrail.transform.dbt_commands import release_in_process_warehouse

    release_in_process_warehouse()
    q = settings.quality
    raw = raw_frames(settings.lake_dir, q.raw_max_rows)
    built = warehouse_frames(schema)
    lake = duckdb.connect()
    try:
        data = load_frames(lake, raw)
    finally:
        lake.close()
    from calltrail.transform.warehouse import connect as open_warehouse

    # waits (bounded) while another process holds the file, then fails naming it
    con = open_warehouse(settings.warehouse, wait_seconds=settings.warehouse_lock_wait_seconds)
    try:
        data.update(load_frames(con, built))
        outcomes = validate_frames(raw + built, data, q, settings.data_docs_dir, run_name=run.run_id)
        del data
        trends.ensure_history(con)
        current = trends.measure(con, schema)
        outcomes += trends.compare(current, trends.baselines(con, run.run_id, q.trend.runs), q.trend)
        passed = not any(o.severity == ERROR for o in outcomes)
        trends.record(con, run.run_id, run.dag_id, current, passed)
        missing = export_missing_bizible_id_csv(con, settings, schema)
        log.info("%d call(s) without a usable BizibleId listed in %s", missing, settings.missing_bizible_id_csv)
    finally:
        con.close()
    deliver(outcomes, settings, run, context)
    raise_on_errors(outcomes, "data-quality audit")
    return _summary(outcomes, settings)


def publish(settings: Settings) -> str:
    from calltrail.transform.dbt_commands import publish as run_publish

    run_publish(settings)
    return f"published into schema published of {settings.warehouse}"


def alert_task_failure(context: dict[str, Any]) -> None:
    """Task-level failure callback: a failed task (a dbt model or test) is a failed check too.

    The gates above alert for their own checks before they raise, so their failures are not
    alerted twice.
    """
    from calltrail import settings as settings_module
    from calltrail.transform.warehouse import locked_error

    exception = context.get("exception")
    if isinstance(exception, DataQualityError):
        return
    ti = context.get("task_instance") or context.get("ti")
    task_id = getattr(ti, "task_id", "unknown task")
    settings = settings_module.load()
    # dbt's own error for a warehouse held by another process is a traceback: say it plainly.
    locked = locked_error(settings.warehouse, str(exception or ""), None)
    message = str(locked or exception or "failed").strip().splitlines()
    outcome = Outcome(check=task_id, layer="dbt" if task_id.startswith("dbt.") else "task", severity=ERROR,
                      observed=f"task failed: {' '.join(message[-3:])[:800]}",
                      expected="the task succeeds", expectation="task")
    deliver([outcome], settings, RunInfo.from_context(context), context)
