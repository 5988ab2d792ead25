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
import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from simple_salesforce.bulk2 import ColumnDelimiter, JobState, LineEnding, Operation

from calltrail.lake.convert import DEFAULT_MEMORY_LIMIT, ConvertResult, convert
from calltrail.lake.partitions import QUARANTINE, SALESFORCE_TASK, interval_key, replace_partition
from calltrail.salesforce.client import ResilientSalesforce, SalesforceExtractionError, bulk2_client
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
    timeout_seconds: float = 3600.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[list[dict[str, Any]]]:
    """Bulk API 2.0 ``queryAll``: create the job, wait for it, read the CSV result pages by locator."""
    job = client.call("bulk queryAll job", lambda sf: bulk2_client(sf).create_job(
        Operation.query_all, soql, ColumnDelimiter.COMMA, LineEnding.LF))
    job_id = job["id"]
    log.info("bulk job %s created", job_id)
    waited = 0.0
    while True:
        info = client.call(f"bulk job {job_id}", lambda sf: bulk2_client(sf).get_job(job_id, True))
        state = info.get("state")
        if state == JobState.job_complete:
            break
        if state in (JobState.failed, JobState.aborted):
            raise BulkJobFailed(f"bulk job {job_id} ended {state}: {info.get('errorMessage') or info}")
        if waited >= timeout_seconds:
            raise BulkJobFailed(f"bulk job {job_id} still {state} after {timeout_seconds:.0f} s")
        log.info("bulk job %s is %s; waiting", job_id, state)
        sleep(poll_seconds)
        waited += poll_seconds
    locator = ""
    while True:
        result = client.call(f"bulk job {job_id} results",
                             lambda sf, at=locator: bulk2_client(sf).get_query_results(job_id, at, page_size))
        # Bulk CSV has no nulls: an empty cell is an empty field.
        reader = csv.DictReader(io.StringIO(result["records"]))
        yield [{k: (v if v != "" else None) for k, v in row.items()} for row in reader]
        locator = result["locator"]
        if not locator:
            return


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
