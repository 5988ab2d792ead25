"""dbt builds sessions, the 30-minute call match and the touchpoints; the checks gate publishing.

Scheduled on the ingestion Assets. Write-audit-publish:

0. `load_lake_into_postgres` (dbt target `postgres` only): the lake's new partitions into the lake
   schema (`CALLTRAIL_LAKE_SCHEMA`, default `lake`) of the PostgreSQL warehouse (COPY, once per
   partition); `register_lake_on_spark` (target `spark` only): a view in the lake schema over each
   dataset's Parquet files (no copy);
1. `check_source_freshness`: dbt source freshness on both lake sources;
2. `dbt`: one `dbt build` of every seed, model and data test (`dbt.build`), into the audit area
   (schema `main` on DuckDB, `CALLTRAIL_PG_SCHEMA` on PostgreSQL, `CALLTRAIL_SPARK_SCHEMA` on Spark), then a task per seed and model, in dbt's lineage, that shows its result and
   its tests (rendered from the manifest that `calltrail setup` writes with `dbt parse`). The
   sessions, call matches, conversions, touchpoints and attribution build incrementally: only the
   visitors, journeys and opportunities that new lake rows and CRM changes reach
   (docs/incremental.md). Trigger with the param `full_refresh` (`{"full_refresh": true}`) to
   rebuild everything (`dbt build --full-refresh`);
3. `audit`: Great Expectations on the raw lake, staging and marts, trend checks against recent
   runs, Data Docs, the calls-missing-BizibleId CSV, and one alert per failing check;
4. `publish`: the consumer marts are copied into the publish schema (`CALLTRAIL_PUBLISH_SCHEMA`,
   default `published`) in one transaction, only
   if the build schema still holds the build the audit checked;
5. `generate_dbt_docs` (after the build, beside the audit, so every run's lineage docs are fresh).

A check at `error` fails its task, so nothing is published and consumers keep the previous
touchpoints; `warn` alerts and the run goes on. Every task that opens the warehouse runs in the
one-slot pool `calltrail_warehouse` (DuckDB's file has one writer). Every task reads and writes the
warehouse of the configured dbt target (`CALLTRAIL_DBT_TARGET`), never the DuckDB file on another. dbt runs inside each task's process (dbt's `dbtRunner`):
under ``airflow dags test`` all tasks share one process, which imports dbt once.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context

from calltrail import settings as settings_module
from calltrail.airflow.assets import SALESFORCE_TASKS, TOUCHPOINTS, WEB_EVENTS
from calltrail.airflow.dbt_task_group import dbt_task_group
from calltrail.airflow.notifiers import task_defaults
from calltrail.airflow.timeouts import task
from calltrail.settings import WAREHOUSE_POOL

SETTINGS = settings_module.load()


@dag(
    dag_id="calltrail_transform",
    schedule=(SALESFORCE_TASKS & WEB_EVENTS),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["calltrail", "dbt", "quality"],
    doc_md=__doc__,
    # Task-level (DAG-level notifiers fail under `airflow dags test`): a failed dbt model or test
    # alerts once; the gates alert for their own checks. A task still running after
    # CALLTRAIL_TASK_TIMEOUT_MINUTES is stopped and fails.
    default_args=task_defaults(SETTINGS),
    params={"full_refresh": Param(False, type="boolean", description=(
        "Rebuild every visitor, journey and opportunity (dbt build --full-refresh) instead of only "
        "those that new lake rows and CRM changes reach (docs/incremental.md)."))},
)
def calltrail_transform() -> None:
    @task(pool=WAREHOUSE_POOL)
    def check_source_freshness() -> dict:
        from calltrail import settings
        from calltrail.airflow.run_context import RunInfo
        from calltrail.tasks import quality

        context = get_current_context()
        return quality.check_source_freshness(settings.load(), RunInfo.from_context(context), context, in_process=True)

    dbt = dbt_task_group(SETTINGS, group_id="dbt")

    @task(pool=WAREHOUSE_POOL)
    def audit() -> dict:
        from calltrail import settings
        from calltrail.airflow.run_context import RunInfo
        from calltrail.tasks import quality

        context = get_current_context()
        return quality.audit(settings.load(), RunInfo.from_context(context), context)

    @task(pool=WAREHOUSE_POOL, outlets=[TOUCHPOINTS])
    def publish(audited: dict) -> str:
        from calltrail import settings
        from calltrail.tasks.publish import publish

        # only the build the audit checked: not one a dbt command wrote since (another run's, by hand)
        return publish(settings.load(), in_process=True, audited_build=audited.get("build"))

    @task(pool=WAREHOUSE_POOL)
    def generate_dbt_docs() -> str:
        from calltrail import settings
        from calltrail.tasks.transform import generate_dbt_docs

        return generate_dbt_docs(settings.load(), in_process=True)

    freshness = check_source_freshness()
    if SETTINGS.dbt_target == "postgres":
        # PostgreSQL cannot read the lake's Parquet files in place: its new partitions are copied first.
        @task(pool=WAREHOUSE_POOL)
        def load_lake_into_postgres() -> str:
            from calltrail import settings
            from calltrail.tasks.transform import load_lake_into_postgres

            return load_lake_into_postgres(settings.load())

        load_lake_into_postgres() >> freshness
    elif SETTINGS.dbt_target == "spark":
        # Spark reads the lake in place: a view per dataset over its Parquet files, renewed each run.
        @task(pool=WAREHOUSE_POOL)
        def register_lake_on_spark() -> str:
            from calltrail import settings
            from calltrail.tasks.transform import register_lake_on_spark

            return register_lake_on_spark(settings.load())

        register_lake_on_spark() >> freshness
    audited = audit()
    freshness >> dbt >> audited
    publish(audited)
    dbt >> generate_dbt_docs()  # the lineage docs follow every build, whatever the audit says


calltrail_transform()
