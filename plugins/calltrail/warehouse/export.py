"""``calltrail export``: one published mart into a CSV or Parquet file, from the configured target.

The rows are read from the publish schema of the warehouse the dbt target names (the DuckDB file,
or the PostgreSQL database of ``CALLTRAIL_PG_*``), as Arrow with the columns' declared types,
sorted by every column (the same file for the same rows, whatever the engine returned first) and
written with pyarrow: the same rows give the same file on every engine. Timestamps are UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from calltrail.settings import Settings
from calltrail.warehouse.schemas import PUBLISHED, PUBLISHED_MODELS

FORMATS = ("csv", "parquet")
TARGETS = ("duckdb", "postgres")


class ExportError(RuntimeError):
    """The export cannot run: an unknown mart or format, a target it does not read, no such table."""


@dataclass(frozen=True)
class Exported:
    table: str
    path: Path
    rows: int
    bytes: int


def _duckdb_table(settings: Settings, table: str) -> pa.Table:
    from calltrail.warehouse.duckdb_file import connect

    if not settings.warehouse.exists():
        raise ExportError(f"no warehouse at {settings.warehouse}: `make run` first")
    # waits (bounded) while a build holds the file, then fails naming the holder
    con = connect(settings.warehouse, read_only=True, wait_seconds=settings.warehouse_lock_wait_seconds)
    try:
        con.execute("set TimeZone = 'UTC'")
        if not con.execute("select 1 from information_schema.tables where table_schema = ? and table_name = ?",
                           [PUBLISHED, table]).fetchall():
            raise ExportError(f"{PUBLISHED}.{table} does not exist in {settings.warehouse}: nothing is published yet")
        return con.sql(f'select * from "{PUBLISHED}"."{table}"').to_arrow_table()
    finally:
        con.close()


# PostgreSQL type OIDs (pg_type) of the marts' columns and their Arrow types.
_PG_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 25: pa.string(), 1043: pa.string(),
    700: pa.float32(), 701: pa.float64(), 1082: pa.date32(), 1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
}


def _pg_arrow_type(column, exact: bool = True) -> pa.DataType:
    if column.type_code == 1700:  # numeric: its declared precision and scale
        if not exact:
            return pa.float64()
        if column.precision is None or column.scale is None:
            raise ExportError(f"column {column.name} is a numeric without a declared precision and scale")
        return pa.decimal128(column.precision, column.scale)
    if column.type_code not in _PG_TYPES:
        raise ExportError(f"column {column.name} has a PostgreSQL type (oid {column.type_code}) export cannot write")
    return _PG_TYPES[column.type_code]


def arrow_from_cursor(cur, exact: bool = True) -> pa.Table:
    """The rows of an executed psycopg2 cursor as Arrow, typed by the columns' declared types.
    ``exact=False``: numerics are doubles, as DuckDB's ``df`` gives decimals (and an ``avg`` has
    no declared precision)."""
    schema = pa.schema([(c.name, _pg_arrow_type(c, exact)) for c in cur.description])
    rows = cur.fetchall()

    def column(i: int, kind: pa.DataType) -> pa.Array:
        values = [r[i] for r in rows]
        if pa.types.is_floating(kind):
            values = [None if v is None else float(v) for v in values]
        return pa.array(values, type=kind)

    return pa.table([column(i, f.type) for i, f in enumerate(schema)], schema=schema)


def _postgres_table(table: str, environ: Mapping[str, str] | None) -> pa.Table:
    from calltrail.warehouse.postgres import PostgresUnreachable, connect, connection_params

    try:
        con = connect(environ)
    except PostgresUnreachable as exc:
        raise ExportError(str(exc)) from exc
    try:
        cur = con.cursor()
        cur.execute("select 1 from information_schema.tables where table_schema = %s and table_name = %s",
                    (PUBLISHED, table))
        if cur.fetchone() is None:
            raise ExportError(f"{PUBLISHED}.{table} does not exist in PostgreSQL database "
                              f"{connection_params(environ)['dbname']}: nothing is published yet")
        cur.execute(f'select * from "{PUBLISHED}"."{table}"')
        return arrow_from_cursor(cur)
    finally:
        con.close()


def export(settings: Settings, table: str, fmt: str, out: Path, environ: Mapping[str, str] | None = None) -> Exported:
    """Write published mart ``table`` of the configured target to ``out`` as ``fmt``."""
    if table not in PUBLISHED_MODELS:
        raise ExportError(f"{table!r} is not a published mart: one of {', '.join(PUBLISHED_MODELS)}")
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r}: one of {', '.join(FORMATS)}")
    if settings.dbt_target == "duckdb":
        data = _duckdb_table(settings, table)
    elif settings.dbt_target == "postgres":
        data = _postgres_table(table, environ)
    else:
        raise ExportError(f"CALLTRAIL_DBT_TARGET={settings.dbt_target!r}: export reads {' and '.join(TARGETS)}")
    if data.num_rows:
        data = data.sort_by([(name, "ascending") for name in data.column_names])
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    if fmt == "csv":
        pacsv.write_csv(data, partial)
    else:
        pq.write_table(data, partial)
    partial.replace(out)
    return Exported(table, out, data.num_rows, out.stat().st_size)
