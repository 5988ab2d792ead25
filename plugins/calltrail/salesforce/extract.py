"""Extract Salesforce Tasks into the lake, page by page, from the lake's own watermark.

Each run reads ``queryAll`` (so deleted Tasks arrive with ``IsDeleted = true``) for
``SystemModstamp >= watermark - overlap`` up to the run's start (``until``, now). The watermark is
the highest ``SystemModstamp`` a successful extraction stored (:mod:`calltrail.salesforce.watermark`):
a failed, killed or missed run leaves it where it was, so the next run reads everything since. With
no watermark (the first run, or the manifests are gone) or with ``full_load``, the run reads every
Task before ``until``. A ``SELECT COUNT()`` through ``queryAll`` decides the API: REST ``queryAll``
(following ``nextRecordsUrl`` until ``done``) up to ``bulk_threshold`` Tasks, Bulk API 2.0
``queryAll`` above.

Records are spooled to a JSON-lines file one page at a time (memory stays bounded whatever the
volume) and validated into ``salesforce_task/source=api/interval=<from>_<until>/tasks.parquet``,
beside a ``_manifest.json`` that records the ``SystemModstamp`` range stored. Versions the lake
already holds (the overlap re-reads them) are not written again. The partition appears only when
the whole extraction succeeded, in one rename, together with the watermark it advances.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import Operation
from simple_salesforce.exceptions import SalesforceOperationError

from calltrail.lake.convert import DEFAULT_MEMORY_LIMIT, ConvertResult, convert
from calltrail.lake.layout import quarantine_dir
from calltrail.lake.partitions import interval_key, replace_partition
from calltrail.salesforce.client import (
    BULK_EXTRACTION_CALLS,
    REST_EXTRACTION_CALLS,
    REST_PAGE_RECORDS,
    ResilientSalesforce,
    SalesforceExtractionError,
    discard_query_job,
    list_query_jobs,
)
from calltrail.salesforce.task_record import (
    contract,
    count_soql,
    field_names,
    full_soql,
    incremental_soql,
    modstamp_filter,
    soql_datetime,
)
from calltrail.salesforce.watermark import (
    API_DATASET,
    MANIFEST,
    PARQUET,
    parse_utc,
    partitions_reaching,
    read_watermark,
)
from calltrail.settings import SalesforceSettings

log = logging.getLogger(__name__)

__all__ = ["API_DATASET", "ExtractionResult", "bulk_pages", "count_tasks", "extract_tasks", "rest_pages"]


class BulkJobFailed(SalesforceExtractionError):
    pass


@dataclass
class ExtractionResult:
    kind: str  # "full" or "incremental"
    mode: str  # "rest_queryAll" or "bulk2_queryAll"
    soql: str
    pages: int
    records: int
    partition: Path | None  # None: every version read was already in the lake
    result: ConvertResult
    watermark: str | None  # after this run

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "mode": self.mode, "soql": self.soql, "pages": self.pages,
                "records": self.records, "partition": str(self.partition) if self.partition else None,
                "watermark": self.watermark, **self.result.as_dict()}


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


class _NothingNew(Exception):
    """The window held no version the lake lacks: nothing is committed."""


def count_tasks(client: ResilientSalesforce, where: str = "") -> int:
    """``SELECT COUNT() FROM Task`` through ``queryAll`` (deleted Tasks count): one API call."""
    soql = count_soql(where)
    page = client.call("queryAll COUNT()", lambda sf: sf.query(soql, include_deleted=True))
    return int(page["totalSize"])


def task_pages(
    client: ResilientSalesforce, sf: SalesforceSettings, soql: str, expected: int, *, poll_seconds: float = 2.0
) -> tuple[str, Iterator[list[dict[str, Any]]]]:
    """REST ``queryAll`` up to ``sf.bulk_threshold`` expected records, Bulk API 2.0 ``queryAll`` above."""
    if expected > sf.bulk_threshold:
        return "bulk2_queryAll", bulk_pages(client, soql, page_size=sf.bulk_page_size, poll_seconds=poll_seconds)
    return "rest_queryAll", rest_pages(client, soql)


def extraction_calls(mode: str, expected: int) -> int:
    """API requests a run through ``mode`` of ``expected`` records needs, /limits and COUNT() included."""
    if mode == "bulk2_queryAll":
        return BULK_EXTRACTION_CALLS
    return max(REST_EXTRACTION_CALLS, 2 + math.ceil(max(expected, 1) / REST_PAGE_RECORDS))


def _modstamp(record: dict[str, Any]) -> datetime | None:
    value = record.get("SystemModstamp")
    try:
        return parse_utc(str(value)) if value else None
    except ValueError:
        return None  # the contract quarantines it with the reason


def _stored_range(parquet: Path) -> tuple[datetime | None, datetime | None]:
    con = duckdb.connect()
    try:
        low, high = con.execute("select min(SystemModstamp), max(SystemModstamp) from read_parquet(?)",
                                [str(parquet)]).fetchone()
    finally:
        con.close()
    return (low.replace(tzinfo=UTC) if low else None, high.replace(tzinfo=UTC) if high else None)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def extract_tasks(
    client: ResilientSalesforce,
    sf: SalesforceSettings,
    lake_dir: Path,
    *,
    until: datetime | None = None,
    full_load: bool = False,
    poll_seconds: float = 2.0,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> ExtractionResult:
    """Extract every Task version changed since the watermark (less the overlap) and before ``until``.

    ``until`` defaults to now. ``full_load`` ignores the watermark and reads every Task, as the first
    run does.
    """
    until = (until or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)  # SOQL has whole seconds
    mark = None if full_load else read_watermark(lake_dir)
    # Daily API budget, read once: before any query, even the smallest run must fit; once the
    # COUNT() has chosen REST or Bulk, the run it chose must fit before a Task is read.
    budget = client.read_api_budget()
    if budget is not None:
        budget.require(REST_EXTRACTION_CALLS, "Nothing was queried")
    if mark is None:
        kind, since = "full", None
        key = f"full_{until.strftime('%Y%m%dT%H%M%SZ')}"
        known = sorted((lake_dir / API_DATASET).glob(f"*/{PARQUET}"))
        reason = "forced full reload" if full_load else "no watermark in the lake (first run, or its manifests are gone)"
        log.info("full load of every Task before %s: %s", soql_datetime(until), reason)
    else:
        kind, since = "incremental", min(mark.at - timedelta(minutes=sf.overlap_minutes), until)
        key = interval_key(since, until)
        known = partitions_reaching(lake_dir, since)
        log.info("watermark %s (from %s); reading SystemModstamp >= %s (overlap %d min) and < %s",
                 soql_datetime(mark.at), mark.partition.name, soql_datetime(since), sf.overlap_minutes,
                 soql_datetime(until))
    expected = count_tasks(client, modstamp_filter(since, until))
    if since is None:
        soql = full_soql(sf, until)
    elif expected > sf.bulk_threshold:  # Bulk API 2.0 gains nothing from an ORDER BY and may time out on it
        soql = f"SELECT {', '.join(field_names(sf))} FROM Task {modstamp_filter(since, until)}"
    else:
        soql = incremental_soql(sf, since, until)
    partition = lake_dir / API_DATASET / f"interval={key}"
    quarantine_file = quarantine_dir(lake_dir, API_DATASET) / f"interval={key}.jsonl"
    pages = records = 0
    highest: datetime | None = None
    mode, source = task_pages(client, sf, soql, expected, poll_seconds=poll_seconds)
    if budget is not None:
        budget.require(extraction_calls(mode, expected),
                       f"Only the COUNT() was queried ({expected} Task record(s), {mode}); no Task was read")
    log.info("extracting %d Task record(s) through %s: %s", expected, mode, soql)
    try:
        with replace_partition(partition, lake_dir) as work:
            spool = work / "_spool.jsonl"
            with spool.open("w") as fh:
                for page in source:
                    pages += 1
                    for record in page:
                        record.pop("attributes", None)
                        stamp = _modstamp(record)
                        if stamp is not None and (highest is None or stamp > highest):
                            highest = stamp
                        fh.write(json.dumps(record, default=str) + "\n")
                    records += len(page)
                    log.info("page %d: %d record(s), %d so far", pages, len(page), records)
            quarantine_file.unlink(missing_ok=True)
            result = convert(spool, contract(sf), work / PARQUET, quarantine_file, fmt="jsonl",
                             source_label=f"salesforce {mode} {key}", existing_keys=known or None,
                             memory_limit=memory_limit)
            spool.unlink()
            advances = highest is not None and (mark is None or highest > mark.at)
            if not (result.rows_valid or result.rows_quarantined or advances):
                raise _NothingNew
            low, high = _stored_range(work / PARQUET)
            # The watermark is what this extraction stored: its valid rows, and the quarantined ones
            # (kept in the quarantine with their reasons) so that they are not read again each hour.
            high = max(v for v in (high, highest) if v is not None) if (high or highest) else None
            (work / MANIFEST).write_text(json.dumps({
                "kind": kind, "mode": mode, "soql": soql, "pages": pages, "records": records,
                "window_from": _iso(since), "window_until": until.isoformat(),
                "watermark_before": _iso(mark.at if mark else None),
                "min_system_modstamp": _iso(low), "max_system_modstamp": _iso(high),
                "extracted_at": datetime.now(UTC).isoformat(), **result.as_dict()}, indent=2) + "\n")
    except _NothingNew:
        log.info("read %d Task record(s) in %d page(s): every version is already in the lake; nothing written, "
                 "the watermark stays at %s", records, pages, soql_datetime(mark.at) if mark else "none")
        return ExtractionResult(kind, mode, soql, pages, records, None, result, _iso(mark.at if mark else None))
    log.info("extracted %d Task record(s) in %d page(s) into %s, %d new version(s); watermark now %s "
             "(%d retries, %d re-authentications)", records, pages, partition, result.rows_valid,
             _iso(high), client.retries, client.reauthentications)
    return ExtractionResult(kind, mode, soql, pages, records, partition, result, _iso(high))
