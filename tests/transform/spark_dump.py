"""Run by tests/transform/test_spark.py as its own process (one JVM, started once, ended with it):
every intermediate model and mart of the spark target's build as Parquet, read through calltrail's
Spark connection, and every published mart exported with `calltrail.warehouse.export` in both
formats. Then the unit tests run on Spark (dbt in this process, on the same Spark session), but
those of int_sessions and fct_touchpoints: Spark plans each of their queries (the channel rules) for
10 to 30 s, 8 minutes in all. Their macros run in the build all the same, whose rows the test
compares with DuckDB's; `--all-unit-tests` runs them too (all 94 passed on Spark when this was
written), `--no-unit-tests` none (on the Thrift Server: the same SQL as on the session, which they
test).

    python -m tests.transform.spark_dump OUT [--all-unit-tests | --no-unit-tests]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq

from calltrail import settings as settings_module
from calltrail.transform.dbt import run_dbt
from calltrail.warehouse.export import export
from calltrail.warehouse.schemas import PUBLISHED_MODELS
from calltrail.warehouse.target import open_warehouse
from tests.transform.engine_compare import MODELS, without_partition_column


def dump_models(settings, con, models, out: Path) -> None:
    """Each of ``models`` of the build as ``out/<model>.parquet``, without Spark's partition column."""
    out.mkdir(parents=True, exist_ok=True)
    for model in models:
        rows = without_partition_column(con.execute(f"select * from {settings.build_schema}.{model}").arrow())
        pq.write_table(rows, out / f"{model}.parquet")


def main(out: Path, *, all_unit_tests: bool = False, unit_tests: bool = True) -> None:
    settings = settings_module.load()
    con = open_warehouse(settings)
    dump_models(settings, con, MODELS, out / "models")
    for table in PUBLISHED_MODELS:
        for fmt in ("csv", "parquet"):
            export(settings, table, fmt, out / "exports" / f"{table}.{fmt}")
    con.close()
    if not unit_tests:
        return
    slow = [] if all_unit_tests else ["--exclude", "int_sessions", "fct_touchpoints"]
    run_dbt(settings, ["test", "--select", "test_type:unit", *slow, "--threads", "2"], in_process=True,
            log_file=out / "unit_tests.log")


if __name__ == "__main__":
    main(Path(sys.argv[1]), all_unit_tests="--all-unit-tests" in sys.argv[2:],
         unit_tests="--no-unit-tests" not in sys.argv[2:])
