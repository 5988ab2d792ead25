"""Deletes beyond the Recycle Bin: weekly, the lake's Tasks that Salesforce no longer has are marked deleted.

`queryAll` shows a deleted Task only while it is in the Recycle Bin (about 15 days). This DAG lists
every Task Id Salesforce still has and writes a tombstone version (`IsDeleted = true`,
`_deleted_by = 'reconciliation'`) for each live Task of the lake that is missing, so staging drops it
and its touchpoints disappear at the next transform. Idempotent; skipped without a Salesforce
connection. Schedule: `CALLTRAIL_SF_RECONCILE_SCHEDULE` (default Sundays 04:00 UTC; `off` for manual
runs only).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from calltrail import settings as settings_module
from calltrail.assets import SALESFORCE_TASKS

SCHEDULE = settings_module.load().salesforce.reconcile_schedule


@dag(
    dag_id="calltrail_reconcile_salesforce",
    schedule=SCHEDULE,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["calltrail", "ingestion", "reconciliation"],
    doc_md=__doc__,
)
def calltrail_reconcile_salesforce() -> None:
    @task(outlets=[SALESFORCE_TASKS], retries=2, retry_delay=pendulum.duration(minutes=10))
    def mark_tasks_deleted_in_salesforce() -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from calltrail import pipeline, settings

        try:
            return pipeline.reconcile_salesforce_tasks(settings.load())
        except pipeline.SalesforceNotConfigured as exc:
            raise AirflowSkipException(str(exc)) from None

    mark_tasks_deleted_in_salesforce()


calltrail_reconcile_salesforce()
