"""Run by tests/transform/test_spark.py as its own process (one JVM): the late-arriving data of
tests/transform/late_data.py loaded step by step into a lake and built on Spark after each step,
as the transformation DAG does (the lake's views registered, then dbt): the incremental models (up
to the attribution), incrementally after the first step. Writes, into OUT, each step's mode, its
rebuilt visitors, journeys and opportunities, and the visitors whose events it read again
(steps.json) and, after the last step (which builds every model), every model the tests compare
(models/<model>.parquet, without Spark's partition column), for the test to compare with a full
build on DuckDB. After that last build, as the transformation DAG's docs task follows its build in
the process `make run` runs every task in: the temporary views left in the Spark session, and
whether `dbt docs generate` wrote the docs (docs.json).

Then a run that stopped half way: a bucket's partition of int_sessions dropped, its rows left in
int_sessions__kept, as a run leaves them that stops between the removal and the append; and
int_conversions without one of its columns, as an older release left it. The next run's mode,
whether int_sessions and int_conversions then hold the same rows, and int_conversions' columns go
into stopped.json.

    python -m tests.transform.spark_late_data OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

from calltrail import settings as settings_module
from calltrail.tasks.transform import register_lake_on_spark
from calltrail.transform.dbt import DbtCommandFailed, generate_docs, run_dbt
from calltrail.warehouse.target import open_warehouse
from tests.transform.engine_compare import without_partition_column
from tests.transform.late_data import COMPARED, STEPS, load_step

# the models up to the incremental ones and their bookkeeping; the data tests run on DuckDB's builds
INCREMENTAL_MODELS = ["--select", "+int_increment_state", "+int_journey_state"]
NO_TESTS = ["--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]


def main(out: Path) -> None:
    settings = settings_module.load()
    out.mkdir(parents=True, exist_ok=True)
    steps = []
    for number in range(len(STEPS)):
        load_step(settings, number)
        register_lake_on_spark(settings)
        # the seeds and models (their data tests run on DuckDB's incremental builds): those up to the
        # incremental ones, and after the last step every model
        last = number == len(STEPS) - 1
        run_dbt(settings, ["build", *([] if last else INCREMENTAL_MODELS), *NO_TESTS], in_process=True,
                log_file=out / "dbt.log")
        con = open_warehouse(settings)
        schema = settings.build_schema
        mode = con.execute(f"select mode, reason from {schema}.int_increment").fetchall()[0]
        rebuilt = con.execute(f"select bizible_id, visitor_bucket from {schema}.int_changed_visitors").fetchall()
        journeys = con.execute(f"select journey_key from {schema}.int_changed_journeys").fetchall()
        opportunities = con.execute(f"select opportunity_id from {schema}.int_changed_opportunities").fetchall()
        tasks = con.execute(f"select task_id from {schema}.int_changed_tasks").fetchall()
        read_again = con.execute(f"select distinct bizible_id from {schema}.int_rebuilt_web_events").fetchall()
        steps.append({"mode": list(mode), "rebuilt": sorted(r[0] for r in rebuilt),
                      "buckets": sorted({r[1] for r in rebuilt}), "journeys": sorted(r[0] for r in journeys),
                      "opportunities": sorted(r[0] for r in opportunities),
                      "tasks": sorted(r[0] for r in tasks),
                      "events_read_for": sorted(r[0] for r in read_again)})
    (out / "steps.json").write_text(json.dumps(steps, indent=1))
    (out / "docs.json").write_text(json.dumps(docs_after_build(settings)))
    (out / "models").mkdir(exist_ok=True)
    con = open_warehouse(settings)
    for model in COMPARED:
        rows = without_partition_column(con.execute(f"select * from {settings.build_schema}.{model}").arrow())
        pq.write_table(rows, out / "models" / f"{model}.parquet")
    (out / "stopped.json").write_text(json.dumps(stopped_run(settings, out)))


def docs_after_build(settings) -> dict:
    """The session's temporary views after the last build, and `dbt docs generate` in this process."""
    from pyspark.sql import SparkSession

    views = sorted(t.name for t in SparkSession.builder.getOrCreate().catalog.listTables() if t.isTemporary)
    try:
        index = generate_docs(settings, in_process=True)
    except DbtCommandFailed as exc:
        return {"temporary_views": views, "error": str(exc)[-3000:]}
    return {"temporary_views": views, "index_written": index.exists()}


def stopped_run(settings, out: Path) -> dict:
    """A run that stopped between the removal of a bucket's rows of int_sessions and their append,
    and int_conversions without a column, then the next run (nothing new in the lake)."""
    con = open_warehouse(settings)
    schema = settings.build_schema
    sessions = f"{schema}.int_sessions"

    def rows(table: str = sessions) -> list[tuple]:
        return sorted(tuple(str(v) for v in row) for row in con.execute(f"select * from {table}").fetchall())

    def columns(table: str) -> list[str]:
        return [d[0] for d in con.execute(f"select * from {table} limit 0").description]

    before = rows()
    bucket = con.execute(f"select min(visitor_bucket) from {sessions}").fetchall()[0][0]
    con.execute(f"create table {sessions}__kept using parquet as select * from {sessions} where visitor_bucket = '{bucket}'")
    con.execute(f"alter table {sessions} drop partition (visitor_bucket = '{bucket}')")
    dropped = len(before) - len(rows())
    # int_conversions as an older release left it, without its column match_status: the full run
    # must recreate it with the column (on an incremental run dbt would stop: on_schema_change fail)
    conversions = f"{schema}.int_conversions"
    conversions_before = rows(conversions)
    older = columns(conversions)
    con.execute(f"create table {conversions}__older using parquet partitioned by (visitor_bucket) as "
                f"select {', '.join(c for c in older if c != 'match_status')} from {conversions}")
    con.execute(f"drop table {conversions}")
    con.execute(f"alter table {conversions}__older rename to {conversions}")
    run_dbt(settings, ["build", *INCREMENTAL_MODELS, *NO_TESTS], in_process=True, log_file=out / "stopped_dbt.log")
    con = open_warehouse(settings)
    mode = con.execute(f"select mode, reason from {schema}.int_increment").fetchall()[0]
    left = con.execute(f"show tables in {schema} like 'int_sessions__kept'").fetchall()
    return {"rows_dropped": dropped, "mode": list(mode), "same_rows": rows() == before, "kept_table_left": bool(left),
            "older_columns": sorted(set(older) - {"match_status"}), "columns_after": sorted(columns(conversions)),
            "conversions_same_rows": rows(conversions) == conversions_before}


if __name__ == "__main__":
    main(Path(sys.argv[1]))
