"""Build a real lake and warehouse from the demo generator, and change the data the way the field
does (a vendor that stops writing the BizibleId, calls that no longer fall in the window)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from calltrail.demo.generate import generate
from calltrail.lake.convert import parquet_list
from calltrail.salesforce.files import ingest_object_files, ingest_task_files
from calltrail.salesforce.objects import BEYOND_TASK, SalesforceObject
from calltrail.settings import Settings
from calltrail.transform.dbt import run_dbt
from calltrail.web.ingest import ingest_web_events

# The build as a run's, without dbt's data tests: the audit under test reads the models, and the
# data tests run in every whole run of the tests (`calltrail run`); they are half of a build's time
MODELS_ONLY = ("build", "--exclude", "resource_type:unit_test", "resource_type:test")
SF_TIME = "strftime({col}, '%Y-%m-%dT%H:%M:%S.000+0000')"


def build(settings: Settings, *, visitors: int | None = None) -> None:
    """Demo landing files (when ``visitors``), ingestion into the lake, and the dbt build."""
    if visitors:
        generate(settings.landing_dir, visitors=visitors)
    ingest_web_events(settings.web_landing_dir, settings.lake_dir)
    rebuild(settings)


def rebuild(settings: Settings) -> None:
    ingest_task_files(settings.task_landing_dir, settings.lake_dir, settings.salesforce)
    for obj in BEYOND_TASK:  # Leads, Contacts, Opportunities, contact roles
        ingest_object_files(settings.salesforce_landing_dir(obj.folder), settings.lake_dir, obj)
    run_dbt(settings, [*MODELS_ONLY], in_process=True)


def task_ids(settings: Settings, sql: str) -> list[str]:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return [r[0] for r in con.execute(sql).fetchall()]
    finally:
        con.close()


def write_task_updates(settings: Settings, ids: list[str], name: str, **changes: str) -> Path:
    """A Data Loader CSV with a later version of each Task in ``ids``: the latest version from the
    lake with ``changes`` (column -> SQL expression) applied and SystemModstamp a day later."""
    return _write_updates(sorted(settings.lake_dir.glob("salesforce_task/*/*/tasks.parquet")),
                          settings.task_landing_dir / name, ids, changes)


def write_object_updates(settings: Settings, obj: SalesforceObject, ids: list[str] | None, name: str,
                         **changes: str) -> Path:
    """The same for another object (every record when ``ids`` is None), into its landing folder."""
    return _write_updates(obj.dataset.files(settings.lake_dir), settings.salesforce_landing_dir(obj.folder) / name,
                          ids, changes)


def _write_updates(files: list[Path], out: Path, ids: list[str] | None, changes: dict[str, str]) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute(f"create table latest as select * from read_parquet({parquet_list(files)}, union_by_name = true) "
                    "qualify row_number() over (partition by Id order by SystemModstamp desc) = 1")
        if ids is not None:
            con.execute("create table wanted (id varchar)")
            con.executemany("insert into wanted values (?)", [[i] for i in ids])
        columns = [r[0] for r in con.execute("describe latest").fetchall() if r[0] not in ("file", "source", "_loaded_at")]
        changes = {"SystemModstamp": "SystemModstamp + interval 1 day", **changes}
        select = []
        for c in columns:
            expr = changes.get(c, c)
            kind = con.execute(f"select typeof({expr}) from latest limit 1").fetchone()[0]
            select.append(f"{SF_TIME.format(col=expr) if kind == 'TIMESTAMP' else expr} as \"{c}\"")
        wanted = "" if ids is None else " where Id in (select id from wanted)"
        con.execute(f"copy (select {', '.join(select)} from latest{wanted}) "
                    f"to '{out}' (header, delimiter ',')")
    finally:
        con.close()
    return out
