"""Run by tests/transform/test_spark.py as its own process (one JVM): the late-arriving data of
tests/transform/late_data.py loaded step by step into a lake and built on Spark after each step,
as the transformation DAG does (the lake's views registered, then dbt): the incremental models (up
to the attribution), incrementally after the first step. Writes, into OUT, each step's mode and
rebuilt visitors, journeys and opportunities (steps.json) and, after the last step (which builds
every model), every model the tests compare (models/<model>.parquet, without Spark's partition
column), for the test to compare with a full build on DuckDB.

    python -m tests.transform.spark_late_data OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

from calltrail import settings as settings_module
from calltrail.tasks.transform import register_lake_on_spark
from calltrail.transform.dbt import run_dbt
from calltrail.warehouse.target import build_schema, open_warehouse
from tests.transform.engine_compare import without_partition_column
from tests.transform.late_data import COMPARED, STEPS, load_step


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
        run_dbt(settings, ["build", *([] if last else ["--select", "+int_increment_state", "+int_journey_state"]), "--exclude-resource-type",
                           "test", "--exclude-resource-type", "unit_test"], in_process=True, log_file=out / "dbt.log")
        con = open_warehouse(settings)
        schema = build_schema(settings)
        mode = con.execute(f"select mode, reason from {schema}.int_increment").fetchall()[0]
        rebuilt = con.execute(f"select bizible_id, visitor_bucket from {schema}.int_changed_visitors").fetchall()
        journeys = con.execute(f"select journey_key from {schema}.int_changed_journeys").fetchall()
        opportunities = con.execute(f"select opportunity_id from {schema}.int_changed_opportunities").fetchall()
        steps.append({"mode": list(mode), "rebuilt": sorted(r[0] for r in rebuilt),
                      "buckets": sorted({r[1] for r in rebuilt}), "journeys": sorted(r[0] for r in journeys),
                      "opportunities": sorted(r[0] for r in opportunities)})
    (out / "steps.json").write_text(json.dumps(steps, indent=1))
    (out / "models").mkdir(exist_ok=True)
    con = open_warehouse(settings)
    for model in COMPARED:
        rows = without_partition_column(con.execute(f"select * from {build_schema(settings)}.{model}").arrow())
        pq.write_table(rows, out / "models" / f"{model}.parquet")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
