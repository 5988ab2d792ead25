"""The Spark side of tests/transform/test_spark.py, started in the background when the test session
starts (tests/conftest.py), as the live Airflow is: Spark keeps a core busy for several minutes
planning queries, which the rest of the suite would otherwise wait for.

Side by side: `calltrail run` on the spark target (what `CALLTRAIL_DBT_TARGET=spark make run`
runs), then the reading back of its warehouse (tests/transform/spark_dump.py), then models of it
rebuilt and read on a standalone cluster started here (tests/transform/spark_cluster.py), then the same on a
Spark Thrift Server (``CALLTRAIL_SPARK_METHOD=thrift``, a server started here:
spark_thrift_server.py) over TLS that authenticates its users against an LDAP directory
(ldap_server.py), with a refused login and an untrusted certificate there and a publish that
stops half way (spark_publish_stopped.py), and a connection to a plain server without
authentication (dbt's and calltrail's) and the writers' lock between processes there
(thrift_lock_scenario.py); the late-arriving data built step
by step on a second Spark warehouse (spark_late_data.py); and an export whose cluster master does
not answer. DuckDB builds the lake of each demo run beside them (spark_duckdb_side.py), and the
command `calltrail export` reads the session run's warehouse. Each writes its output into its log
in ``OUT``, and their exit codes go into ``OUT/exit_codes.json``.

    python -m tests.transform.spark_suite OUT
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.airflow_env import BIN, calltrail_env
from tests.transform import ldap_server as ldap
from tests.transform.engine_compare import NAMED_SCHEMAS
from tests.transform.spark_cluster import standalone_cluster
from tests.transform.spark_thrift_server import free_port, thrift_server, tls

ROOT = Path(__file__).resolve().parents[2]
# calltrail's own connection to the plain server: who it logged in as, and one query
PLAIN_QUERY = """
import os
from calltrail.warehouse.spark import thrift_connection
cursor = thrift_connection(os.environ).cursor()
cursor.execute("select current_user(), 40 + 2")
print("plain server:", cursor.fetchall())
"""


def environments(out: Path) -> dict[str, dict[str, str]]:
    """The environments of the demo runs on Spark (a session, a Thrift Server) and of the late-data
    steps, each with its own data folder, dbt target folder (each runs dbt beside the other tests)
    and Spark warehouse. The Thrift Server run names the schemas besides the build's otherwise than
    by default; the session run keeps the defaults."""
    demo = calltrail_env(out / "demo", CALLTRAIL_DEMO_VISITORS="80", CALLTRAIL_DBT_TARGET="spark",
                         CALLTRAIL_DBT_TARGET_DIR=str(out / "demo" / "dbt_target"))
    thrift = calltrail_env(out / "thrift", CALLTRAIL_DEMO_VISITORS="80", CALLTRAIL_DBT_TARGET="spark",
                           CALLTRAIL_DBT_TARGET_DIR=str(out / "thrift" / "dbt_target"),
                           CALLTRAIL_SPARK_METHOD="thrift", CALLTRAIL_SPARK_HOST="127.0.0.1",
                           CALLTRAIL_SPARK_PORT=str(free_port()), CALLTRAIL_SPARK_AUTH="LDAP",
                           CALLTRAIL_SPARK_USER=ldap.USER, CALLTRAIL_SPARK_PASSWORD=ldap.PASSWORD,
                           CALLTRAIL_SPARK_USE_SSL="true", CALLTRAIL_SPARK_SSL_CA=str(out / "tls" / "ca.pem"),
                           **NAMED_SCHEMAS)
    late = calltrail_env(out / "late", CALLTRAIL_DBT_TARGET="spark",
                         CALLTRAIL_DBT_TARGET_DIR=str(out / "late" / "dbt_target"))
    # a standalone master's URL where nothing listens: Spark waits about a minute for it
    unanswered = calltrail_env(out / "unanswered", CALLTRAIL_DBT_TARGET="spark",
                               CALLTRAIL_SPARK_MASTER=f"spark://127.0.0.1:{free_port()}")
    return {"demo": demo, "thrift": thrift, "late": late, "unanswered": unanswered}


def _logged(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as fh:
        return subprocess.Popen(cmd, env={**env, "PYTHONPATH": os.pathsep.join(["plugins", "."])}, cwd=ROOT,
                                stdout=fh, stderr=subprocess.STDOUT)


def _apart(cmd: list[str], env: dict[str, str], stem: Path) -> subprocess.Popen:
    """``cmd`` with its output and its errors apart, in ``STEM.stdout`` and ``STEM.stderr``."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{stem}.stdout", "wb") as stdout, open(f"{stem}.stderr", "wb") as stderr:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=stdout, stderr=stderr)


def _unanswered_master_export(out: Path, env: dict[str, str]) -> subprocess.Popen:
    """`calltrail export` with a master that does not answer: its output and its errors apart, in
    ``OUT/unanswered/out.csv.stdout`` and ``.stderr``; the file it must not write is ``out.csv``.
    Mostly a wait, so it runs beside the rest."""
    folder = out / "unanswered"
    (folder / "data" / "warehouse" / "spark").mkdir(parents=True)
    return _apart([str(BIN / "calltrail"), "export", "fct_touchpoints", "--out", str(folder / "out.csv")], env,
                  folder / "out.csv")


def _exports(out: Path, env: dict[str, str]) -> dict[str, int]:
    """`calltrail export` of the demo run's warehouse: a mart into a Parquet file
    (``OUT/spark_out/cli/spark.parquet``, what the command said in ``spark.parquet.stdout``) and one
    to standard output (``OUT/spark_out/cli/piped.stdout``, its errors in ``piped.stderr``). One
    after the other: the warehouse's metastore takes one process at a time."""
    cli = out / "spark_out" / "cli"
    return {"cli_export": _apart([str(BIN / "calltrail"), "export", "rpt_revenue_by_channel", "--format", "parquet",
                                  "--out", str(cli / "spark.parquet")], env, cli / "spark.parquet").wait(),
            "piped_export": _apart([str(BIN / "calltrail"), "export", "fct_touchpoints", "--out", "-"], env,
                                   cli / "piped").wait()}


def _duckdb_side(out: Path, env: dict[str, str], name: str) -> subprocess.Popen:
    """DuckDB on the lake of the run whose environment is ``env`` (spark_duckdb_side.py), in
    ``OUT/NAME``, its output in ``OUT/NAME.log``. Beside the Spark side's next steps: it reads the
    lake, not the Spark warehouse."""
    return _logged([sys.executable, "-m", "tests.transform.spark_duckdb_side", str(out / name)], env,
                   out / f"{name}.log")


def _on_a_cluster(out: Path, env: dict[str, str]) -> int:
    """tests/transform/spark_cluster.py on a standalone cluster started here (its logs and its
    executors' folders in ``OUT/cluster``): its exit code; its output in ``OUT/cluster.log``."""
    try:
        with standalone_cluster(out / "cluster") as master:
            return _logged([sys.executable, "-m", "tests.transform.spark_cluster", str(out / "cluster_out")],
                           {**env, "CALLTRAIL_SPARK_MASTER": master}, out / "cluster.log").wait()
    except RuntimeError as exc:  # the master or the worker did not start: its log is in the message
        (out / "cluster.log").write_text(str(exc))
        return -1


def main(out: Path) -> int:
    envs = environments(out)
    (out / "environments.json").write_text(json.dumps(envs))
    run = _logged([str(BIN / "calltrail"), "run"], envs["demo"], out / "run.log")
    late = _logged([sys.executable, "-m", "tests.transform.spark_late_data", str(out / "late_out")],
                   envs["late"], out / "late.log")
    unanswered = _unanswered_master_export(out, envs["unanswered"])
    codes = {"run": run.wait()}
    duckdb_sides = {}
    if codes["run"] == 0:
        duckdb_sides["duckdb_side"] = _duckdb_side(out, envs["demo"], "duckdb_side")
        dump = _logged([sys.executable, "-m", "tests.transform.spark_dump", str(out / "spark_out")],
                       envs["demo"], out / "dump.log")
        codes["dump"] = dump.wait()
        if codes["dump"] == 0:  # the cluster rebuilds models of the demo's warehouse: once they are read
            codes.update(_exports(out, envs["demo"]))
            codes["cluster"] = _on_a_cluster(out, envs["demo"])
    try:
        serves_tls, _ = tls(out / "tls")  # the CA file the thrift environment names
        with ldap.ldap_server(out / "ldap") as directory, \
                thrift_server(out / "thrift_server", int(envs["thrift"]["CALLTRAIL_SPARK_PORT"]),
                              hiveconf={**directory.hiveconf(), **serves_tls}):
            codes["thrift_run"] = _logged([str(BIN / "calltrail"), "run"], envs["thrift"], out / "thrift_run.log").wait()
            if codes["thrift_run"] == 0:
                duckdb_sides["duckdb_side_of_thrift"] = _duckdb_side(out, envs["thrift"], "duckdb_side_of_thrift")
                codes["thrift_dump"] = _logged([sys.executable, "-m", "tests.transform.spark_dump",
                                                str(out / "thrift_out"), "--no-unit-tests"],
                                               envs["thrift"], out / "thrift_dump.log").wait()
                codes["thrift_export"] = _logged([str(BIN / "calltrail"), "export", "rpt_revenue_by_channel",
                                                  "--format", "parquet", "--out",
                                                  str(out / "thrift_out" / "cli" / "rpt_revenue_by_channel.parquet")],
                                                 envs["thrift"], out / "thrift_export.log").wait()
                codes["publish_stopped"] = _logged([sys.executable, "-m", "tests.transform.spark_publish_stopped",
                                                    str(out / "thrift_out"), str(out / "thrift_server" / "warehouse")],
                                                   envs["thrift"],
                                                   out / "publish_stopped.log").wait()
            # an export that the server or calltrail refuses: its log, and no file at thrift_out/NAME.csv
            for name, changed in (("refused", {"CALLTRAIL_SPARK_PASSWORD": "not-" + ldap.PASSWORD}),
                                  ("untrusted", {"CALLTRAIL_SPARK_SSL_CA": ""})):
                codes[f"thrift_{name}"] = _logged([str(BIN / "calltrail"), "export", "rpt_revenue_by_channel",
                                                   "--format", "csv", "--out", str(out / "thrift_out" / f"{name}.csv")],
                                                  {**envs["thrift"], **changed}, out / f"thrift_{name}.log").wait()
    except RuntimeError as exc:  # slapd or the server did not start: its log is in the message
        (out / "thrift_run.log").write_text(str(exc))
        codes["thrift_run"] = -1
    # the defaults: no TLS, no authentication, as the compose profile's server
    plain_env = {**envs["thrift"], "CALLTRAIL_SPARK_PORT": str(free_port()), "CALLTRAIL_SPARK_USE_SSL": "false",
                 "CALLTRAIL_SPARK_AUTH": "NONE", "CALLTRAIL_SPARK_PASSWORD": "", "CALLTRAIL_SPARK_USER": "calltrail"}
    try:
        with thrift_server(out / "plain_server", int(plain_env["CALLTRAIL_SPARK_PORT"])):
            codes["plain_dbt"] = _logged([str(BIN / "dbt"), "--no-use-colors", "debug", "--project-dir",
                                          str(ROOT / "dbt_project"), "--profiles-dir", str(ROOT / "dbt_project"),
                                          "--target", "spark_thrift"],
                                         plain_env, out / "plain_dbt.log").wait()
            codes["plain_calltrail"] = _logged([sys.executable, "-c", PLAIN_QUERY], plain_env,
                                               out / "plain_calltrail.log").wait()
            codes["thrift_lock"] = _logged([sys.executable, "-m", "tests.transform.thrift_lock_scenario", str(out)],
                                           plain_env, out / "thrift_lock.log").wait()
    except RuntimeError as exc:
        (out / "plain_dbt.log").write_text(str(exc))
        codes["plain_dbt"] = -1
    codes["late"] = late.wait()
    codes["unanswered_export"] = unanswered.wait()
    codes.update({name: process.wait() for name, process in duckdb_sides.items()})
    (out / "exit_codes.json").write_text(json.dumps(codes))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
