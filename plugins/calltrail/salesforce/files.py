"""Task files in ``landing/salesforce/task/``: REST API records as JSON lines (with or without
``attributes``) or a Data Loader CSV export with API field names as headers (any case)."""

from __future__ import annotations

from pathlib import Path

from calltrail.lake.convert import DEFAULT_MEMORY_LIMIT
from calltrail.lake.landing import IngestReport, ingest_folder
from calltrail.lake.layout import SALESFORCE_TASK_FILE, task_source
from calltrail.salesforce.task_record import contract
from calltrail.settings import SalesforceSettings

FILE_DATASET = task_source("file")


def ingest_task_files(
    landing_dir: Path,
    lake_dir: Path,
    sf: SalesforceSettings,
    *,
    reprocess: bool = False,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    settle_seconds: float = 0.0,
) -> IngestReport:
    """Every Task file not yet in the lake becomes ``salesforce_task/source=file/file=<hash>/``.

    Versions of one Task across files are all kept: staging picks the latest ``SystemModstamp``.
    """
    return ingest_folder(landing_dir, lake_dir, contract(sf), dataset_path=FILE_DATASET,
                         parquet_name=SALESFORCE_TASK_FILE, dedupe_against_lake=False, reprocess=reprocess,
                         memory_limit=memory_limit, settle_seconds=settle_seconds)
