"""What each Airflow task does: one function per task, called with the run's values.

DAG files stay wiring only; these functions are where the work starts. Each is idempotent: the
same interval (or the same landing files) run twice gives the same lake.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from calltrail.settings import Settings

log = logging.getLogger(__name__)


class SalesforceNotConfigured(RuntimeError):
    """No Airflow connection for Salesforce: the API route is skipped, files still load."""


def ingest_web_events(settings: Settings, *, reprocess: bool = False) -> dict[str, Any]:
    from calltrail.web.ingest import ingest_web_events as run

    report = run(settings.web_landing_dir, settings.lake_dir, reprocess=reprocess,
                 memory_limit=settings.ingest_memory_limit, settle_seconds=settings.landing_settle_seconds)
    return report.as_dict()


def ingest_task_files(settings: Settings, *, reprocess: bool = False) -> dict[str, Any]:
    from calltrail.salesforce.files import ingest_task_files as run

    report = run(settings.task_landing_dir, settings.lake_dir, settings.salesforce, reprocess=reprocess,
                 memory_limit=settings.ingest_memory_limit, settle_seconds=settings.landing_settle_seconds)
    return report.as_dict()


def connection_configured(conn_id: str) -> bool:
    from airflow.sdk import BaseHook

    try:
        BaseHook.get_connection(conn_id)
    except Exception as exc:  # the SDK and core raise different NotFound classes
        if type(exc).__name__ == "AirflowNotFoundException":
            return False
        raise
    return True


def extract_salesforce_tasks(
    settings: Settings, start: datetime, end: datetime, *, full_load: bool = False
) -> dict[str, Any]:
    """Extract the interval's Tasks from the Salesforce API (connection ``salesforce_default``)."""
    from calltrail.salesforce.client import ResilientSalesforce, connect
    from calltrail.salesforce.extract import extract_tasks

    sf = settings.salesforce
    if not connection_configured(sf.conn_id):
        raise SalesforceNotConfigured(
            f"no Airflow connection {sf.conn_id!r}: Salesforce API extraction skipped; Task files in "
            f"{settings.task_landing_dir} are still ingested"
        )
    client = ResilientSalesforce(
        lambda: connect(sf.conn_id),
        max_attempts=sf.max_attempts,
        backoff_seconds=sf.backoff_seconds,
        watched_fields=(sf.bizible_id_field, sf.touchpoint_date_field),
    )
    return extract_tasks(client, sf, settings.lake_dir, start, end, full_load=full_load,
                         memory_limit=settings.ingest_memory_limit).as_dict()
