"""Salesforce Tasks into the lake, hourly: the API (when connected) and Task files from the landing folder."""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from calltrail.assets import SALESFORCE_TASKS


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
)
def calltrail_ingest_salesforce() -> None:
    @task(outlets=[SALESFORCE_TASKS], retries=2, retry_delay=pendulum.duration(minutes=5))
    def extract_tasks_from_api(data_interval_start=None, data_interval_end=None, params=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from calltrail import pipeline, settings

        try:
            return pipeline.extract_salesforce_tasks(
                settings.load(), data_interval_start, data_interval_end, full_load=bool(params["full_load"])
            )
        except pipeline.SalesforceNotConfigured as exc:
            raise AirflowSkipException(str(exc)) from None

    @task(outlets=[SALESFORCE_TASKS])
    def ingest_task_files(params=None) -> dict:
        from calltrail import pipeline, settings

        return pipeline.ingest_task_files(settings.load(), reprocess=bool(params["reprocess_files"]))

    extract_tasks_from_api()
    ingest_task_files()


calltrail_ingest_salesforce()
