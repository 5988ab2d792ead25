"""The lake's partitions in PostgreSQL's lake schema (``CALLTRAIL_LAKE_SCHEMA``, default ``lake``),
for the dbt target ``postgres``.

DuckDB reads the lake's Parquet files in place; PostgreSQL cannot, so each partition file is
copied into the table of its dataset (``lake.web_events``, ``lake.salesforce_task``, ...) with
``COPY``. A partition is loaded once: the table ``lake._calltrail_partitions`` records every
loaded file, and a file is loaded in one transaction with its record (a failed load leaves
nothing behind; the next run loads it again). Partitions are immutable (``lake/partitions.py``),
so a recorded file is never read again. Every row carries ``_lake_file``, the partition it came
from. A file with a column the table does not have yet adds the column (Salesforce fields a later
extraction brings); a column a file lacks is NULL in its rows, as DuckDB's ``union_by_name`` reads
it.

Connection: the dbt profile's environment (``CALLTRAIL_PG_HOST``, ``_PORT``, ``_USER``,
``_PASSWORD``, ``_DATABASE``; see ``dbt_project/profiles.yml``).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from calltrail.lake.layout import datasets
from calltrail.warehouse.postgres import connect, ensure_schema, quoted, writer_lock

log = logging.getLogger(__name__)

LEDGER = "_calltrail_partitions"
FILE_COLUMN = "_lake_file"


class PartitionLoadError(RuntimeError):
    """A partition file could not be copied (a column whose type differs from the table's, ...)."""


@dataclass(frozen=True)
class LoadResult:
    schema: str
    dataset: str
    files: int  # partitions loaded by this run
    rows: int
    skipped: int  # partitions loaded before

    def describe(self) -> str:
        return (f"{self.schema}.{self.dataset}: {_count(self.files, 'new partition')} ({_count(self.rows, 'row')}) loaded, "
                f"{self.skipped:,} loaded before")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _pg_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_timestamp(arrow_type):
        return "timestamptz" if arrow_type.tz else "timestamp"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return "bigint"
    if pa.types.is_floating(arrow_type):
        return "double precision"
    if pa.types.is_decimal(arrow_type):
        return f"numeric({arrow_type.precision}, {arrow_type.scale})"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "text"
    raise ValueError(f"no PostgreSQL type for the lake's Arrow type {arrow_type}")


def _columns(cur, schema: str, table: str) -> set[str]:
    cur.execute("select column_name from information_schema.columns where table_schema = %s and table_name = %s",
                (schema, table))
    return {r[0] for r in cur.fetchall()}


def _csv(table: pa.Table) -> bytes:
    """The rows as CSV for COPY: NULL unquoted and empty, every string quoted (an empty string
    stays an empty string)."""
    out = io.BytesIO()
    options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
    pacsv.write_csv(table, out, write_options=options)
    return out.getvalue()


def load_partition(conn, schema: str, dataset: str, lake_dir: Path, path: Path) -> int:
    """Copy one partition file into ``<schema>.<dataset>`` and record it, in one transaction."""
    relative = str(path.relative_to(lake_dir))
    table = pq.read_table(path)
    with conn, conn.cursor() as cur:
        cur.execute(f"create table if not exists {quoted(schema)}.{quoted(dataset)} ({quoted(FILE_COLUMN)} text not null)")
        have = _columns(cur, schema, dataset)
        for field in table.schema:
            if field.name not in have:
                cur.execute(f"alter table {quoted(schema)}.{quoted(dataset)} "
                            f"add column {quoted(field.name)} {_pg_type(field.type)}")
        # A partition recorded by an earlier run that died between COPY and COMMIT cannot exist
        # (one transaction); this delete makes a reload after a manual ledger edit idempotent too.
        cur.execute(f"delete from {quoted(schema)}.{quoted(dataset)} where {quoted(FILE_COLUMN)} = %s", (relative,))
        table = table.append_column(FILE_COLUMN, pa.array([relative] * table.num_rows, pa.string()))
        columns = ", ".join(quoted(n) for n in table.column_names)
        cur.copy_expert(f"copy {quoted(schema)}.{quoted(dataset)} ({columns}) from stdin with (format csv)",
                        io.BytesIO(_csv(table)))
        cur.execute(f"insert into {quoted(schema)}.{quoted(LEDGER)} (dataset, path, row_count) values (%s, %s, %s)",
                    (dataset, relative, table.num_rows))
    return table.num_rows


def load_lake(lake_dir: Path, environ: Mapping[str, str] | None = None, *, schema: str,
              wait_seconds: float = 0.0) -> list[LoadResult]:
    """Load every partition of every dataset that is not loaded yet into ``schema``; report per dataset.

    Holds the warehouse's writers' lock while it loads, waiting up to ``wait_seconds`` for another
    calltrail process that writes it (:func:`calltrail.warehouse.postgres.writer_lock`)."""
    with writer_lock(environ, wait_seconds, "the lake's load"):
        return _load_lake(lake_dir, environ, schema)


def _load_lake(lake_dir: Path, environ: Mapping[str, str] | None, schema: str) -> list[LoadResult]:
    import psycopg2

    conn = connect(environ)
    try:
        with conn, conn.cursor() as cur:
            ensure_schema(cur, schema)
            cur.execute(f"create table if not exists {quoted(schema)}.{quoted(LEDGER)} ("
                        "dataset text not null, path text primary key, row_count bigint not null, "
                        "loaded_at timestamptz not null default now())")
            cur.execute(f"select path from {quoted(schema)}.{quoted(LEDGER)}")
            loaded = {r[0] for r in cur.fetchall()}
        results = []
        for dataset, glob in datasets().items():
            files = sorted(lake_dir.glob(glob))
            new = [f for f in files if str(f.relative_to(lake_dir)) not in loaded]
            rows = 0
            for i, path in enumerate(new, 1):
                try:
                    rows += load_partition(conn, schema, dataset, lake_dir, path)
                except (psycopg2.Error, ValueError) as exc:
                    # The partition's transaction is rolled back: nothing of it is loaded, and the
                    # partitions loaded before stay recorded; the next run starts again here.
                    raise PartitionLoadError(f"{schema}.{dataset}: loading {path} failed: {exc}".strip()) from exc
                if i % 50 == 0 or i == len(new):
                    log.info("%s.%s: %d of %d new partitions loaded (%d rows)", schema, dataset, i, len(new), rows)
            results.append(LoadResult(schema, dataset, len(new), rows, len(files) - len(new)))
        return results
    finally:
        conn.close()
