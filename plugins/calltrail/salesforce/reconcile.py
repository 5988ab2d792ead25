"""Deletes beyond the Recycle Bin: compare the Ids Salesforce still has with the lake's.

Written for Tasks below; every object of :mod:`calltrail.salesforce.objects` is reconciled the same
way (:func:`reconcile_object`), into its own dataset's ``source=reconciliation``.

``queryAll`` shows a deleted Task only while it is in the Recycle Bin (about 15 days); a Task
deleted while extraction was down for longer, or purged at once, never arrives with
``IsDeleted = true``. The reconciliation lists every Id Salesforce still has (``SELECT Id FROM Task``
through ``queryAll``: REST below ``bulk_threshold`` Tasks, Bulk API 2.0 above), and for every Task
that the API extraction brought into the lake, whose latest version is live and that Salesforce no
longer lists, writes a **tombstone**: a copy of its latest version with ``IsDeleted = true``, a
``SystemModstamp`` one millisecond later, and ``_deleted_by = 'reconciliation'``. Staging keeps the
latest version of each Task and drops deleted ones, so the Task and its touchpoints disappear.

- Tombstones are one partition per run, ``salesforce_task/source=reconciliation/run=<time>/``,
  written atomically with a manifest; deleting that folder undoes the run.
- Idempotent: a Task whose latest version is already deleted gets no second tombstone, and a run
  with nothing to mark writes nothing.
- A Task changed after the listing began (less the overlap, for clock skew) is left alone: the
  extraction may have stored it after Salesforce listed the Ids.
- Tasks known only from landing files are left alone: files may come from elsewhere (the demo).
- Tombstones never move the extraction watermark.
- When more than ``reconcile_max_delete_share`` of the live Tasks would be marked deleted, it writes
  nothing and fails: that is more often a lost permission or another org than a mass delete.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from calltrail.lake.convert import DEFAULT_MEMORY_LIMIT, connect, parquet_list
from calltrail.lake.layout import task_source
from calltrail.lake.partitions import replace_partition
from calltrail.salesforce.client import ResilientSalesforce, SalesforceExtractionError
from calltrail.salesforce.extract import count_records, record_pages
from calltrail.salesforce.objects import SalesforceObject, soql_datetime
from calltrail.salesforce.task_record import task_object
from calltrail.salesforce.watermark import MANIFEST
from calltrail.settings import SalesforceSettings

log = logging.getLogger(__name__)

RECONCILIATION_DATASET = task_source("reconciliation")  # Task's
DELETED_BY = "_deleted_by"
MARKER = "reconciliation"


class ReconciliationRefused(SalesforceExtractionError):
    """Too many records would be marked deleted; nothing was written."""


class _NothingToMark(Exception):
    pass


@dataclass
class ReconcileResult:
    mode: str
    salesforce_ids: int
    live_tasks_checked: int
    tombstones: int
    partition: Path | None
    listed_at: str

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "salesforce_ids": self.salesforce_ids,
                "live_tasks_checked": self.live_tasks_checked, "tombstones": self.tombstones,
                "partition": str(self.partition) if self.partition else None, "listed_at": self.listed_at}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def reconcile_tasks(
    client: ResilientSalesforce,
    sf: SalesforceSettings,
    lake_dir: Path,
    *,
    poll_seconds: float = 2.0,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    now: datetime | None = None,
) -> ReconcileResult:
    """Write tombstones for the lake's live API Tasks that Salesforce no longer has."""
    return reconcile_object(client, sf, lake_dir, task_object(sf), poll_seconds=poll_seconds,
                            memory_limit=memory_limit, now=now)


def reconcile_object(
    client: ResilientSalesforce,
    sf: SalesforceSettings,
    lake_dir: Path,
    obj: SalesforceObject,
    *,
    poll_seconds: float = 2.0,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    now: datetime | None = None,
) -> ReconcileResult:
    """Write tombstones for the lake's live API records of ``obj`` that Salesforce no longer has."""
    listed_at = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    cutoff = listed_at - timedelta(minutes=sf.overlap_minutes)
    dataset = obj.dataset
    parquet = dataset.file
    files = dataset.files(lake_dir)
    if not any(dataset.source("api") in f.as_posix() for f in files):
        log.info("no %s from the Salesforce API in the lake yet: nothing to reconcile", obj.name)
        return ReconcileResult("none", 0, 0, 0, None, listed_at.isoformat())

    expected = count_records(client, obj)
    ids_soql = obj.ids_soql()
    mode, pages = record_pages(client, sf, ids_soql, expected, object_name=obj.name, poll_seconds=poll_seconds)
    log.info("listing the %d %s Id(s) Salesforce still has through %s", expected, obj.name, mode)
    partition = lake_dir / dataset.source("reconciliation") / f"run={listed_at.strftime('%Y%m%dT%H%M%SZ')}"
    names = obj.names
    # Staging's order of versions: SystemModstamp, then LastModifiedDate where the object has it.
    tie = "LastModifiedDate desc nulls last, " if "LastModifiedDate" in names else ""
    salesforce_ids = live = marked = 0
    try:
        with replace_partition(partition, lake_dir) as work:
            ids_file = work / "_salesforce_ids.csv"
            with ids_file.open("w") as fh:
                fh.write("Id\n")
                for page in pages:
                    for record in page:
                        fh.write(f"{record['Id']}\n")
                    salesforce_ids += len(page)
            con = connect(work / "_spill", memory_limit)
            try:
                con.execute(f"create temp table salesforce_ids as select Id from read_csv('{ids_file}', "
                            "columns = {'Id': 'VARCHAR'}, header = true, auto_detect = false)")
                # The latest version of every record in the lake (all sources, as staging ranks them),
                # for the records the API extraction brought in.
                con.execute(f"""
                    create temp table latest as
                    select * exclude (_rank, _from_api) from (
                        select *,
                               row_number() over (partition by Id order by SystemModstamp desc,
                                                  {tie}IsDeleted desc) as _rank,
                               bool_or(filename like '%/source=api/%') over (partition by Id) as _from_api
                        from read_parquet({parquet_list(files)}, union_by_name = true, filename = true)
                    ) where _rank = 1 and _from_api
                """)
                live = con.execute("select count(*) from latest where not coalesce(IsDeleted, false) "
                                   "and SystemModstamp < ?", [cutoff.replace(tzinfo=None)]).fetchone()[0]
                con.execute("""
                    create temp table gone as
                    select * from latest
                    where not coalesce(IsDeleted, false) and SystemModstamp < ?
                      and Id not in (select Id from salesforce_ids)
                """, [cutoff.replace(tzinfo=None)])
                marked = con.execute("select count(*) from gone").fetchone()[0]
                if marked == 0:
                    raise _NothingToMark
                if marked > sf.reconcile_max_delete_share * live:
                    sample = [r[0] for r in con.execute("select Id from gone order by Id limit 5").fetchall()]
                    raise ReconciliationRefused(
                        f"reconciliation would mark {marked:,} of the lake's {live:,} live {obj.name} records "
                        f"deleted ({marked / live:.0%}), more than CALLTRAIL_SF_RECONCILE_MAX_DELETE_SHARE="
                        f"{sf.reconcile_max_delete_share:g}; nothing was written. Salesforce listed "
                        f"{salesforce_ids:,} {obj.name} Id(s). Check that connection {sf.conn_id!r} points at "
                        f"the right org and that its user still sees every {obj.name} (View All Data, or sharing); if "
                        "the deletes are real, raise the setting and run the DAG again. "
                        f"Examples of Ids Salesforce no longer lists: {', '.join(sample)}"
                    )
                columns = ", ".join(
                    "true as \"IsDeleted\"" if n == "IsDeleted"
                    else "SystemModstamp + interval 1 millisecond as \"SystemModstamp\"" if n == "SystemModstamp"
                    else _q(n) for n in names)
                con.execute(f"""
                    copy (select {columns}, cast(? as timestamp) as _loaded_at, '{MARKER}' as {DELETED_BY}
                          from gone order by Id)
                    to '{work / parquet}' (format parquet, compression zstd)
                """, [listed_at.replace(tzinfo=None)])
            finally:
                con.close()
            ids_file.unlink()
            shutil.rmtree(work / "_spill", ignore_errors=True)
            (work / MANIFEST).write_text(_manifest(obj, ids_soql, mode, salesforce_ids, live, marked, listed_at,
                                                   cutoff))
    except _NothingToMark:
        log.info("Salesforce lists %d %s Id(s); every live %s of the lake (%d) is among them: nothing to mark",
                 salesforce_ids, obj.name, obj.name, live)
        return ReconcileResult(mode, salesforce_ids, live, 0, None, listed_at.isoformat())
    log.warning("reconciliation: %d of %d live %s record(s) are gone from Salesforce (deleted beyond the Recycle "
                "Bin); tombstones written to %s", marked, live, obj.name, partition)
    return ReconcileResult(mode, salesforce_ids, live, marked, partition, listed_at.isoformat())


def _manifest(obj: SalesforceObject, soql: str, mode: str, ids: int, live: int, marked: int, listed_at: datetime,
              cutoff: datetime) -> str:
    return json.dumps({"object": obj.name, "kind": "reconciliation", "mode": mode, "soql": soql, "salesforce_ids": ids,
                       "live_tasks_checked": live, "tombstones": marked, "listed_at": listed_at.isoformat(),
                       "versions_before": soql_datetime(cutoff)}, indent=2) + "\n"
