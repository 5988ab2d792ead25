"""``calltrail export``: one published mart into a CSV or Parquet file, from the configured target.

The rows are read from the publish schema of the warehouse the dbt target names (the DuckDB file,
the PostgreSQL database of ``CALLTRAIL_PG_*``, or Spark), as Arrow with the columns' declared types,
sorted by every column (the same file for the same rows, whatever the engine returned first) and
written with pyarrow: the same rows give the same file on every engine. Timestamps are UTC (in
Parquet, marked as UTC instants).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from calltrail.settings import Settings
from calltrail.warehouse.arrow import UnreadableColumn, arrow_from_cursor
from calltrail.warehouse.schemas import PUBLISHED_MODELS

FORMATS = ("csv", "parquet")


class ExportError(RuntimeError):
    """The export cannot run: an unknown mart or format, a target it does not read, no such table."""


@dataclass(frozen=True)
class Exported:
    table: str
    path: Path | None  # None: written into a stream (``calltrail export --out -``: standard output)
    rows: int
    bytes: int


def _spark_columns(con, relation: str) -> dict[str, str]:
    """A Spark table's columns and their types, as ``describe`` lists them (before any partitioning
    section)."""
    columns: dict[str, str] = {}
    for name, kind, *_ in con.execute(f"describe {relation}").fetchall():
        if not name or name.startswith("#"):
            break
        columns[name] = kind
    return columns


def _published_table(settings: Settings, table: str, environ: Mapping[str, str] | None) -> pa.Table:
    from calltrail.warehouse.postgres import PostgresUnreachable
    from calltrail.warehouse.target import describe, exists, open_warehouse

    if not exists(settings):
        raise ExportError(f"no warehouse yet ({describe(settings)}): `make run` first")
    try:
        # DuckDB: waits (bounded) while a build holds the file, then fails naming the holder
        con = open_warehouse(settings, read_only=True, environ=environ)
    except PostgresUnreachable as exc:
        raise ExportError(str(exc)) from exc
    with con:
        schema = settings.publish_schema
        if not con.has_table(schema, table):
            raise ExportError(f"{schema}.{table} does not exist in {describe(settings)}: nothing is published yet")
        try:
            return _read_table(con, schema, table)
        except UnreadableColumn as exc:
            raise ExportError(f"{schema}.{table}: {exc}") from exc


def _read_table(con, schema: str, table: str) -> pa.Table:
    sql = f'select * from "{schema}"."{table}"'
    if con.engine == "duckdb":
        return con.con.sql(sql).to_arrow_table()
    if con.thrift:  # the Thrift Server gives no decimal's precision with the rows: the table's own types
        columns = _spark_columns(con, f"`{schema}`.`{table}`")
        return con.execute(f"select {', '.join(f'`{c}`' for c in columns)} from `{schema}`.`{table}`"
                           ).arrow(list(columns.values()))
    if con.engine == "spark":
        return con.execute(sql.replace('"', "`")).arrow()
    cur = con.con.cursor()
    cur.execute(sql)
    return arrow_from_cursor(cur)


def mart_name(name: str, schema: str) -> str:
    """The published mart ``name`` means, as SQL reads a name: in any case, and with or without its
    schema ``schema`` (``published.rpt_revenue_by_channel``)."""
    table = name.strip().lower().removeprefix(f"{schema}.")
    if table not in PUBLISHED_MODELS:
        raise ExportError(f"{name!r} is not a published mart: one of {', '.join(PUBLISHED_MODELS)}")
    return table


def export(settings: Settings, table: str, fmt: str | None, out: Path | BinaryIO,
           environ: Mapping[str, str] | None = None) -> Exported:
    """Write published mart ``table`` of the configured target to ``out`` as ``fmt`` (into
    ``out/TABLE.FMT`` when ``out`` is a folder). The file appears only when it is complete. ``out``
    may be a binary stream instead (standard output, unbuffered): the whole file is written into it
    after every row has been read; a reader that stops early raises ``BrokenPipeError``. ``fmt``
    None: the one ``out``'s name ends in, else CSV; a ``fmt`` that the name contradicts is refused."""
    table = mart_name(table, settings.publish_schema)
    named = out.suffix.lower()[1:] if isinstance(out, Path) and out.suffix.lower()[1:] in FORMATS else None
    if fmt is None:
        fmt = named or "csv"
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r}: one of {', '.join(FORMATS)}")
    if not isinstance(out, Path):
        written = io.BytesIO()
        rows = _write(_sorted(_published_table(settings, table, environ)), fmt, written)
        _write_all(out, written.getbuffer())
        return Exported(table, None, rows, written.tell())
    if out.is_dir():  # a folder: the file in it is named after the mart
        out = out / f"{table}.{fmt}"
    elif named not in (None, fmt):
        raise ExportError(f"cannot write {fmt} into {out}: its name says {named} "
                          f"(--format {named}, or a name ending in .{fmt})")
    try:  # before the rows are read: a path that cannot be written is said at once
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot write {out}: cannot create the folder {out.parent}: {exc.strerror or exc}") from exc
    data = _sorted(_published_table(settings, table, environ))
    partial = out.with_name(out.name + ".partial")
    try:
        rows = _write(data, fmt, partial)
        partial.replace(out)
    except OSError as exc:  # no half-written file is left behind
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise ExportError(f"cannot write {out}: {exc.strerror or exc}") from exc
    return Exported(table, out, rows, out.stat().st_size)


def _write_all(out: BinaryIO, data: memoryview) -> None:
    """Every byte into ``out``; a raw stream (a pipe) may take part of a write, and says so."""
    while data:
        taken = out.write(data)
        if taken is None:  # a non-blocking stream that takes nothing now
            raise ExportError("the output stream is non-blocking and took nothing: write into a file instead")
        data = data[taken:]
    out.flush()


def _sorted(data: pa.Table) -> pa.Table:
    """Sorted by every column: the same rows give the same file, whatever order the engine gave."""
    return data.sort_by([(name, "ascending") for name in data.column_names]) if data.num_rows else data


def _as_utc(data: pa.Table) -> pa.Table:
    """Timestamps marked as UTC instants (Parquet's isAdjustedToUTC): the warehouse's timestamps
    are UTC without a zone, which a Parquet reader would take for local times."""
    schema = pa.schema([f.with_type(pa.timestamp(f.type.unit, tz="UTC"))
                        if pa.types.is_timestamp(f.type) and f.type.tz is None else f for f in data.schema])
    return data.cast(schema)


def _write(data: pa.Table, fmt: str, sink: Path | BinaryIO) -> int:
    if fmt == "csv":
        pacsv.write_csv(data, sink)
    else:
        pq.write_table(_as_utc(data), sink)
    return data.num_rows
