"""Spark SQL type names as Arrow types: how calltrail types the rows of a Spark Thrift Server, which
come without them. A real Thrift Server's rows go through it in tests/transform/test_spark.py; a
real PostgreSQL's cursor through arrow_from_cursor in tests/transform/test_engines.py."""

import pyarrow as pa
import pytest

from calltrail.warehouse.arrow import UnreadableColumn, spark_arrow_type


@pytest.mark.parametrize(("name", "expected"), [
    ("decimal(18,2)", pa.decimal128(18, 2)),
    (" DECIMAL(38, 12) ", pa.decimal128(38, 12)),
    ("varchar(40)", pa.string()),
    ("string", pa.string()),
    ("timestamp", pa.timestamp("us")),
    ("timestamp_ntz", pa.timestamp("us")),
    ("bigint", pa.int64()),
    ("date", pa.date32()),
])
def test_spark_type_names_are_read_as_arrow_types(name, expected):
    assert spark_arrow_type(name) == expected


def test_a_spark_type_without_an_arrow_type_is_refused_by_name():
    with pytest.raises(UnreadableColumn, match=r"Spark type map<string,int> cannot be read as Arrow"):
        spark_arrow_type("map<string,int>")
