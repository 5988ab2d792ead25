"""The ingestion tasks: one function per Airflow task, called with the run's values.

DAG files stay wiring only; these functions are where the work starts. Each is idempotent: run
twice, it gives the same lake (the Salesforce extraction reads from the lake's own watermark, not
from the run's data interval; file ingestion skips landing files already in the lake).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from calltrail.airflow.alerts import deliver
from calltrail.airflow.connections import connection_configured
from calltrail.airflow.run_context import RunInfo
from calltrail.quality.outcome import Outcome
from calltrail.quality.quarantine import quarantine_outcome
from calltrail.settings import Settings

if TYPE_CHECKING:
    from calltrail.salesforce.client import ResilientSalesforce

log = logging.getLogger(__name__)


class SalesforceNotConfigured(RuntimeError):
    """No Airflow connection for Salesforce: the API route is skipped, files still load."""


def ingest_web_events(settings: Settings, *, reprocess: bool = False, alert_run: RunInfo | None = None,
                      context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Web event files into the lake; more quarantined rows than the threshold alert (``alert_run``)."""
    from calltrail.demo.apart import refuse_to_mix
    from calltrail.lake.layout import WEB_EVENTS
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
    from calltrail.salesforce.files import FILE_DATASET
    from calltrail.salesforce.files import ingest_task_files as run

    refuse_to_mix(settings)
    report = run(settings.task_landing_dir, settings.lake_dir, settings.salesforce, reprocess=reprocess,
                 memory_limit=settings.ingest_memory_limit, settle_seconds=settings.landing_settle_seconds)
    alert_on_quarantine(settings, FILE_DATASET, report.files, alert_run, context)
    return report.as_dict()


def ingest_salesforce_files(settings: Settings, object_name: str, *, reprocess: bool = False,
                            alert_run: RunInfo | None = None, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Files of a Salesforce object besides Task (``Lead``, ``Contact``, ``Opportunity``,
    ``OpportunityContactRole``) from ``landing/salesforce/<object>/`` into the lake; more quarantined
    rows than the threshold alert (``alert_run``)."""
    from calltrail.demo.apart import refuse_to_mix
    from calltrail.salesforce.files import ingest_object_files
    from calltrail.salesforce.objects import object_named

    obj = object_named(object_name)
    refuse_to_mix(settings)
    report = ingest_object_files(settings.salesforce_landing_dir(obj.folder), settings.lake_dir, obj,
                                 reprocess=reprocess, memory_limit=settings.ingest_memory_limit,
                                 settle_seconds=settings.landing_settle_seconds)
    alert_on_quarantine(settings, obj.dataset.source("file"), report.files, alert_run, context)
    return report.as_dict()


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
    from calltrail.salesforce.extract import API_DATASET

    alert_on_quarantine(settings, API_DATASET, [result], alert_run, context)
    return result


def extract_salesforce_object(settings: Settings, object_name: str, *, full_load: bool = False,
                              alert_run: RunInfo | None = None, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Extract the records of a Salesforce object besides Task changed since its own watermark in
    the lake, as :func:`extract_salesforce_tasks` does for Tasks."""
    from calltrail.demo.apart import refuse_to_mix
    from calltrail.salesforce.extract import extract_object
    from calltrail.salesforce.objects import object_named

    obj = object_named(object_name)
    client = _salesforce_client(settings, f"Salesforce API extraction of {obj.name} skipped; {obj.name} files in "
                                          f"{settings.salesforce_landing_dir(obj.folder)} are still ingested")
    refuse_to_mix(settings, salesforce_connected=True)
    result = extract_object(client, settings.salesforce, settings.lake_dir, obj, full_load=full_load,
                            memory_limit=settings.ingest_memory_limit).as_dict()
    alert_on_quarantine(settings, obj.dataset.source("api"), [result], alert_run, context)
    return result


def reconcile_salesforce_object(settings: Settings, object_name: str) -> dict[str, Any]:
    """Mark deleted the lake's records of a Salesforce object besides Task that Salesforce no longer has."""
    from calltrail.salesforce.objects import object_named
    from calltrail.salesforce.reconcile import reconcile_object

    obj = object_named(object_name)
    client = _salesforce_client(settings, f"reconciliation of {obj.name} with Salesforce skipped "
                                          "(nothing to compare with)")
    return reconcile_object(client, settings.salesforce, settings.lake_dir, obj,
                            memory_limit=settings.ingest_memory_limit).as_dict()


def reconcile_salesforce_tasks(settings: Settings) -> dict[str, Any]:
    """Mark deleted the lake's Tasks that Salesforce no longer has (deletes beyond the Recycle Bin)."""
    from calltrail.salesforce.reconcile import reconcile_tasks

    client = _salesforce_client(settings, "reconciliation with Salesforce skipped (nothing to compare with)")
    return reconcile_tasks(client, settings.salesforce, settings.lake_dir,
                           memory_limit=settings.ingest_memory_limit).as_dict()


def alert_on_quarantine(settings: Settings, dataset: str, files: Iterable[Mapping[str, Any]],
                        run: RunInfo | None, context: dict[str, Any] | None = None) -> Outcome:
    """Check this run's quarantine against the threshold; alert (when ``run`` is given) if above."""
    from calltrail.lake.layout import quarantine_dir

    outcome = quarantine_outcome(dataset, files, settings.quarantine_alert_rows,
                                 str(quarantine_dir(settings.lake_dir, dataset)))
    if outcome.failed:
        log.warning("%s", outcome.describe())
        if run is not None:
            deliver([outcome], settings, run, context)
    return outcome
