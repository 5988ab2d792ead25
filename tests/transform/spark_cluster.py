"""A standalone Spark cluster on this machine (a master and a worker, started from the jars pyspark
ships with its own ``spark-class``), and what the Spark side of the tests runs on it: the spark
target's session method with ``CALLTRAIL_SPARK_MASTER`` naming the master, so that every query runs
on executors, JVMs of the worker's own that read the lake and write the warehouse by path. One
machine, not several: the file system is shared as a cluster's must be (docs/deploying.md).

Run on it (``CALLTRAIL_SPARK_MASTER`` set, after a demo run on the same folders): dbt rebuilds
the attribution and the revenue report whole (``--full-refresh``), in this process as the DAG's
tasks run dbt, and both are read back through calltrail's Spark connection into
``OUT/models/<model>.parquet``.

    python -m tests.transform.spark_cluster OUT
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from calltrail import settings as settings_module
from calltrail.transform.dbt import run_dbt
from calltrail.warehouse.target import open_warehouse
from tests.transform.spark_dump import dump_models
from tests.transform.spark_thrift_server import SPARK_HOME, free_port, listening

# Rebuilt on the cluster: an incremental model of window functions over every touchpoint, and the
# mart of revenue by channel that reads it
REBUILT_ON_THE_CLUSTER = ("fct_attribution", "rpt_revenue_by_channel")


@contextmanager
def standalone_cluster(folder: Path, timeout: float = 180) -> Iterator[str]:
    """A master and a worker (2 cores, 2 GB; its executors' folders in ``folder/work``), each a JVM
    in a process group of its own, their logs in ``folder``; yields the master's URL once the
    worker has registered with it. Both are stopped when the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    spark_class, env = str(SPARK_HOME / "bin" / "spark-class"), {**os.environ, "SPARK_HOME": str(SPARK_HOME)}
    master_port, worker_port = free_port(), free_port()
    url = f"spark://127.0.0.1:{master_port}"
    master = [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
              "--port", str(master_port), "--webui-port", str(free_port())]
    worker = [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
              "--port", str(worker_port), "--webui-port", str(free_port()), "--cores", "2", "--memory", "2g",
              "--work-dir", str(folder / "work"), url]
    master_log = folder / "master.log"
    with listening(master, master_port, master_log, "the Spark master", timeout, env=env, cwd=folder), \
            listening(worker, worker_port, folder / "worker.log", "the Spark worker", timeout, env=env, cwd=folder):
        deadline = time.monotonic() + timeout
        while "Registering worker" not in master_log.read_text():
            if time.monotonic() > deadline:
                raise RuntimeError(f"no worker registered with the Spark master within {timeout:.0f} s: "
                                   f"{master_log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url


def main(out: Path) -> None:
    settings = settings_module.load()
    run_dbt(settings, ["run", "--select", *REBUILT_ON_THE_CLUSTER, "--full-refresh"], in_process=True,
            log_file=out / "dbt.log")
    con = open_warehouse(settings)
    dump_models(settings, con, REBUILT_ON_THE_CLUSTER, out / "models")
    con.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
