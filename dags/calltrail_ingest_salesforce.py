"""Salesforce Tasks into the lake, hourly: the API (when connected) and Task files from the landing folder.

The API extraction reads from the lake's own watermark (the highest `SystemModstamp` a successful
run stored, less the overlap), not from the run's data interval: a failed or missed run loses
nothing, and the first run reads the whole history. `full_load` forces a full reload.

The Asset `calltrail_lake_salesforce_task` is updated by `salesforce_tasks_ingested` only when the
ingestion as a whole succeeded (an API task skipped for want of a connection counts as success), so
the transform never publishes over a failed extraction.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

from calltrail import settings as settings_module
from calltrail.airflow.assets import SALESFORCE_TASKS
from calltrail.airflow.notifiers import alert_task_failure

# Retries of the API extraction: CALLTRAIL_TASK_RETRIES (`make run` sets 0: it does not wait out
# retry delays) and CALLTRAIL_TASK_RETRY_DELAY_MINUTES.
SETTINGS = settings_module.load()


@dag(
    dag_id="calltrail_ingest_salesforce",
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,  # nothing to catch up: every run reads from the watermark the lake holds
    max_active_runs=1,
    tags=["calltrail", "ingestion"],
    params={
        "full_load": Param(False, type="boolean",
                           description="Ignore the watermark and read every Task again (full reload; "
                                       "Bulk API 2.0 queryAll above CALLTRAIL_SF_BULK_THRESHOLD Tasks)"),
        "reprocess_files": Param(False, type="boolean",
                                 description="Re-ingest landing files that are already in the lake"),
    },
    doc_md=__doc__,
    # Task-level (DAG-level notifiers fail under `airflow dags test`): every failed task alerts
    # through the configured channels and alerts.jsonl, with its exception.
    default_args={"on_failure_callback": alert_task_failure},
)
def calltrail_ingest_salesforce() -> None:
    @task(retries=SETTINGS.task_retries, retry_delay=timedelta(minutes=SETTINGS.task_retry_delay_minutes))
    def extract_tasks_from_api(params=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from calltrail import settings
        from calltrail.airflow.run_context import RunInfo
        from calltrail.salesforce.client import SalesforceExtractionError
        from calltrail.tasks import ingest

        context = get_current_context()
        try:
            return ingest.extract_salesforce_tasks(
                settings.load(), full_load=bool(params["full_load"]),
                alert_run=RunInfo.from_context(context), context=context,
            )
        except ingest.SalesforceNotConfigured as exc:
            raise AirflowSkipException(str(exc)) from None
        except SalesforceExtractionError as exc:
            if not exc.recoverable:  # bad credentials, a missing field: a retry cannot help
                raise AirflowFailException(str(exc)) from exc
            raise

    @task
    def ingest_task_files(params=None) -> dict:
        from calltrail import settings
        from calltrail.airflow.run_context import RunInfo
        from calltrail.tasks import ingest

        context = get_current_context()
        return ingest.ingest_task_files(settings.load(), reprocess=bool(params["reprocess_files"]),
                                          alert_run=RunInfo.from_context(context), context=context)

    @task(outlets=[SALESFORCE_TASKS], trigger_rule="none_failed")
    def salesforce_tasks_ingested() -> None:
        """Runs only when no ingestion task failed; its success updates the Asset."""

    [extract_tasks_from_api(), ingest_task_files()] >> salesforce_tasks_ingested()


calltrail_ingest_salesforce()
