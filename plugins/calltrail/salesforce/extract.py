"""Extract Salesforce Tasks into the lake, page by page.

Incremental runs query ``queryAll`` (so deleted Tasks arrive with ``IsDeleted = true``) for
``SystemModstamp`` in the run's data interval widened by the overlap, following
``nextRecordsUrl`` until ``done``. A historical load uses Bulk API 2.0 ``queryAll``. Records are
spooled to a JSON-lines file one page at a time (memory stays bounded whatever the volume) and
then validated into ``salesforce_task/source=api/interval=<start>_<end>/tasks.parquet``. The
partition appears only when the whole extraction succeeded: a failed run writes nothing and,
since the interval is the watermark, the retry extracts the same interval again.
"""

from __future__ import annotations

import csv
import json
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import Operation
from simple_salesforce.exceptions import SalesforceOperationError

from calltrail.lake.convert import DEFAULT_MEMORY_LIMIT, ConvertResult, convert
from calltrail.lake.partitions import QUARANTINE, SALESFORCE_TASK, interval_key, replace_partition
from calltrail.salesforce.client import (
    BULK_EXTRACTION_CALLS,
    REST_EXTRACTION_CALLS,
    ResilientSalesforce,
    SalesforceExtractionError,
    discard_query_job,
    list_query_jobs,
)
from calltrail.salesforce.tasks import contract, full_soql, incremental_soql, soql_datetime
from calltrail.settings import SalesforceSettings

log = logging.getLogger(__name__)

API_DATASET = f"{SALESFORCE_TASK}/source=api"


class BulkJobFailed(SalesforceExtractionError):
    pass


@dataclass
class ExtractionResult:
    mode: str
    soql: str
    pages: int
    records: int
    partition: Path
    result: ConvertResult

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "soql": self.soql, "pages": self.pages, "records": self.records,
                "partition": str(self.partition), **self.result.as_dict()}


def rest_pages(client: ResilientSalesforce, soql: str) -> Iterator[list[dict[str, Any]]]:
    """``queryAll`` pages (up to 2,000 records each), following ``nextRecordsUrl``; never OFFSET."""
    page = client.call("queryAll", lambda sf: sf.query(soql, include_deleted=True))
    yield page.get("records", [])
    while not page.get("done", True):
        next_url = page["nextRecordsUrl"]
        page = client.call(f"queryAll page {next_url}",
                           lambda sf, url=next_url: sf.query_more(url, identifier_is_url=True, include_deleted=True))
        yield page.get("records", [])


def bulk_pages(
    client: ResilientSalesforce,
    soql: str,
    *,
    page_size: int,
    poll_seconds: float = 2.0,
    object_name: str = "Task",
) -> Iterator[list[dict[str, Any]]]:
    """Bulk API 2.0 ``queryAll`` through simple-salesforce's public API (``sf.bulk2.Task.query_all``).

    The library creates the job, waits for it and yields its CSV result pages. One job is one
    attempt: its pages are staged in a scratch folder (``TMPDIR``) and yielded only once the whole
    job has been read, so a failure half-way retries the job without yielding a record twice.
    Before each attempt, the query jobs created since this extraction began are listed and those
    for this object and operation are aborted and deleted: a create that failed ambiguously (a 5xx
    or a dropped connection, after which Salesforce may still have created the job) never leaves
    two jobs behind.
    """
    known = client.call("list Bulk API 2.0 query jobs", lambda sf: {job["id"] for job in list_query_jobs(sf)})

    with tempfile.TemporaryDirectory(prefix="calltrail-bulk-") as scratch:

        def one_job(sf: Salesforce) -> list[Path]:
            for job in list_query_jobs(sf):
                if (job["id"] not in known and job.get("object") == object_name
                        and job.get("operation") == Operation.query_all.value):
                    discard_query_job(sf, job)
            files: list[Path] = []
            try:
                pages = getattr(sf.bulk2, object_name).query_all(soql, max_records=page_size, wait=poll_seconds)
                for number, page in enumerate(pages):
                    path = Path(scratch) / f"page-{number:06d}.csv"
                    path.write_text(page, encoding="utf-8")
                    files.append(path)
            except SalesforceOperationError as exc:
                raise BulkJobFailed(f"Bulk API 2.0 queryAll job for {object_name} failed: {exc}") from exc
            return files

        files = client.call(f"bulk queryAll job ({object_name})", one_job)
        log.info("bulk job read: %d result page(s)", len(files))
        for path in files:
            with path.open(newline="", encoding="utf-8") as fh:
                # Bulk CSV has no nulls: an empty cell is an empty field.
                yield [{k: (v if v != "" else None) for k, v in row.items()} for row in csv.DictReader(fh)]


def extract_tasks(
    client: ResilientSalesforce,
    sf: SalesforceSettings,
    lake_dir: Path,
    start: datetime,
    end: datetime,
    *,
    full_load: bool = False,
    poll_seconds: float = 2.0,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> ExtractionResult:
    """Extract the Tasks of ``[start, end)`` (widened by the overlap), or all before ``end``."""
    # Daily API budget: fail before any query when the org's remaining requests cannot cover the run.
    client.check_api_budget(BULK_EXTRACTION_CALLS if full_load else REST_EXTRACTION_CALLS)

    if full_load:
        soql, mode = full_soql(sf, end), "bulk2_queryAll"
        key = f"full_{soql_datetime(end).replace('-', '').replace(':', '')}"
    else:
        soql, mode = incremental_soql(sf, start - timedelta(minutes=sf.overlap_minutes), end), "rest_queryAll"
        key = interval_key(start, end)
    partition = lake_dir / API_DATASET / f"interval={key}"
    quarantine_file = lake_dir / QUARANTINE / API_DATASET / f"interval={key}.jsonl"
    log.info("extracting Tasks (%s): %s", mode, soql)
    pages = records = 0
    with replace_partition(partition, lake_dir) as work:
        spool = work / "_spool.jsonl"
        source = (bulk_pages(client, soql, page_size=sf.bulk_page_size, poll_seconds=poll_seconds)
                  if full_load else rest_pages(client, soql))
        with spool.open("w") as fh:
            for page in source:
                pages += 1
                for record in page:
                    record.pop("attributes", None)
                    fh.write(json.dumps(record, default=str) + "\n")
                records += len(page)
                log.info("page %d: %d record(s), %d so far", pages, len(page), records)
        quarantine_file.unlink(missing_ok=True)
        result = convert(spool, contract(sf), work / "tasks.parquet", quarantine_file, fmt="jsonl",
                         source_label=f"salesforce {mode} {key}", memory_limit=memory_limit)
        spool.unlink()
        (work / "_manifest.json").write_text(json.dumps({
            "mode": mode, "soql": soql, "pages": pages, "records": records,
            "extracted_at": datetime.now(UTC).isoformat(), **result.as_dict()}, indent=2) + "\n")
    log.info("extracted %d Task record(s) in %d page(s) into %s (%d retries, %d re-authentications)",
             records, pages, partition, client.retries, client.reauthentications)
    return ExtractionResult(mode, soql, pages, records, partition, result)
