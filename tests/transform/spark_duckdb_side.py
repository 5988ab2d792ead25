"""DuckDB on the lake of a demo run of the Spark side (tests/transform/spark_suite.py), for
tests/transform/test_spark.py to compare with what Spark built: its own warehouse, dbt target
folder and report in ``TMP``; built, audited, published and summarised (``TMP/summary.txt``), and
every published mart exported into ``TMP/duck_exports``. Run by the Spark side once the run on
Spark has ended, in the environment of that run (its data folder holds the lake).

    python -m tests.transform.spark_duckdb_side TMP
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from calltrail import settings as settings_module
from calltrail.airflow.run_context import RunInfo
from calltrail.settings import Settings
from calltrail.tasks import quality
from calltrail.tasks.publish import publish
from calltrail.transform.dbt import BUILD_ARGS, run_dbt
from calltrail.warehouse.export import export
from calltrail.warehouse.schemas import PUBLISHED_MODELS
from tests.airflow_env import BIN
from tests.transform.engine_compare import subprocess_out


def duckdb_settings(spark_env: dict[str, str], tmp: Path) -> Settings:
    """The settings of DuckDB on the lake of the Spark run whose environment is ``spark_env``."""
    return settings_module.load({**spark_env, "CALLTRAIL_DBT_TARGET": "duckdb",
                                 "CALLTRAIL_DBT_TARGET_DIR": str(tmp / "dbt_target"),
                                 "CALLTRAIL_WAREHOUSE": str(tmp / "calltrail.duckdb"),
                                 "CALLTRAIL_REPORT_DIR": str(tmp / "report")})


def main(tmp: Path) -> int:
    duck = duckdb_settings(dict(os.environ), tmp)
    run_dbt(duck, [*BUILD_ARGS], in_process=True)
    quality.audit(duck, RunInfo("calltrail_transform", "duckdb_side"))
    publish(duck, in_process=True)
    (tmp / "summary.txt").write_text(subprocess_out([str(BIN / "calltrail"), "summary"], duck.environ))
    for table in PUBLISHED_MODELS:
        for fmt in ("csv", "parquet"):
            export(duck, table, fmt, tmp / "duck_exports" / f"{table}.{fmt}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
