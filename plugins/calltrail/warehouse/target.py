"""The warehouse of the configured dbt target, for everything that reads or writes it besides dbt.

The audit gate, the trend history, the calls-missing-BizibleId list, the summary and the report
page go through :func:`open_warehouse`: the DuckDB file when ``CALLTRAIL_DBT_TARGET`` is
``duckdb``, the PostgreSQL database of ``CALLTRAIL_PG_*`` when it is ``postgres``, the Spark
session or the Spark Thrift Server of :mod:`calltrail.warehouse.spark` when it is ``spark``. None
opens the DuckDB file when it is not the target. The connections take the same calls (DuckDB's: ``execute`` with ``?``
parameters, ``fetchone``, ``fetchall``, ``description``, ``df``), so the SQL they run is written
once, in what the engines understand; the few statements that differ (DDL, a delete) are asked of
the engine by name (``engine``).
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from calltrail.settings import Settings


def describe(settings: Settings) -> str:
    """Where the warehouse is, for messages: the DuckDB file, the PostgreSQL database, the Spark
    warehouse folder or Thrift Server."""
    if settings.dbt_target == "postgres":
        from calltrail.warehouse.postgres import connection_params

        p = connection_params(settings.environ)
        return f"PostgreSQL database {p['dbname']} at {p['host']}:{p['port']}"
    if settings.spark_thrift:
        from calltrail.warehouse.spark import profile_output

        out = profile_output(spark_environ(settings), "spark_thrift")
        return f"Spark Thrift Server at {out['host']}:{out['port']}"
    if settings.dbt_target == "spark":
        return f"Spark warehouse {settings.spark_warehouse_dir}"
    return str(settings.warehouse)


def exists(settings: Settings) -> bool:
    """Whether there can be anything in the warehouse: the DuckDB file or the Spark warehouse
    folder exists; a PostgreSQL database or a Spark Thrift Server is assumed to (opening it says
    when it cannot be reached)."""
    if settings.dbt_target == "spark" and not settings.spark_thrift:
        return settings.spark_warehouse_dir.exists()
    return settings.dbt_target != "duckdb" or settings.warehouse.exists()


class _PostgresResult:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    @property
    def description(self) -> Any:
        return self._cursor.description

    def fetchone(self) -> tuple | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall()

    def df(self) -> Any:
        """The rows as pandas, through Arrow with the columns' declared types (as DuckDB's ``df``)."""
        from calltrail.warehouse.arrow import arrow_from_cursor

        return arrow_from_cursor(self._cursor, exact=False).to_pandas()


class _SparkResult:
    """A Spark DataFrame read as a cursor. Rows come through Arrow in the session's time zone (UTC),
    timestamps without a zone as DuckDB gives them (``collect`` would use this process's zone)."""

    def __init__(self, frame: Any) -> None:
        self._frame = frame
        self.description = [(f.name, f.dataType.simpleString(), None, None, None, None, True)
                            for f in frame.schema.fields]

    def arrow(self) -> Any:
        import pyarrow as pa

        table = self._frame.toArrow()
        # Spark's column comments ride along as field metadata: a column is its name and type
        fields = [pa.field(f.name, pa.timestamp(f.type.unit) if pa.types.is_timestamp(f.type) else f.type)
                  for f in table.schema]
        return table.cast(pa.schema(fields))

    def fetchall(self) -> list[tuple]:
        columns = [column.to_pylist() for column in self.arrow().columns]  # names may repeat
        return list(zip(*columns, strict=True))

    def fetchone(self) -> tuple | None:
        rows = self.fetchall()
        return rows[0] if rows else None

    def df(self) -> Any:
        return self.arrow().to_pandas()


class _ThriftResult:
    """A PyHive cursor on the Spark Thrift Server read as a Spark session's result: PyHive parses
    timestamps (in the session's zone, UTC) and decimals; dates come as text and are parsed here."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor
        # (name, type code such as DATE_TYPE, ...); None after a statement that returns no rows
        self.description = cursor.description
        self._rows: list[tuple] | None = None

    def fetchall(self) -> list[tuple]:
        if self._rows is None:
            if self.description is None:
                self._rows = []
            else:
                dates = [i for i, d in enumerate(self.description) if d[1] == "DATE_TYPE"]
                rows = self._cursor.fetchall()
                if dates:
                    rows = [tuple(date.fromisoformat(v) if i in dates and isinstance(v, str) else v
                                  for i, v in enumerate(row)) for row in rows]
                self._rows = rows
        return self._rows

    def fetchone(self) -> tuple | None:
        rows = self.fetchall()
        return rows[0] if rows else None

    def arrow(self, types: Sequence[str] | None = None) -> Any:
        """The rows as Arrow: typed by ``types`` (Spark type names, one per column) when given, else
        by their values."""
        import pyarrow as pa

        from calltrail.warehouse.arrow import spark_arrow_type

        rows = self.fetchall()
        names = [d[0] for d in self.description or []]
        columns = [[row[i] for row in rows] for i in range(len(names))]
        if types is None:
            arrays = [pa.array(values) for values in columns]
        else:
            arrays = [pa.array(values, type=spark_arrow_type(t)) for values, t in zip(columns, types, strict=True)]
        return pa.Table.from_arrays(arrays, names=names)

    def df(self) -> Any:
        return self.arrow().to_pandas()


def _spark_literal(value: Any) -> str:
    """A value as a Spark SQL literal (a Thrift Server takes no parameters with a statement)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"cast('{value!r}' as double)"  # a bare 0.5 is a decimal in Spark SQL
    if isinstance(value, Decimal):
        return f"{value}bd"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return f"timestamp'{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"date'{value.isoformat()}'"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def _placeholder_split(sql: str, *, backslash_escapes: bool) -> list[str]:
    """The statement's text around its ``?`` placeholders. A ``?`` inside a quoted string or
    identifier (a doubled quote stays inside; on Spark a backslash escapes the next character) or
    inside a comment is text, not a placeholder."""
    parts: list[str] = []
    start = i = 0
    n = len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"`":
            i += 1
            while i < n:
                if backslash_escapes and c != "`" and sql[i] == "\\":
                    i += 2
                elif sql[i] == c and sql[i + 1:i + 2] == c:
                    i += 2
                elif sql[i] == c:
                    break
                else:
                    i += 1
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c == "?":
            parts.append(sql[start:i])
            i += 1
            start = i
        else:
            i += 1
    parts.append(sql[start:])
    return parts


def _placeholders(sql: str, params: Sequence[Any], *, backslash_escapes: bool) -> list[str]:
    parts = _placeholder_split(sql, backslash_escapes=backslash_escapes)
    if len(parts) != len(params) + 1:
        raise ValueError(f"{len(parts) - 1} placeholders for {len(params)} values in: {sql}")
    return parts


def _spark_sql(sql: str, params: Sequence[Any] | None) -> str:
    """DuckDB's ``?`` placeholders replaced by the values as Spark SQL literals."""
    if not params:
        return sql
    parts = _placeholders(sql, params, backslash_escapes=True)
    return parts[0] + "".join(_spark_literal(value) + part for value, part in zip(params, parts[1:], strict=True))


def _pg_sql(sql: str, params: Sequence[Any] | None) -> tuple[str, Sequence[Any] | None]:
    """DuckDB's ``?`` placeholders as psycopg2's ``%s`` (a literal ``%`` doubled)."""
    if not params:
        return sql, None
    parts = _placeholders(sql, params, backslash_escapes=False)
    return "%s".join(part.replace("%", "%%") for part in parts), list(params)


class Warehouse:
    """A connection to the configured target's warehouse, with DuckDB's calls on either engine."""

    def __init__(self, settings: Settings, con: Any, held: contextlib.ExitStack | None = None) -> None:
        self.settings, self.con = settings, con
        self._held = held  # PostgreSQL, a Spark Thrift Server: the writers' lock, released on close
        self.engine = settings.dbt_target
        self.thrift = settings.spark_thrift

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        if self.engine == "duckdb":
            return self.con.execute(sql, list(params or []))
        if self.thrift:
            cursor = self.con.cursor()
            cursor.execute(_spark_sql(sql, params))
            return _ThriftResult(cursor)
        if self.engine == "spark":
            return _SparkResult(self.con.sql(sql, args=list(params)) if params else self.con.sql(sql))
        cursor = self.con.cursor()
        cursor.execute(*_pg_sql(sql, params))
        return _PostgresResult(cursor)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = [list(r) for r in rows]
        if self.engine == "duckdb":
            self.con.executemany(sql, rows)
        elif self.engine == "spark" and rows:
            # one statement: Spark writes files per insert
            head, values = sql.rsplit(" values ", 1)
            statement = f"{head} values {', '.join([values.strip()] * len(rows))}"
            if self.thrift:
                self.con.cursor().execute(_spark_sql(statement, [v for row in rows for v in row]))
            else:
                self.con.sql(statement, args=[v for row in rows for v in row])
        elif rows:
            self.con.cursor().executemany(_pg_sql(sql, rows[0])[0], rows)

    def write_csv(self, sql: str, path: Path) -> None:
        """The rows of ``sql`` into a CSV file with a header, replaced in one rename."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        cur = self.execute(sql)
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh, lineterminator="\n")
            out.writerow([d[0] for d in cur.description])
            for row in cur.fetchall():
                out.writerow(["" if v is None else v for v in row])
        tmp.replace(path)

    def has_schema(self, schema: str) -> bool:
        if self.thrift:
            return bool(self.execute(f"show schemas like '{schema}'").fetchall())
        if self.engine == "spark":
            return bool(self.con.catalog.databaseExists(schema))
        if self.engine == "postgres":
            from calltrail.warehouse import postgres

            return postgres.has_schema(self.con.cursor(), schema)
        sql = "select count(*) from information_schema.schemata where schema_name = ?"
        return bool(self.execute(sql, [schema]).fetchall()[0][0])

    def ensure_schema(self, schema: str) -> None:
        """Create ``schema`` unless it exists (on PostgreSQL:
        :func:`calltrail.warehouse.postgres.ensure_schema`)."""
        if self.engine == "postgres":
            from calltrail.warehouse import postgres

            postgres.ensure_schema(self.con.cursor(), schema)
        elif not self.has_schema(schema):
            self.execute(f"create schema if not exists {schema}")

    def has_table(self, schema: str, table: str) -> bool:
        if self.thrift:
            if not self.has_schema(schema):
                return False
            return bool(self.execute(f"show tables in `{schema}` like '{table}'").fetchall())
        if self.engine == "spark":
            return bool(self.con.catalog.tableExists(f"{schema}.{table}"))
        # fetchall: the result is complete, so DuckDB lets the next query (or relation) run
        return bool(self.execute("select count(*) from information_schema.tables where table_schema = ? "
                                 "and table_name = ?", [schema, table]).fetchall()[0][0])

    def close(self) -> None:
        try:
            if self.engine != "spark" or self.thrift:  # the process keeps its Spark session (dbt's, when dbt ran here)
                self.con.close()
        finally:
            if self._held is not None:
                self._held.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_warehouse(settings: Settings, *, read_only: bool = False, wait: bool = True,
                   environ: Mapping[str, str] | None = None, doing: str = "this step") -> Warehouse:
    """Open the configured target's warehouse. DuckDB: waits (bounded, ``wait``) while another
    process holds the file, then raises ``WarehouseLocked`` naming it; a Spark session likewise for
    the metastore (``SparkUnavailable``). PostgreSQL: a UTC session
    that commits each statement; ``PostgresUnreachable`` names the server it sought. PostgreSQL and
    a Spark Thrift Server: unless ``read_only``, it holds the writers' lock until it is closed,
    waiting (bounded) for another calltrail process that holds it, then ``PostgresBusy`` or
    ``SparkBusy`` names that one (``doing`` says who waits)."""
    wait_seconds = settings.warehouse_lock_wait_seconds if wait else 0.0
    if settings.spark_thrift:
        from calltrail.warehouse.spark import thrift_connection
        from calltrail.warehouse.thrift_lock import writer_lock as thrift_writer_lock

        env = spark_environ(settings)
        lock = None if read_only else thrift_writer_lock(env, settings.build_schema, wait_seconds, doing,
                                                         stale_seconds=settings.spark_lock_stale_seconds)
        return _locked(settings, lock, lambda: thrift_connection(env))
    if settings.dbt_target == "spark":
        from calltrail.warehouse.spark import session

        return Warehouse(settings, session(spark_environ(settings), wait_seconds))
    if settings.dbt_target == "postgres":
        from calltrail.warehouse.postgres import connect, writer_lock

        env = settings.environ if environ is None else environ
        warehouse = _locked(settings, None if read_only else writer_lock(env, wait_seconds, doing),
                            lambda: connect(env))
        warehouse.con.autocommit = True
        return warehouse
    from calltrail.warehouse.duckdb_file import connect as connect_duckdb

    con = connect_duckdb(settings.warehouse, read_only=read_only, wait_seconds=wait_seconds)
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")  # DuckDB's bar for long queries, in a task log
    return Warehouse(settings, con)


def _locked(settings: Settings, lock: contextlib.AbstractContextManager | None, connect: Callable[[], Any]
            ) -> Warehouse:
    """A connection (``connect()``) made once ``lock`` (a writers' lock, or None) is held, which it
    releases when it is closed."""
    held = contextlib.ExitStack()
    if lock is not None:
        held.enter_context(lock)
    try:
        return Warehouse(settings, connect(), held)
    except BaseException:
        held.close()
        raise


def spark_environ(settings: Settings) -> dict[str, str]:
    """The environment the profile's spark output is rendered with, as dbt sees it
    (``calltrail.transform.dbt.dbt_env`` sets the same folder)."""
    return {**settings.environ, "CALLTRAIL_SPARK_WAREHOUSE_DIR": str(settings.spark_warehouse_dir)}
