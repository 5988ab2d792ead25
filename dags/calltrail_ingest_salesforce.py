"""Salesforce Tasks into the lake, hourly: the API (when connected) and Task files from the landing folder."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

from calltrail import settings as settings_module
from calltrail.assets import SALESFORCE_TASKS
from calltrail.quality.gates import alert_task_failure

# Retries of the API extraction: CALLTRAIL_TASK_RETRIES (`make run` sets 0: it does not wait out
# retry delays) and CALLTRAIL_TASK_RETRY_DELAY_MINUTES.
SETTINGS = settings_module.load()


@dag(
    dag_id="calltrail_ingest_salesforce",
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),  # runs own [start, end) intervals
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["calltrail", "ingestion"],
    params={
        "full_load": Param(False, type="boolean",
                           description="Historical load of every Task through Bulk API 2.0 queryAll"),
        "reprocess_files": Param(False, type="boolean",
                                 description="Re-ingest landing files that are already in the lake"),
    },
    doc_md=__doc__,
    # Task-level (DAG-level notifiers fail under `airflow dags test`): every failed task alerts
    # through the configured channels and alerts.jsonl, with its exception.
    default_args={"on_failure_callback": alert_task_failure},
)
def calltrail_ingest_salesforce() -> None:
    @task(outlets=[SALESFORCE_TASKS], retries=SETTINGS.task_retries,
          retry_delay=timedelta(minutes=SETTINGS.task_retry_delay_minutes))
    def extract_tasks_from_api(data_interval_start=None, data_interval_end=None, params=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from calltrail import pipeline, settings
        from calltrail.quality.alerts import RunInfo

        context = get_current_context()
        try:
            return pipeline.extract_salesforce_tasks(
                settings.load(), data_interval_start, data_interval_end, full_load=bool(params["full_load"]),
                alert_run=RunInfo.from_context(context), context=context,
            )
        except pipeline.SalesforceNotConfigured as exc:
            raise AirflowSkipException(str(exc)) from None

    @task(outlets=[SALESFORCE_TASKS])
    def ingest_task_files(params=None) -> dict:
        from calltrail import pipeline, settings
        from calltrail.quality.alerts import RunInfo

        context = get_current_context()
        return pipeline.ingest_task_files(settings.load(), reprocess=bool(params["reprocess_files"]),
                                          alert_run=RunInfo.from_context(context), context=context)

    extract_tasks_from_api()
    ingest_task_files()


calltrail_ingest_salesforce()
