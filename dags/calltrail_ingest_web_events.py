"""Web events (page views, form submits) from the landing folder into the lake, hourly."""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from calltrail.assets import WEB_EVENTS


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
)
def calltrail_ingest_web_events() -> None:
    @task(outlets=[WEB_EVENTS])
    def ingest_web_events(params=None) -> dict:
        from calltrail import pipeline, settings

        return pipeline.ingest_web_events(settings.load(), reprocess=bool(params["reprocess_files"]))

    ingest_web_events()


calltrail_ingest_web_events()
