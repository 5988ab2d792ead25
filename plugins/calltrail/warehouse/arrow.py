"""Rows from the engines' drivers as Arrow, typed by the columns' declared types: a psycopg2
cursor (PostgreSQL) and the type names of a Spark table (a Spark Thrift Server gives the rows
without them). Export writes these tables; the warehouse's ``df`` reads them as pandas.

pyarrow is imported by the functions that use it, so that this module's error can be caught by
commands that never read rows (the command line starts without pyarrow).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


class UnreadableColumn(RuntimeError):
    """A column whose engine type has no Arrow type here."""


def _pg_arrow_type(column: Any, exact: bool = True) -> pa.DataType:
    import pyarrow as pa

    # PostgreSQL type OIDs (pg_type) of the marts' columns and their Arrow types
    pg_types = {
        16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 25: pa.string(), 1043: pa.string(),
        700: pa.float32(), 701: pa.float64(), 1082: pa.date32(), 1114: pa.timestamp("us"),
        1184: pa.timestamp("us", tz="UTC"),
    }
    if column.type_code == 1700:  # numeric: its declared precision and scale
        if not exact:
            return pa.float64()
        if column.precision is None or column.scale is None:
            raise UnreadableColumn(f"column {column.name} is a numeric without a declared precision and scale")
        return pa.decimal128(column.precision, column.scale)
    if column.type_code not in pg_types:
        raise UnreadableColumn(f"column {column.name} has a PostgreSQL type (oid {column.type_code}) "
                               "that calltrail cannot read as Arrow")
    return pg_types[column.type_code]


def arrow_from_cursor(cur: Any, exact: bool = True) -> pa.Table:
    """The rows of an executed psycopg2 cursor as Arrow, typed by the columns' declared types.
    ``exact=False``: numerics are doubles, as DuckDB's ``df`` gives decimals (and an ``avg`` has
    no declared precision)."""
    import pyarrow as pa

    schema = pa.schema([(c.name, _pg_arrow_type(c, exact)) for c in cur.description])
    rows = cur.fetchall()

    def column(i: int, kind: pa.DataType) -> pa.Array:
        values = [r[i] for r in rows]
        if pa.types.is_floating(kind):
            values = [None if v is None else float(v) for v in values]
        return pa.array(values, type=kind)

    return pa.table([column(i, f.type) for i, f in enumerate(schema)], schema=schema)


def spark_arrow_type(name: str) -> pa.DataType:
    """The Arrow type of a Spark SQL type name (``decimal(18,2)``, ``timestamp``, ``string``, ...),
    as a Spark session's Arrow export gives it (timestamps without a zone)."""
    import pyarrow as pa

    name = name.strip().lower()
    decimal = re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", name)
    if decimal:
        return pa.decimal128(int(decimal[1]), int(decimal[2]))
    types = {"string": pa.string(), "boolean": pa.bool_(), "tinyint": pa.int8(), "smallint": pa.int16(),
             "int": pa.int32(), "bigint": pa.int64(), "float": pa.float32(), "double": pa.float64(),
             "date": pa.date32(), "timestamp": pa.timestamp("us"), "timestamp_ntz": pa.timestamp("us")}
    if name.startswith(("varchar", "char")):
        return pa.string()
    if name not in types:
        raise UnreadableColumn(f"a column of Spark type {name} cannot be read as Arrow through the Thrift Server")
    return types[name]
