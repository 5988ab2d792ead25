"""Deletes beyond the Recycle Bin: weekly, the lake's Tasks (and Leads, Contacts, Opportunities and
OpportunityContactRoles, one task each) that Salesforce no longer has are marked deleted.

`queryAll` shows a deleted Task only while it is in the Recycle Bin (about 15 days). This DAG lists
every Task Id Salesforce still has and writes a tombstone version (`IsDeleted = true`,
`_deleted_by = 'reconciliation'`) for each live Task of the lake that is missing, so staging drops it
and its touchpoints disappear at the next transform. Idempotent; skipped without a Salesforce
connection. Schedule: `CALLTRAIL_SF_RECONCILE_SCHEDULE` (default Sundays 04:00 UTC; `off` for manual
runs only).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag

from calltrail import settings as settings_module
from calltrail.airflow.assets import SALESFORCE_OBJECTS, SALESFORCE_TASKS
from calltrail.airflow.notifiers import task_defaults
from calltrail.airflow.timeouts import task

SETTINGS = settings_module.load()


@dag(
    dag_id="calltrail_reconcile_salesforce",
    schedule=SETTINGS.salesforce.reconcile_schedule,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["calltrail", "ingestion", "reconciliation"],
    doc_md=__doc__,
    # Task-level (DAG-level notifiers fail under `airflow dags test`): a failed run alerts; a task
    # still running after CALLTRAIL_TASK_TIMEOUT_MINUTES is stopped and fails.
    default_args=task_defaults(SETTINGS),
)
def calltrail_reconcile_salesforce() -> None:
    @task(outlets=[SALESFORCE_TASKS], retries=SETTINGS.task_retries,
          retry_delay=timedelta(minutes=SETTINGS.task_retry_delay_minutes))
    def mark_tasks_deleted_in_salesforce() -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from calltrail import settings
        from calltrail.tasks import ingest

        try:
            return ingest.reconcile_salesforce_tasks(settings.load())
        except ingest.SalesforceNotConfigured as exc:
            raise AirflowSkipException(str(exc)) from None

    mark_tasks_deleted_in_salesforce()

    @task(retries=SETTINGS.task_retries, retry_delay=timedelta(minutes=SETTINGS.task_retry_delay_minutes))
    def mark_deleted_in_salesforce(object_folder: str) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from calltrail import settings
        from calltrail.tasks import ingest

        try:
            return ingest.reconcile_salesforce_object(settings.load(), object_folder)
        except ingest.SalesforceNotConfigured as exc:
            raise AirflowSkipException(str(exc)) from None

    for folder, asset in SALESFORCE_OBJECTS.items():
        mark_deleted_in_salesforce.override(task_id=f"mark_{folder}_deleted_in_salesforce", outlets=[asset])(folder)


calltrail_reconcile_salesforce()
