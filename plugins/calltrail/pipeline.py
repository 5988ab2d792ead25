"""What each Airflow task does: one function per task, called with the run's values.

DAG files stay wiring only; these functions are where the work starts. Each is idempotent: run
twice, it gives the same lake (the Salesforce extraction reads from the lake's own watermark, not
from the run's data interval; file ingestion skips landing files already in the lake).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from calltrail.settings import Settings

if TYPE_CHECKING:
    from calltrail.quality.alerts import RunInfo
    from calltrail.salesforce.client import ResilientSalesforce

log = logging.getLogger(__name__)


class SalesforceNotConfigured(RuntimeError):
    """No Airflow connection for Salesforce: the API route is skipped, files still load."""


def ingest_web_events(settings: Settings, *, reprocess: bool = False, alert_run: RunInfo | None = None,
                      context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Web event files into the lake; more quarantined rows than the threshold alert (``alert_run``)."""
    from calltrail.demo.apart import refuse_to_mix
    from calltrail.lake.partitions import WEB_EVENTS
    from calltrail.quality.quarantine import alert_on_quarantine
    from calltrail.web.ingest import ingest_web_events as run

    refuse_to_mix(settings)
    report = run(settings.web_landing_dir, settings.lake_dir, reprocess=reprocess,
                 memory_limit=settings.ingest_memory_limit, settle_seconds=settings.landing_settle_seconds)
    alert_on_quarantine(settings, WEB_EVENTS, report.files, alert_run, context)
    return report.as_dict()


def ingest_task_files(settings: Settings, *, reprocess: bool = False, alert_run: RunInfo | None = None,
                      context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Task files into the lake; more quarantined rows than the threshold alert (``alert_run``)."""
    from calltrail.demo.apart import refuse_to_mix
    from calltrail.quality.quarantine import alert_on_quarantine
    from calltrail.salesforce.files import FILE_DATASET
    from calltrail.salesforce.files import ingest_task_files as run

    refuse_to_mix(settings)
    report = run(settings.task_landing_dir, settings.lake_dir, settings.salesforce, reprocess=reprocess,
                 memory_limit=settings.ingest_memory_limit, settle_seconds=settings.landing_settle_seconds)
    alert_on_quarantine(settings, FILE_DATASET, report.files, alert_run, context)
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


def _salesforce_client(settings: Settings, skipped: str) -> ResilientSalesforce:
    from calltrail.salesforce.client import ResilientSalesforce

    sf = settings.salesforce
    if not connection_configured(sf.conn_id):
        raise SalesforceNotConfigured(f"no Airflow connection {sf.conn_id!r}: {skipped}")
    return ResilientSalesforce.from_settings(sf)


def extract_salesforce_tasks(settings: Settings, *, full_load: bool = False, alert_run: RunInfo | None = None,
                             context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Extract the Tasks changed since the lake's watermark (connection ``salesforce_default``).

    No watermark (first run) or ``full_load``: every Task. The run's data interval plays no part, so
    a failed or missed run loses nothing: the next one reads from the same watermark.
    """
    from calltrail.demo.apart import refuse_to_mix
    from calltrail.salesforce.extract import extract_tasks

    client = _salesforce_client(settings, f"Salesforce API extraction skipped; Task files in "
                                          f"{settings.task_landing_dir} are still ingested")
    refuse_to_mix(settings, salesforce_connected=True)
    result = extract_tasks(client, settings.salesforce, settings.lake_dir, full_load=full_load,
                           memory_limit=settings.ingest_memory_limit).as_dict()
    from calltrail.quality.quarantine import alert_on_quarantine
    from calltrail.salesforce.extract import API_DATASET

    alert_on_quarantine(settings, API_DATASET, [result], alert_run, context)
    return result


def reconcile_salesforce_tasks(settings: Settings) -> dict[str, Any]:
    """Mark deleted the lake's Tasks that Salesforce no longer has (deletes beyond the Recycle Bin)."""
    from calltrail.salesforce.reconcile import reconcile_tasks

    client = _salesforce_client(settings, "reconciliation with Salesforce skipped (nothing to compare with)")
    return reconcile_tasks(client, settings.salesforce, settings.lake_dir,
                           memory_limit=settings.ingest_memory_limit).as_dict()
