"""Salesforce into the lake, hourly: the API (when connected) and files from the landing folder, for
Tasks and for Leads, Contacts, Opportunities and OpportunityContactRoles.

Each object's API extraction reads from the lake's own watermark for that object (the highest
`SystemModstamp` a successful run stored, less the overlap), not from the run's data interval: a
failed or missed run loses nothing, and the first run reads the whole history. `full_load` forces a
full reload.

The other objects' API extractions start once the Tasks' succeeded (a broken connection fails
once, in `extract_tasks_from_api`; without a connection they are skipped with it). Each object has
its Asset (`calltrail_lake_salesforce_<object>`), updated by
`salesforce_<object>_ingested` only when both of that object's ingestion tasks succeeded (an API
task skipped for want of a connection counts as success). The transform is scheduled on the Task
Asset (with the web events), so it never publishes over a failed Task extraction; it reads whatever
the lake holds of the other objects.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context

from calltrail import settings as settings_module
from calltrail.airflow.assets import SALESFORCE_OBJECTS, SALESFORCE_TASKS
from calltrail.airflow.notifiers import task_defaults
from calltrail.airflow.timeouts import task

# Retries of the API extraction: CALLTRAIL_TASK_RETRIES (`make run` sets 0: it does not wait out
# retry delays) and CALLTRAIL_TASK_RETRY_DELAY_MINUTES.
SETTINGS = settings_module.load()
RETRIES = {"retries": SETTINGS.task_retries, "retry_delay": timedelta(minutes=SETTINGS.task_retry_delay_minutes)}


def _api_task(extract: Callable[[], dict]) -> dict:
    """Run an API extraction: skipped without a connection, failed at once when a retry cannot help."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from calltrail.salesforce.client import SalesforceExtractionError
    from calltrail.tasks import ingest

    try:
        return extract()
    except ingest.SalesforceNotConfigured as exc:
        raise AirflowSkipException(str(exc)) from None
    except SalesforceExtractionError as exc:
        if not exc.recoverable:  # bad credentials, a missing field: a retry cannot help
            raise AirflowFailException(str(exc)) from exc
        raise


@dag(
    dag_id="calltrail_ingest_salesforce",
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,  # nothing to catch up: every run reads from the watermark the lake holds
    max_active_runs=1,
    tags=["calltrail", "ingestion"],
    params={
        "full_load": Param(False, type="boolean",
                           description="Ignore the watermarks and read every record again (full reload; "
                                       "Bulk API 2.0 queryAll above CALLTRAIL_SF_BULK_THRESHOLD records)"),
        "reprocess_files": Param(False, type="boolean",
                                 description="Re-ingest landing files that are already in the lake"),
    },
    doc_md=__doc__,
    # Task-level (DAG-level notifiers fail under `airflow dags test`): every failed task alerts
    # through the configured channels and alerts.jsonl, with its exception; one still running after
    # CALLTRAIL_TASK_TIMEOUT_MINUTES is stopped and fails.
    default_args=task_defaults(SETTINGS),
)
def calltrail_ingest_salesforce() -> None:
    @task(**RETRIES)
    def extract_tasks_from_api(params=None) -> dict:
        from calltrail import settings
        from calltrail.airflow.run_context import RunInfo
        from calltrail.tasks import ingest

        context = get_current_context()
        return _api_task(lambda: ingest.extract_salesforce_tasks(
            settings.load(), full_load=bool(params["full_load"]),
            alert_run=RunInfo.from_context(context), context=context))

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

    tasks_from_api = extract_tasks_from_api()
    [tasks_from_api, ingest_task_files()] >> salesforce_tasks_ingested()

    @task(**RETRIES)
    def extract_from_api(object_folder: str, params=None) -> dict:
        from calltrail import settings
        from calltrail.airflow.run_context import RunInfo
        from calltrail.tasks import ingest

        context = get_current_context()
        return _api_task(lambda: ingest.extract_salesforce_object(
            settings.load(), object_folder, full_load=bool(params["full_load"]),
            alert_run=RunInfo.from_context(context), context=context))

    @task
    def ingest_files(object_folder: str, params=None) -> dict:
        from calltrail import settings
        from calltrail.airflow.run_context import RunInfo
        from calltrail.tasks import ingest

        context = get_current_context()
        return ingest.ingest_salesforce_files(settings.load(), object_folder,
                                              reprocess=bool(params["reprocess_files"]),
                                              alert_run=RunInfo.from_context(context), context=context)

    @task(trigger_rule="none_failed")
    def object_ingested() -> None:
        """Runs only when neither of the object's ingestion tasks failed; its success updates the Asset."""

    for folder, asset in SALESFORCE_OBJECTS.items():
        from_api = extract_from_api.override(task_id=f"extract_{folder}_from_api")(folder)
        # After the Tasks: one broken connection fails (and alerts) once, in extract_tasks_from_api;
        # the other objects are then upstream_failed, or skipped with it when there is no connection.
        tasks_from_api >> from_api
        [from_api, ingest_files.override(task_id=f"ingest_{folder}_files")(folder)] \
            >> object_ingested.override(task_id=f"salesforce_{folder}_ingested", outlets=[asset])()


calltrail_ingest_salesforce()
