"""dbt builds sessions, the 30-minute call match and the touchpoints; Great Expectations checks them.

Scheduled on the ingestion Assets. Every dbt model and its tests are tasks (astronomer-cosmos,
rendered from the manifest that `calltrail setup` writes with `dbt parse`). Every task that opens
the DuckDB warehouse runs in the one-slot pool `calltrail_warehouse`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from calltrail import settings as settings_module
from calltrail.assets import SALESFORCE_TASKS, TOUCHPOINTS, WEB_EVENTS
from calltrail.settings import WAREHOUSE_POOL
from calltrail.transform.cosmos_group import dbt_task_group

SETTINGS = settings_module.load()


@dag(
    dag_id="calltrail_transform",
    schedule=(SALESFORCE_TASKS & WEB_EVENTS),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["calltrail", "dbt", "quality"],
    doc_md=__doc__,
)
def calltrail_transform() -> None:
    dbt = dbt_task_group(SETTINGS, group_id="dbt")

    @task(pool=WAREHOUSE_POOL)
    def generate_dbt_docs() -> str:
        from calltrail import settings
        from calltrail.transform.dbt_commands import generate_docs

        return str(generate_docs(settings.load()))

    @task(pool=WAREHOUSE_POOL, outlets=[TOUCHPOINTS])
    def validate_with_great_expectations() -> dict:
        from calltrail import settings
        from calltrail.quality.validate import validate_warehouse
        from calltrail.transform.dbt_commands import release_in_process_warehouse

        release_in_process_warehouse()
        s = settings.load()
        return validate_warehouse(s.warehouse, s.quality).as_dict()

    dbt >> validate_with_great_expectations() >> generate_dbt_docs()


calltrail_transform()
