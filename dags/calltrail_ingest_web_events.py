"""Web events (page views, form submits) from the landing folder into the lake, hourly."""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context

from calltrail import settings as settings_module
from calltrail.airflow.assets import WEB_EVENTS
from calltrail.airflow.notifiers import task_defaults
from calltrail.airflow.timeouts import task

SETTINGS = settings_module.load()


@dag(
    dag_id="calltrail_ingest_web_events",
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),  # runs own [start, end) intervals
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["calltrail", "ingestion"],
    params={"reprocess_files": Param(False, type="boolean",
                                     description="Re-ingest landing files that are already in the lake")},
    doc_md=__doc__,
    # Task-level (DAG-level notifiers fail under `airflow dags test`): a failed task alerts; one
    # still running after CALLTRAIL_TASK_TIMEOUT_MINUTES is stopped and fails.
    default_args=task_defaults(SETTINGS),
)
def calltrail_ingest_web_events() -> None:
    @task(outlets=[WEB_EVENTS])
    def ingest_web_events(params=None) -> dict:
        from calltrail import settings
        from calltrail.airflow.run_context import RunInfo
        from calltrail.tasks import ingest

        context = get_current_context()
        return ingest.ingest_web_events(settings.load(), reprocess=bool(params["reprocess_files"]),
                                          alert_run=RunInfo.from_context(context), context=context)

    ingest_web_events()


calltrail_ingest_web_events()
