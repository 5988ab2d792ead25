"""The Spark warehouse of the dbt target ``spark`` (dbt-spark's ``session`` method): a Spark session
in this process, configured as dbt's.

The session's settings are the ``server_side_parameters`` of the profile's ``spark`` output
(``dbt_project/profiles.yml``), read from there so that dbt and calltrail open the same warehouse
and metastore: ``local[*]`` unless ``CALLTRAIL_SPARK_MASTER`` names a cluster, UTC, the tables and
the Derby metastore under ``CALLTRAIL_SPARK_WAREHOUSE_DIR``. Derby admits one process at a time:
the DAG's warehouse tasks run one by one (the pool ``calltrail_warehouse``).

Spark reads the lake where it lies (:mod:`calltrail.transform.spark_lake`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

PROFILES = Path(__file__).resolve().parents[3] / "dbt_project" / "profiles.yml"


class SparkUnavailable(RuntimeError):
    """Spark could not start: no Java, or the metastore is held by another process."""


def session_conf(environ: Mapping[str, str], profiles: Path = PROFILES) -> dict[str, str]:
    """The profile's ``spark`` output's ``server_side_parameters``, rendered as dbt renders them
    (``env_var`` with its default)."""
    import jinja2

    output = yaml.safe_load(profiles.read_text())["calltrail"]["outputs"]["spark"]

    def env_var(name: str, default: str | None = None) -> str:
        if name in environ:
            return environ[name]
        if default is None:
            raise SparkUnavailable(f"{profiles}: the spark output reads {name}, which is not set")
        return default

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return {key: env.from_string(str(value)).render(env_var=env_var)
            for key, value in (output.get("server_side_parameters") or {}).items()}


def session(environ: Mapping[str, str]) -> Any:
    """The process's Spark session (dbt-spark's, when dbt ran here first), with Hive support."""
    from pyspark.sql import SparkSession

    conf = session_conf(environ)
    if "JAVA_HOME" not in os.environ and environ.get("JAVA_HOME"):
        os.environ["JAVA_HOME"] = environ["JAVA_HOME"]
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # pyspark raises PySparkRuntimeError (no Java) or a Py4J error (metastore)
        raise SparkUnavailable(f"Spark did not start (spark.master {conf.get('spark.master')}, warehouse "
                               f"{conf.get('spark.sql.warehouse.dir')}): {str(exc).strip().splitlines()[0]} "
                               "Spark needs Java 17 or later on PATH or in JAVA_HOME (Debian: "
                               "openjdk-17-jre-headless)") from exc
    # ERROR: Spark warns of every globbed lake path it does not find a metadata folder in
    spark.sparkContext.setLogLevel("ERROR")
    return spark
