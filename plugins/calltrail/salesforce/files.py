"""Salesforce files in ``landing/salesforce/<object>/`` (``task/``, ``lead/``, ``contact/``,
``opportunity/``, ``opportunity_contact_role/``): REST API records as JSON lines (with or without
``attributes``) or a Data Loader CSV export with API field names as headers (any case)."""

from __future__ import annotations

from pathlib import Path

from calltrail.lake.convert import DEFAULT_MEMORY_LIMIT
from calltrail.lake.landing import IngestReport, ingest_folder
from calltrail.lake.layout import task_source
from calltrail.salesforce.objects import SalesforceObject
from calltrail.salesforce.task_record import task_object
from calltrail.settings import SalesforceSettings

FILE_DATASET = task_source("file")  # Task's


def ingest_object_files(
    landing_dir: Path,
    lake_dir: Path,
    obj: SalesforceObject,
    *,
    reprocess: bool = False,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    settle_seconds: float = 0.0,
) -> IngestReport:
    """Every file of ``obj`` not yet in the lake becomes ``<dataset>/source=file/file=<hash>/``.

    Versions of one record across files are all kept: staging picks the latest ``SystemModstamp``.
    A column the file lacks (``CurrencyIsoCode`` from a single-currency org) is null.
    """
    return ingest_folder(landing_dir, lake_dir, obj.contract(), dataset_path=obj.dataset.source("file"),
                         parquet_name=obj.dataset.file, dedupe_against_lake=False, reprocess=reprocess,
                         memory_limit=memory_limit, settle_seconds=settle_seconds)


def ingest_task_files(
    landing_dir: Path,
    lake_dir: Path,
    sf: SalesforceSettings,
    *,
    reprocess: bool = False,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    settle_seconds: float = 0.0,
) -> IngestReport:
    """Every Task file not yet in the lake becomes ``salesforce_task/source=file/file=<hash>/``."""
    return ingest_object_files(landing_dir, lake_dir, task_object(sf), reprocess=reprocess,
                               memory_limit=memory_limit, settle_seconds=settle_seconds)
