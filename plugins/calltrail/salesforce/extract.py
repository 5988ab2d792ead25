"""Extract a Salesforce object into the lake, page by page, from the lake's own watermark.

One machinery for every object (:mod:`calltrail.salesforce.objects`: Task, Lead, Contact,
Opportunity, OpportunityContactRole). Each run reads ``queryAll`` (so deleted records arrive with
``IsDeleted = true``) for ``SystemModstamp >= watermark - overlap`` up to the run's start (``until``,
now). The watermark is the object's own: the highest ``SystemModstamp`` a successful extraction of
it stored (:mod:`calltrail.salesforce.watermark`): a failed, killed or missed run leaves it where it
was, so the next run reads everything since. With no watermark (the first run, or the manifests are
gone) or with ``full_load``, the run reads every record before ``until``. A ``SELECT COUNT()``
through ``queryAll`` decides the API: REST ``queryAll`` (following ``nextRecordsUrl`` until ``done``)
up to ``bulk_threshold`` records, Bulk API 2.0 ``queryAll`` above.

An object with org-dependent fields (Opportunity's ``CurrencyIsoCode``, multi-currency orgs only)
has its describe read first (one API call); the fields the org lacks are left out of the SOQL and
their columns are null.

Records are spooled to a JSON-lines file one page at a time (memory stays bounded whatever the
volume) and validated into ``<dataset>/source=api/interval=<from>_<until>/<file>.parquet``, beside
a ``_manifest.json`` that records the ``SystemModstamp`` range stored. Versions the lake already
holds (the overlap re-reads them) are not written again. The partition appears only when the whole
extraction succeeded, in one rename, together with the watermark it advances.
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
from calltrail.salesforce.objects import SalesforceObject, modstamp_filter, soql_datetime
from calltrail.salesforce.task_record import task_object
from calltrail.salesforce.watermark import (
    API_DATASET,
    MANIFEST,
    parse_utc,
    partitions_reaching,
    read_watermark,
)
from calltrail.settings import SalesforceSettings

log = logging.getLogger(__name__)

__all__ = ["API_DATASET", "ExtractionResult", "bulk_pages", "count_records", "extract_object",
           "extract_tasks", "rest_pages"]


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
    object: str = "Task"

    def as_dict(self) -> dict[str, Any]:
        return {"object": self.object, "kind": self.kind, "mode": self.mode, "soql": self.soql, "pages": self.pages,
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


def count_records(client: ResilientSalesforce, obj: SalesforceObject, where: str = "") -> int:
    """``SELECT COUNT() FROM <object>`` through ``queryAll`` (deleted records count): one API call."""
    soql = obj.count_soql(where)
    page = client.call(f"queryAll COUNT() ({obj.name})", lambda sf: sf.query(soql, include_deleted=True))
    return int(page["totalSize"])


def record_pages(
    client: ResilientSalesforce, sf: SalesforceSettings, soql: str, expected: int, *, object_name: str = "Task",
    poll_seconds: float = 2.0,
) -> tuple[str, Iterator[list[dict[str, Any]]]]:
    """REST ``queryAll`` up to ``sf.bulk_threshold`` expected records, Bulk API 2.0 ``queryAll`` above."""
    if expected > sf.bulk_threshold:
        return "bulk2_queryAll", bulk_pages(client, soql, page_size=sf.bulk_page_size, poll_seconds=poll_seconds,
                                            object_name=object_name)
    return "rest_queryAll", rest_pages(client, soql)


def fields_absent_in_org(client: ResilientSalesforce, obj: SalesforceObject) -> frozenset[str]:
    """The object's org-dependent fields this org lacks, from its describe (one API call; none
    when the object has no org-dependent field)."""
    if not obj.org_dependent:
        return frozenset()
    describe = client.call(f"describe {obj.name}", lambda sf: getattr(sf, obj.name).describe())
    present = {str(f.get("name", "")).lower() for f in describe.get("fields", [])}
    absent = frozenset(f for f in obj.org_dependent if f.lower() not in present)
    if absent:
        log.info("%s has no %s in this org (e.g. multi-currency is off): not queried, written as null",
                 obj.name, ", ".join(sorted(absent)))
    return absent


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
    """Extract every Task version changed since the watermark (less the overlap) and before ``until``."""
    return extract_object(client, sf, lake_dir, task_object(sf), until=until, full_load=full_load,
                          poll_seconds=poll_seconds, memory_limit=memory_limit)


def extract_object(
    client: ResilientSalesforce,
    sf: SalesforceSettings,
    lake_dir: Path,
    obj: SalesforceObject,
    *,
    until: datetime | None = None,
    full_load: bool = False,
    poll_seconds: float = 2.0,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> ExtractionResult:
    """Extract every version of ``obj`` changed since its watermark (less the overlap) and before ``until``.

    ``until`` defaults to now. ``full_load`` ignores the watermark and reads every record, as the
    first run does.
    """
    until = (until or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)  # SOQL has whole seconds
    dataset = obj.dataset
    api_dataset = dataset.source("api")
    mark = None if full_load else read_watermark(lake_dir, dataset)
    # Daily API budget, read once: before any query, even the smallest run must fit; once the
    # COUNT() has chosen REST or Bulk, the run it chose must fit before a record is read.
    budget = client.read_api_budget()
    if budget is not None:
        budget.require(REST_EXTRACTION_CALLS, "Nothing was queried")
    if mark is None:
        kind, since = "full", None
        key = f"full_{until.strftime('%Y%m%dT%H%M%SZ')}"
        known = sorted((lake_dir / api_dataset).glob(f"*/{dataset.file}"))
        reason = "forced full reload" if full_load else "no watermark in the lake (first run, or its manifests are gone)"
        log.info("full load of every %s before %s: %s", obj.name, soql_datetime(until), reason)
    else:
        kind, since = "incremental", min(mark.at - timedelta(minutes=sf.overlap_minutes), until)
        key = interval_key(since, until)
        known = partitions_reaching(lake_dir, since, dataset)
        log.info("%s watermark %s (from %s); reading SystemModstamp >= %s (overlap %d min) and < %s", obj.name,
                 soql_datetime(mark.at), mark.partition.name, soql_datetime(since), sf.overlap_minutes,
                 soql_datetime(until))
    absent = fields_absent_in_org(client, obj)
    fields = obj.selected(absent)
    expected = count_records(client, obj, modstamp_filter(since, until))
    # Bulk API 2.0 gains nothing from an ORDER BY and may time out on it; a full load needs none.
    soql = obj.soql(fields, since, until, ordered=since is not None and expected <= sf.bulk_threshold)
    partition = lake_dir / api_dataset / f"interval={key}"
    quarantine_file = quarantine_dir(lake_dir, api_dataset) / f"interval={key}.jsonl"
    pages = records = 0
    highest: datetime | None = None
    mode, source = record_pages(client, sf, soql, expected, object_name=obj.name, poll_seconds=poll_seconds)
    if budget is not None:
        budget.require(extraction_calls(mode, expected),
                       f"Only the COUNT() was queried ({expected} {obj.name} record(s), {mode}); "
                       f"no {obj.name} was read")
    log.info("extracting %d %s record(s) through %s: %s", expected, obj.name, mode, soql)
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
            result = convert(spool, obj.contract(), work / dataset.file, quarantine_file, fmt="jsonl",
                             source_label=f"salesforce {obj.name} {mode} {key}", existing_keys=known or None,
                             memory_limit=memory_limit)
            spool.unlink()
            advances = highest is not None and (mark is None or highest > mark.at)
            if not (result.rows_valid or result.rows_quarantined or advances):
                raise _NothingNew
            low, high = _stored_range(work / dataset.file)
            # The watermark is what this extraction stored: its valid rows, and the quarantined ones
            # (kept in the quarantine with their reasons) so that they are not read again each hour.
            high = max(v for v in (high, highest) if v is not None) if (high or highest) else None
            (work / MANIFEST).write_text(json.dumps({
                "object": obj.name, "kind": kind, "mode": mode, "soql": soql, "pages": pages, "records": records,
                "fields_absent_in_org": sorted(absent),
                "window_from": _iso(since), "window_until": until.isoformat(),
                "watermark_before": _iso(mark.at if mark else None),
                "min_system_modstamp": _iso(low), "max_system_modstamp": _iso(high),
                "extracted_at": datetime.now(UTC).isoformat(), **result.as_dict()}, indent=2) + "\n")
    except _NothingNew:
        log.info("read %d %s record(s) in %d page(s): every version is already in the lake; nothing written, "
                 "the watermark stays at %s", records, obj.name, pages, soql_datetime(mark.at) if mark else "none")
        return ExtractionResult(kind, mode, soql, pages, records, None, result, _iso(mark.at if mark else None),
                                obj.name)
    log.info("extracted %d %s record(s) in %d page(s) into %s, %d new version(s); watermark now %s "
             "(%d retries, %d re-authentications)", records, obj.name, pages, partition, result.rows_valid,
             _iso(high), client.retries, client.reauthentications)
    return ExtractionResult(kind, mode, soql, pages, records, partition, result, _iso(high), obj.name)
