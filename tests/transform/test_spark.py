"""The whole pipeline on Spark (dbt-spark's session method, pyspark's local[*]) gives DuckDB's rows,
and Spark's incremental builds give a full build's.

The Spark side runs in the background from the start of the session (tests/transform/spark_suite.py):
`CALLTRAIL_DBT_TARGET=spark calltrail run` (what `make run` runs) goes through Airflow on the demo
data (every scenario of the generator): ingestion, the lake's datasets registered as views over
their Parquet files (no copy), dbt, the audit gate, publish, the report page and the summary, all
on Spark; the DuckDB file is never created. A second process then reads every intermediate model
and mart through calltrail's Spark connection, exports every published mart, and runs the unit
tests on Spark, but the slowest two models' (tests/transform/spark_dump.py says why). Beside them,
the same lake is built, audited and published on DuckDB (tests/transform/spark_duckdb_side.py).
Models are compared row by row (order-independent, timestamps in UTC, decimals exact); the summary, the report page, the alerts and the
calls-missing-BizibleId list are the same, and the exports are equal byte for byte. The attribution
and the revenue report of that run are then rebuilt on a standalone cluster started on this machine
(tests/transform/spark_cluster.py), whose executors must write DuckDB's rows too.

The same demo run goes through a Spark Thrift Server (``CALLTRAIL_SPARK_METHOD=thrift``, dbt-spark's
thrift method, a server started from pyspark's jars: tests/transform/spark_thrift_server.py), which
builds into its own warehouse and metastore, serves TLS and logs users in against an LDAP directory
(tests/transform/ldap_server.py); its models, exports, summary, report page and alerts must equal
those of DuckDB on the same lake, and a wrong password or an untrusted certificate must end a
command in one line. dbt and calltrail also connect to a plain server without authentication.

Beside it, the late-arriving data of tests/transform/late_data.py is built on Spark step by step
(tests/transform/spark_late_data.py); every model (the marts included) must then equal one full
build of the final lake on DuckDB.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import socket
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from calltrail import settings as settings_module
from calltrail.transform.dbt import without_colours
from calltrail.warehouse.schemas import PUBLISHED_MODELS
from tests.airflow_env import BIN, calltrail_env, run
from tests.transform import ldap_server
from tests.transform.engine_compare import (
    MODELS,
    NAMED_SCHEMAS,
    assert_same_page_and_hand_off,
    assert_same_rows,
    audit_alerts,
    rows_duckdb,
    rows_parquet,
    summary_section,
)
from tests.transform.late_data import (
    COMPARED,
    NEIGHBOUR,
    REBUILT,
    REBUILT_JOURNEYS,
    REBUILT_OPPORTUNITIES,
    REBUILT_TASKS,
    T_DELETED,
    T_LATE,
    T_STILL,
    build_in_one_go,
)
from tests.transform.spark_cluster import REBUILT_ON_THE_CLUSTER
from tests.transform.spark_duckdb_side import duckdb_settings
from tests.transform.spark_thrift_server import free_port


def suite_result(spark_suite) -> tuple[Path, dict[str, int]]:
    """The Spark side (tests/transform/spark_suite.py), started when the session started: its
    folder and exit codes, once it has finished."""
    out, process = spark_suite
    try:
        process.wait(timeout=2400)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the Spark side did not finish within 40 minutes; {out}") from None
    codes_file = out / "exit_codes.json"
    assert codes_file.exists(), (out / "suite.log").read_text()[-4000:]
    return out, json.loads(codes_file.read_text())


def spark_run(out: Path, codes: dict[str, int], name: str, run: str, dump: str) -> dict:
    """A demo run of the Spark side (``name``: its environment), what it showed, and its dump."""
    spark_env = json.loads((out / "environments.json").read_text())[name]
    run_output = (out / f"{run}.log").read_text()
    assert codes[run] == 0, run_output[-6000:]
    assert codes.get(dump) == 0, (out / f"{dump}.log").read_text()[-6000:]
    spark = settings_module.load(spark_env)
    shown = {"page": (spark.report_dir / "index.html").read_text(), "csv": spark.missing_bizible_id_csv.read_bytes(),
             "duckdb_file_after_run": spark.warehouse.exists()}
    return {"env": spark_env, "spark": spark, "run": run_output, "shown": shown}


def duckdb_side(out: Path, codes: dict[str, int], spark_env: dict[str, str], name: str) -> tuple:
    """DuckDB on the lake of a Spark run, built by the Spark side (spark_duckdb_side.py) in ``OUT/NAME``:
    its settings, its summary and its folder."""
    assert codes.get(name) == 0, (out / f"{name}.log").read_text()[-6000:]
    tmp = out / name
    return duckdb_settings(spark_env, tmp), (tmp / "summary.txt").read_text(), tmp


@pytest.fixture(scope="module")
def engines(spark_suite):
    out, codes = suite_result(spark_suite)
    session = spark_run(out, codes, "demo", "run", "dump")
    spark_env, spark, run_output, shown = session["env"], session["spark"], session["run"], session["shown"]
    dumped = out / "spark_out"
    duck, summary, tmp = duckdb_side(out, codes, spark_env, "duckdb_side")
    # the command's exports, by the Spark side: into a file, and to standard output (where Spark's
    # own output, its Java process's too, must stay out of it)
    exports = dumped / "cli"
    assert codes.get("cli_export") == 0, (exports / "spark.parquet.stderr").read_text()[-3000:]
    cli = (exports / "spark.parquet.stdout").read_text()
    piped = subprocess.CompletedProcess("calltrail export fct_touchpoints --out -", codes.get("piped_export"),
                                        (exports / "piped.stdout").read_bytes(), (exports / "piped.stderr").read_bytes())
    yield {"spark": spark, "duck": duck, "run": run_output, "shown": shown, "dumped": dumped, "cli": cli,
           "piped": piped, "summary": summary, "tmp": tmp}


def test_the_run_on_spark_reads_the_lake_in_place_and_never_creates_the_duckdb_file(engines):
    assert re.search(r"\] register_lake_on_spark\s", engines["run"]), "the transformation DAG registers the lake first"
    assert f"Spark warehouse {engines['spark'].spark_warehouse_dir}" in engines["run"], (
        "the summary names the warehouse it read")
    assert "\n    dbt build: full (first run: no int_increment_state yet)\n" in engines["run"]
    assert not engines["shown"]["duckdb_file_after_run"], "the DuckDB file is not the target: nothing may create it"
    assert not list((engines["spark"].spark_warehouse_dir / "lake.db").glob("*")), (
        "the lake is views over its files, nothing copied into the Spark warehouse")


@pytest.mark.parametrize("model", MODELS)
def test_duckdb_and_spark_give_the_same_rows(engines, model):
    assert_same_rows(model, rows_duckdb(engines["duck"].warehouse, model),
                     rows_parquet(engines["dumped"] / "models" / f"{model}.parquet"), "Spark")


def test_on_a_standalone_cluster_the_executors_rebuild_the_attribution_and_give_duckdbs_rows(engines, spark_suite):
    """The session method with ``CALLTRAIL_SPARK_MASTER`` naming a standalone cluster's master
    (started by the Spark side on this machine: tests/transform/spark_cluster.py): dbt's rebuild of
    the attribution and the revenue report runs on the worker's executors, JVMs of their own, and
    what they wrote, read back through calltrail's connection on the cluster, is DuckDB's."""
    out, codes = suite_result(spark_suite)
    assert codes.get("cluster") == 0, (out / "cluster.log").read_text()[-6000:]
    built = without_colours((out / "cluster_out" / "dbt.log").read_text())
    for model in REBUILT_ON_THE_CLUSTER:
        assert re.search(rf"OK created sql \w+ model calltrail\.{model} ", built), built[-4000:]
    executors = list((out / "cluster" / "work").glob("app-*/*/stderr"))
    assert len(executors) == 1, f"one application, one executor: {executors}"
    assert len(re.findall(r" INFO Executor: Running task ", executors[0].read_text())) > 10, "the executor ran the queries"
    for model in REBUILT_ON_THE_CLUSTER:
        assert_same_rows(model, rows_duckdb(engines["duck"].warehouse, model),
                         rows_parquet(out / "cluster_out" / "models" / f"{model}.parquet"), "a standalone cluster")


def test_the_unit_tests_pass_on_spark(engines):
    log = (engines["dumped"] / "unit_tests.log").read_text()
    done = re.search(r"Done\. PASS=(\d+) WARN=(\d+) ERROR=(\d+) SKIP=(\d+)", log)
    assert done, log[-2000:]
    passed, _, errors, skipped = map(int, done.groups())
    assert (errors, skipped) == (0, 0) and passed >= 70, done.group(0)


def test_the_summary_read_from_spark_equals_duckdbs(engines):
    on_spark = summary_section(engines["run"], "calls and touchpoints")
    assert any(line.strip().startswith("opportunities attributed") for line in on_spark), on_spark
    assert on_spark == summary_section(engines["summary"], "calls and touchpoints")


def test_the_report_page_and_the_hand_off_list_written_on_spark_equal_duckdbs(engines):
    assert_same_page_and_hand_off(engines["shown"], engines["duck"], "Spark")


def test_the_audit_on_spark_raises_the_alerts_duckdbs_raises(engines):
    assert engines["duck"].alerts_file != engines["spark"].alerts_file
    assert audit_alerts(engines["spark"]), "the demo raises at least one warning (an opportunity without people)"
    assert audit_alerts(engines["spark"]) == audit_alerts(engines["duck"])


@pytest.mark.parametrize("table", PUBLISHED_MODELS)
def test_export_writes_the_same_files_from_spark_and_duckdb(engines, table):
    for fmt in ("csv", "parquet"):
        spark = (engines["dumped"] / "exports" / f"{table}.{fmt}").read_bytes()
        duck = (engines["tmp"] / "duck_exports" / f"{table}.{fmt}").read_bytes()
        assert spark == duck, f"{table}.{fmt} differs between Spark and DuckDB"
    csv = (engines["dumped"] / "exports" / f"{table}.csv").read_bytes()
    assert csv.count(b"\n") > 1 or table.startswith("dq_"), f"{table} exported no rows"


def test_the_export_command_reads_spark(engines):
    written = engines["dumped"] / "cli" / "spark.parquet"
    assert engines["cli"].startswith("rpt_revenue_by_channel: ") and engines["cli"].rstrip().endswith("from spark)")
    assert written.read_bytes() == (engines["tmp"] / "duck_exports" / "rpt_revenue_by_channel.parquet").read_bytes()


def test_the_export_command_writes_sparks_rows_to_standard_output_and_nothing_else(engines):
    piped = engines["piped"]
    assert piped.returncode == 0, piped.stderr.decode()[-3000:]
    assert piped.stdout == (engines["tmp"] / "duck_exports" / "fct_touchpoints.csv").read_bytes()
    rows = pq.read_table(engines["tmp"] / "duck_exports" / "fct_touchpoints.parquet").num_rows
    said = [line for line in piped.stderr.decode().splitlines() if line.startswith("fct_touchpoints: ")]
    assert said == [f"fct_touchpoints: {rows:,} rows written to standard output ({len(piped.stdout):,} bytes, "
                    "from spark)"], piped.stderr.decode()[-3000:]
    assert "INFO py4j" not in piped.stderr.decode(), "Py4J's chatter at exit is not the user's business"
    # nothing else: of Spark's start, only the line its Java process prints before any logging applies
    assert [line for line in piped.stderr.decode().splitlines() if line not in said] in ([], [JVM_START]), \
        piped.stderr.decode()[-3000:]


# What Spark printed at every start of a session calltrail opened (before: about ten lines in the
# output of each command on the spark target, and a progress bar between the summary's lines)
SPARK_START_NOISE = ("Using Spark's default log4j profile", "WARN Utils: Your hostname",
                     "Setting default log level", "To adjust logging level", "WARN NativeCodeLoader",
                     "[Stage 0:", "FutureWarning: PySpark does not yet fully support pandas")
JVM_START = "WARNING: Using incubator modules: jdk.incubator.vector"  # Java's own, at Spark's launch


def test_a_run_on_spark_shows_none_of_sparks_start_up_lines(engines):
    for noise in SPARK_START_NOISE:
        assert noise not in engines["run"], (noise, engines["run"][-4000:])
    # the summary's session waits for the transformation's Java process to end (about 1 s): quietly
    assert "a Java process whose Python driver has ended" not in engines["run"], engines["run"][-4000:]


# Spark's own messages that calltrail's session level (ERROR) keeps out of a process's output
SPARK_NOISE = ("WARN FileStreamSink", "WARN SparkSession", "java.io.FileNotFoundException", "\tat org.apache.")


def test_a_task_process_whose_first_spark_user_is_dbt_logs_no_spark_warnings(engines):
    """What each task the scheduler runs is: a process of its own, here one whose first use of Spark
    is dbt's (before: dbt-spark's session logged Spark's warnings, with a Java stack trace, for every
    lake path read; a scheduled dbt.build task's log had about 20,000 such lines)."""
    spark = engines["spark"]
    log_file = engines["tmp"] / "first_user_dbt.log"
    code = ("import sys; from calltrail import settings; from calltrail.transform.dbt import run_dbt; "
            "run_dbt(settings.load(), ['show', '--inline', 'select count(*) as lake_events from lake.web_events'], "
            "in_process=True, log_file=__import__('pathlib').Path(sys.argv[1]))")
    done = subprocess.run([str(BIN / "python"), "-c", code, str(log_file)], capture_output=True, text=True,
                          env={**spark.environ, "CALLTRAIL_DBT_TARGET_DIR": str(engines["tmp"] / "first_user_target")},
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    events = sum(pq.read_metadata(f).num_rows for f in spark.lake_dir.glob("web_events/*/events.parquet"))
    assert re.search(rf"\|\s*{events}\s*\|", log_file.read_text()), "dbt read the lake through Spark"
    for noise in SPARK_NOISE:
        assert noise not in done.stdout + done.stderr, (noise, done.stderr[-4000:])


def test_the_first_run_on_spark_starts_derby_with_its_log_folder_in_place(engines):
    """Derby writes derby.log into the Spark warehouse folder from its start (before: on the first
    run it found no folder and printed a FileNotFoundException into the run's log)."""
    logs = sorted((engines["spark"].airflow_home / "logs").glob("run-*.log"))
    assert logs, "calltrail run writes its Airflow log"
    first = logs[0].read_text()
    assert "register_lake_on_spark" in first, first[-3000:]
    assert "derby.log (No such file or directory)" not in first, first[-3000:]
    for noise in SPARK_NOISE:
        assert noise not in first, noise


def test_without_java_a_command_on_spark_says_so_in_one_line(tmp_path):
    env = calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET="spark", JAVA_HOME=str(tmp_path / "no-java"))
    (tmp_path / "data" / "warehouse" / "spark").mkdir(parents=True)  # a warehouse to export from
    out = run([str(BIN / "calltrail"), "export", "fct_touchpoints", "--format", "csv",
               "--out", str(tmp_path / "out.csv")], env, timeout=120)
    assert out.returncode == 1
    message = [line for line in out.stdout.splitlines() + out.stderr.splitlines() if line.startswith("calltrail export: ")]
    assert len(message) == 1 and "Spark did not start (spark.master local[*]" in message[0], out.stdout + out.stderr
    assert "Spark needs Java 17" in message[0]
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "out.csv").exists()


def test_a_master_url_spark_does_not_take_is_not_blamed_on_java(tmp_path):
    env = calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET="spark", CALLTRAIL_SPARK_MASTER="bogus://nowhere")
    (tmp_path / "data" / "warehouse" / "spark").mkdir(parents=True)
    out = run([str(BIN / "calltrail"), "export", "fct_touchpoints", "--out", str(tmp_path / "out.csv")], env,
              timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stdout.splitlines() == [
        f"calltrail export: Spark did not start (spark.master bogus://nowhere, warehouse "
        f"{tmp_path / 'data' / 'warehouse' / 'spark'}): Spark's Java process exited at its start; its own output "
        "above says why (e.g. a master URL it does not take: CALLTRAIL_SPARK_MASTER)"]
    assert "Master must either be yarn or start with spark, k8s, or local" in out.stderr, "Spark's own reason"


def test_a_clusters_master_that_does_not_answer_is_named_with_what_happened(spark_suite):
    """A standalone master URL where nothing listens: Spark retries for about a minute, then stops
    (run by the Spark side, beside the rest)."""
    out, codes = suite_result(spark_suite)
    env = json.loads((out / "environments.json").read_text())["unanswered"]
    master, folder = env["CALLTRAIL_SPARK_MASTER"], out / "unanswered"
    stdout, stderr = ((folder / f"out.csv.{name}").read_text() for name in ("stdout", "stderr"))
    assert codes["unanswered_export"] == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert stdout.splitlines() == [
        f"calltrail export: Spark did not start (spark.master {master}, warehouse "
        f"{folder / 'data' / 'warehouse' / 'spark'}): the master did not take the application and Spark "
        "stopped: no master answered at that address (Spark gives up after about a minute), or it refused the "
        "application (CALLTRAIL_SPARK_MASTER names the master; Spark's own log above says more)"], stdout
    assert "All masters are unresponsive" in stderr, "Spark's own reason"
    assert not (folder / "out.csv").exists()


def test_before_the_first_run_on_spark_export_and_report_name_the_spark_warehouse_they_found_missing(tmp_path):
    env = calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET="spark")
    missing = f"no warehouse yet (Spark warehouse {tmp_path / 'data' / 'warehouse' / 'spark'}): `make run` first"
    export_out = run([str(BIN / "calltrail"), "export", "fct_touchpoints", "--out", str(tmp_path / "out.csv")], env)
    report_out = run([str(BIN / "calltrail"), "report"], env)
    assert (export_out.returncode, export_out.stdout) == (1, f"calltrail export: {missing}\n"), export_out.stderr
    assert (report_out.returncode, report_out.stdout) == (1, f"calltrail report: {missing}\n"), report_out.stderr


# A process that holds the spark target's metastore (Derby) until its stdin closes, as a task or a
# command on the spark target does while it runs.
HOLD_METASTORE = """
import sys
from calltrail import settings
from calltrail.warehouse.target import open_warehouse
with open_warehouse(settings.load()) as warehouse:
    warehouse.execute("show databases").fetchall()  # the metastore is open from here on
    print("holding", flush=True)
    sys.stdin.read()
"""

# dbt's wait (calltrail.transform.dbt.wait_for_warehouse) in a process of its own: this one may have
# a Spark session of its own, which never waits for itself
DBT_WAIT = """
from calltrail import settings
from calltrail.transform.dbt import wait_for_warehouse
from calltrail.warehouse.spark import SparkUnavailable
try:
    wait_for_warehouse(settings.load())
except SparkUnavailable as exc:
    print(exc)
"""


def test_a_command_on_spark_waits_for_the_metastore_another_process_holds_then_names_it(tmp_path):
    env = calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET="spark", CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS="2")
    (tmp_path / "data" / "warehouse" / "spark").mkdir(parents=True)
    export_cmd = [str(BIN / "calltrail"), "export", "fct_touchpoints", "--out", str(tmp_path / "out.csv")]
    holder = subprocess.Popen([str(BIN / "python"), "-c", HOLD_METASTORE], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        refused = run(export_cmd, env, timeout=120)
        dbt_wait = run([str(BIN / "python"), "-c", DBT_WAIT], env, timeout=120)
    finally:
        holder.stdin.close()
        holder.wait(timeout=120)
    metastore = tmp_path / "data" / "warehouse" / "spark" / "metastore_db"
    held = f"the Spark metastore {metastore} is held by the Java process PID "
    named = f" of PID {holder.pid}: {BIN / 'python'} -c "
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert refused.stdout.startswith(f"calltrail export: {held}") and named in refused.stdout, refused.stdout
    assert "Waited 2 s (CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS)" in refused.stdout
    assert "held by the Java process PID " in refused.stderr, "the wait is announced in the log"
    assert dbt_wait.stdout.startswith(held) and named in dbt_wait.stdout, dbt_wait.stdout + dbt_wait.stderr
    assert not (tmp_path / "out.csv").exists()
    # once the holder has ended, the metastore is read: nothing is published in it yet
    free = run(export_cmd, env, timeout=120)
    assert free.returncode == 1 and "nothing is published yet" in free.stdout, free.stdout + free.stderr


@pytest.fixture(scope="module")
def late_on_spark(spark_suite):
    """The late-arriving data built step by step on Spark (tests/transform/spark_late_data.py), and
    one full build of the final lake on DuckDB."""
    out, codes = suite_result(spark_suite)
    assert codes["late"] == 0, (out / "late.log").read_text()[-6000:]
    late_env = json.loads((out / "environments.json").read_text())["late"]
    full = settings_module.load({**late_env, "CALLTRAIL_DBT_TARGET": "duckdb",
                                 "CALLTRAIL_DBT_TARGET_DIR": str(out / "late_full" / "dbt_target"),
                                 "CALLTRAIL_WAREHOUSE": str(out / "late_full" / "calltrail.duckdb")})
    build_in_one_go(full)
    return {"steps": json.loads((out / "late_out" / "steps.json").read_text()), "models": out / "late_out" / "models",
            "full": full, "stopped": json.loads((out / "late_out" / "stopped.json").read_text()),
            "docs": json.loads((out / "late_out" / "docs.json").read_text())}


def test_on_spark_the_first_late_data_step_is_full_and_each_later_one_rebuilds_what_it_changed(late_on_spark):
    steps = late_on_spark["steps"]
    assert steps[0]["mode"] == ["full", "first run: no int_increment_state yet"]
    for number, step in enumerate(steps[1:], start=1):
        assert step["mode"] == ["incremental", "what new lake rows and CRM changes reach since the last run"], number
        assert set(step["rebuilt"]) == REBUILT[number], f"step {number + 1}"
        assert step["buckets"] == sorted({visitor[0] for visitor in REBUILT[number]})
        assert set(step["journeys"]) == REBUILT_JOURNEYS[number], f"step {number + 1}"
        assert set(step["opportunities"]) == REBUILT_OPPORTUNITIES[number], f"step {number + 1}"
        assert set(step["tasks"]) == REBUILT_TASKS[number], f"step {number + 1}"
        # only the changed visitors' events are read again, not those of every visitor of their buckets
        assert set(step["events_read_for"]) == REBUILT[number], f"step {number + 1}"


def test_on_spark_units_that_did_not_change_share_the_rebuilt_buckets_and_keep_their_rows(late_on_spark):
    # What makes the equality below cover Spark's kept rows: a rebuilt bucket holds visitors,
    # journeys and opportunities that did not change (NEIGHBOUR, C18, O21 in late_data.py), whose
    # rows are copied aside and appended again rather than computed again.
    models = late_on_spark["models"]
    visitors = set(pq.read_table(models / "int_sessions.parquet").column("bizible_id").to_pylist())
    touchpoints = pq.read_table(models / "fct_touchpoints.parquet").to_pylist()
    journeys = {t["person_id"] or t["bizible_id"] for t in touchpoints}
    opportunities = set(pq.read_table(models / "fct_attribution.parquet").column("opportunity_id").to_pylist())
    tasks = set(pq.read_table(models / "stg_salesforce__tasks.parquet").column("task_id").to_pylist())

    def md5_bucket(key: str) -> str:
        return hashlib.md5(key.encode()).hexdigest()[0]

    def kept(units: set[str], rebuilt: set[str], bucket) -> set[str]:
        buckets = {bucket(unit) for unit in rebuilt}
        return {unit for unit in units - rebuilt if bucket(unit) in buckets}

    step = late_on_spark["steps"][1]  # step 2: LATE's late event
    assert kept(visitors, set(step["rebuilt"]), lambda v: v[0]) == {NEIGHBOUR}
    assert kept(journeys, set(step["journeys"]), md5_bucket) == {"C18"}
    assert kept(opportunities, set(step["opportunities"]), md5_bucket) == {"O21"}
    # steps 3 and 4: T_GAINS's new version, then T_DELETED's and T_MOVED's (T_DELETED's row goes)
    assert kept(tasks, set(late_on_spark["steps"][2]["tasks"]), md5_bucket) == {T_STILL}
    assert kept(tasks | {T_DELETED}, set(late_on_spark["steps"][3]["tasks"]), md5_bucket) == {T_LATE}


def test_on_spark_the_docs_after_an_incremental_build_in_the_same_process_are_written(late_on_spark):
    """As `make run` runs the transformation DAG: every task in one process, the docs after the build.
    dbt-spark leaves a temporary view per incremental model in the process's Spark session; the
    docs' catalog found them without a schema and stopped."""
    docs = late_on_spark["docs"]
    assert docs["temporary_views"] == [], "a dbt command left temporary views in the session"
    assert docs.get("index_written"), docs.get("error")


def test_on_spark_a_run_that_stopped_half_way_makes_the_next_one_full_and_loses_no_row(late_on_spark):
    stopped = late_on_spark["stopped"]
    assert stopped["rows_dropped"] > 0, "the simulated stop removed no row"
    assert stopped["mode"][0] == "full" and "int_sessions__kept" in stopped["mode"][1], stopped["mode"]
    assert stopped["same_rows"], "int_sessions lost or gained rows"
    assert not stopped["kept_table_left"], "the kept rows' table is still there after a run that completed"


def test_on_spark_a_full_run_recreates_an_incremental_table_with_a_column_it_lacked(late_on_spark):
    stopped = late_on_spark["stopped"]
    assert "match_status" not in stopped["older_columns"]
    assert stopped["columns_after"] == sorted([*stopped["older_columns"], "match_status"])
    assert stopped["conversions_same_rows"], "int_conversions lost or gained rows"


@pytest.mark.parametrize("model", COMPARED)
def test_on_spark_the_late_data_built_step_by_step_equals_one_full_build_on_duckdb(late_on_spark, model):
    assert_same_rows(model, rows_duckdb(late_on_spark["full"].warehouse, model),
                     rows_parquet(late_on_spark["models"] / f"{model}.parquet"), "Spark, step by step")


@pytest.fixture(scope="module")
def thrift(spark_suite):
    """The demo run through the Spark Thrift Server, and DuckDB on its lake."""
    out, codes = suite_result(spark_suite)
    run_ = spark_run(out, codes, "thrift", "thrift_run", "thrift_dump")
    assert codes.get("thrift_export") == 0, (out / "thrift_export.log").read_text()[-3000:]
    duck, summary, tmp = duckdb_side(out, codes, run_["env"], "duckdb_side_of_thrift")
    return {**run_, "duck": duck, "summary": summary, "tmp": tmp, "dumped": out / "thrift_out",
            "server": out / "thrift_server" / "warehouse", "cli": (out / "thrift_export.log").read_text()}


def test_the_run_through_a_thrift_server_builds_in_the_servers_warehouse_and_in_no_local_one(thrift):
    env = thrift["env"]
    assert re.search(r"\] register_lake_on_spark\s", thrift["run"]), "the transformation DAG registers the lake first"
    assert f"Spark Thrift Server at 127.0.0.1:{env['CALLTRAIL_SPARK_PORT']}" in thrift["run"], (
        "the summary names the warehouse it read")
    assert not thrift["shown"]["duckdb_file_after_run"], "the DuckDB file is not the target: nothing may create it"
    assert not thrift["spark"].spark_warehouse_dir.exists(), "no Spark session started in calltrail's processes"
    warehouse = thrift["server"]
    assert (warehouse / "calltrail.db" / "fct_touchpoints").is_dir()
    # the schemas as the run's settings name them, none of the default names
    published, lake, meta, quality_ = (NAMED_SCHEMAS[f"CALLTRAIL_{k}_SCHEMA"] for k in
                                       ("PUBLISH", "LAKE", "PUBLISH_LOG", "QUALITY"))
    assert list((warehouse / f"{published}.db").glob("fct_touchpoints__version_*/*.parquet")), (
        "the published mart's version, which its view reads")
    assert (warehouse / f"{meta}.db" / "publications").is_dir()
    assert (warehouse / f"{quality_}.db" / "run_metrics").is_dir()
    assert (warehouse / f"{lake}.db").is_dir()
    assert not list((warehouse / f"{lake}.db").glob("*")), "the lake is views over its files, nothing copied"
    assert sorted(p.name for p in warehouse.glob("*.db")) == sorted(
        f"{s}.db" for s in ("calltrail", published, lake, meta, quality_)), "no schema of a default name"


@pytest.mark.parametrize("model", MODELS)
def test_duckdb_and_a_spark_thrift_server_give_the_same_rows(thrift, model):
    assert_same_rows(model, rows_duckdb(thrift["duck"].warehouse, model),
                     rows_parquet(thrift["dumped"] / "models" / f"{model}.parquet"), "the Spark Thrift Server")


def test_the_summary_report_page_hand_off_list_and_alerts_through_a_thrift_server_equal_duckdbs(thrift):
    on_spark = summary_section(thrift["run"], "calls and touchpoints")
    assert any(line.strip().startswith("opportunities attributed") for line in on_spark), on_spark
    assert on_spark == summary_section(thrift["summary"], "calls and touchpoints")
    assert_same_page_and_hand_off(thrift["shown"], thrift["duck"], "the Spark Thrift Server")
    assert audit_alerts(thrift["spark"]), "the demo raises at least one warning (an opportunity without people)"
    assert audit_alerts(thrift["spark"]) == audit_alerts(thrift["duck"])


@pytest.mark.parametrize("table", PUBLISHED_MODELS)
def test_export_through_a_thrift_server_writes_duckdbs_files(thrift, table):
    for fmt in ("csv", "parquet"):
        spark = (thrift["dumped"] / "exports" / f"{table}.{fmt}").read_bytes()
        assert spark == (thrift["tmp"] / "duck_exports" / f"{table}.{fmt}").read_bytes(), (
            f"{table}.{fmt} differs between the Spark Thrift Server and DuckDB")
    assert (thrift["dumped"] / "exports" / f"{table}.csv").read_bytes().count(b"\n") > 1 or table.startswith("dq_")


def test_the_export_command_reads_a_thrift_server(thrift):
    written = thrift["dumped"] / "cli" / "rpt_revenue_by_channel.parquet"
    assert thrift["cli"].startswith("rpt_revenue_by_channel: ") and thrift["cli"].rstrip().endswith("from spark)")
    assert written.read_bytes() == (thrift["tmp"] / "duck_exports" / "rpt_revenue_by_channel.parquet").read_bytes()


@pytest.fixture(scope="module")
def publish_stopped(spark_suite):
    """What tests/transform/spark_publish_stopped.py saw on the Thrift Server run's warehouse."""
    out, codes = suite_result(spark_suite)
    assert codes.get("publish_stopped") == 0, (out / "publish_stopped.log").read_text()[-4000:]
    return json.loads((out / "thrift_out" / "publish_stopped.json").read_text())


def _versions(tables: list[str], models: list[str]) -> dict[str, set[str]]:
    """Each mart's versions among the tables of the publish schema."""
    return {m: {t for t in tables if t.startswith(f"{m}__version_")} for m in models}


def test_on_spark_a_publish_that_stops_half_way_leaves_every_published_mart_as_it_was(publish_stopped):
    seen = publish_stopped  # a data file of fct_attribution's build table, the sixth mart of eight, broken
    models = seen["models"]
    assert models.index("fct_attribution") == 5
    assert seen["error"] and seen["error"].startswith("DbtCommandFailed: "), seen["error"]
    assert "fct_attribution" in seen["error"], seen["error"]
    before, stopped = seen["before"], seen["stopped"]
    assert all(isinstance(n, int) for n in before["counts"].values()), before
    written = {m for m, found in _versions(stopped["tables"], models).items()
               if found - _versions(before["tables"], models)[m]}
    assert set(models[:5]) <= written <= set(models[:6]), written  # it got that far, and no further
    assert stopped["counts"] == before["counts"], "a published mart was dropped or changed by the publish that failed"
    assert stopped["reads"] == before["reads"], "a view was pointed at a version of the publish that failed"
    assert stopped["publications"] == before["publications"], "a publish that failed was recorded"
    assert set(models) <= set(stopped["tables"])


def test_on_spark_each_published_mart_is_a_view_of_the_version_its_publish_wrote(publish_stopped):
    seen, schema = publish_stopped, publish_stopped["publish_schema"]
    before, following = seen["before"], seen["next"]
    assert before["reads"][seen["old_layout"]] == "(a table)"  # as publish on Spark left it before views
    for model in seen["models"]:
        reads = following["reads"][model]
        assert reads.startswith(f"{schema}.{model}__version_"), (model, reads)
        assert reads != before["reads"][model] and reads not in seen["stopped"]["tables"], (model, reads)
    assert following["counts"] == before["counts"]  # the same build, published again
    assert following["publications"] == before["publications"] + 1


def test_on_spark_publish_keeps_the_versions_read_until_then_and_drops_the_others(publish_stopped):
    """Every view's new version and the one it read before the publish, which a query begun before
    it may still read; not the copies of the publish that failed, nor the old layout's copy."""
    seen, schema = publish_stopped, publish_stopped["publish_schema"]
    read = {r.removeprefix(f"{schema}.") for state in ("before", "next") for r in seen[state]["reads"].values()}
    assert f"{seen['old_layout']}__publishing" in seen["before"]["tables"]
    assert set(seen["next"]["tables"]) == (set(seen["models"]) | read) - {"(a table)"}


def test_on_a_thrift_server_a_readers_session_open_across_a_publish_reads_the_new_version(publish_stopped):
    """docs/deploying.md: a session keeps the list of the files of a table it read; the view names
    the new version, a table it never read."""
    opened, following = publish_stopped["open_session"], publish_stopped["next"]
    assert opened["count"] == following["counts"]["fct_touchpoints"], opened
    version = following["reads"]["fct_touchpoints"].split(".")[-1]
    assert opened["files"] and all(f"/{version}/" in f for f in opened["files"]), opened


def refusal(out: Path, codes: dict[str, int], name: str) -> str:
    """The one line with which ``calltrail export`` ended in the Spark side's run ``name``."""
    log = (out / f"{name}.log").read_text()
    assert codes[name] == 1, log[-3000:]
    message = [line for line in log.splitlines() if line.startswith("calltrail export: ")]
    assert len(message) == 1, log[-3000:]
    assert "Traceback" not in log
    return message[0]


def test_the_thrift_server_authenticates_with_ldap_and_a_refused_login_ends_a_command_in_one_line(
        thrift, spark_suite):
    out, codes = suite_result(spark_suite)
    env = thrift["env"]
    # the run above logged in with this user and password, on a server that refuses a wrong one
    assert (env["CALLTRAIL_SPARK_AUTH"], env["CALLTRAIL_SPARK_USER"]) == ("LDAP", ldap_server.USER)
    assert (f"the Spark Thrift Server at 127.0.0.1:{env['CALLTRAIL_SPARK_PORT']} refused the login of user "
            f"'{ldap_server.USER}' with authentication LDAP (CALLTRAIL_SPARK_USER") in refusal(out, codes, "thrift_refused")
    assert not (out / "thrift_out" / "refused.csv").exists()


def test_the_thrift_run_went_over_tls_and_a_certificate_not_trusted_ends_a_command_in_one_line(thrift, spark_suite):
    out, codes = suite_result(spark_suite)
    env = thrift["env"]
    # the run above trusted the test's CA; the server serves TLS only (a plain client is turned away)
    assert (env["CALLTRAIL_SPARK_USE_SSL"], env["CALLTRAIL_SPARK_SSL_CA"]) == ("true", str(out / "tls" / "ca.pem"))
    assert (f"the Spark Thrift Server at 127.0.0.1:{env['CALLTRAIL_SPARK_PORT']} presented a certificate this "
            "machine does not trust (CALLTRAIL_SPARK_SSL_CA") in refusal(out, codes, "thrift_untrusted")
    assert not (out / "thrift_out" / "untrusted.csv").exists()


def test_dbt_and_calltrail_connect_to_a_thrift_server_without_tls_or_authentication(spark_suite):
    out, codes = suite_result(spark_suite)
    dbt_log = (out / "plain_dbt.log").read_text()
    assert codes["plain_dbt"] == 0, dbt_log[-3000:]
    assert "Connection test: [OK connection ok]" in dbt_log, dbt_log[-3000:]
    calltrail_log = (out / "plain_calltrail.log").read_text()
    assert codes["plain_calltrail"] == 0, calltrail_log[-3000:]
    assert "plain server: [('calltrail', 42)]" in calltrail_log


@pytest.fixture(scope="module")
def thrift_lock(spark_suite):
    """What tests/transform/thrift_lock_scenario.py saw of the writers' lock on the plain server."""
    out, codes = suite_result(spark_suite)
    log = out / ("thrift_lock.log" if "thrift_lock" in codes else "plain_dbt.log")
    assert codes.get("thrift_lock") == 0, log.read_text()[-4000:]
    seen = json.loads((out / "thrift_lock.json").read_text())
    seen["holder"] = f"'calltrail pid {seen['holder_pid']} on {socket.gethostname()}: holding it for the test'"
    return seen


def _busy(message: str, seen: dict, doing: str) -> None:
    """``message`` is the one that names the lock's holder to ``doing``."""
    assert re.fullmatch(
        rf"the warehouse \(Spark Thrift Server at 127\.0\.0\.1:\d+, schema {seen['schema']}\) is being written by "
        rf"{re.escape(seen['holder'])} \(holding it since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC, last heartbeat "
        rf"\d+ s ago\), and {doing} needs to write it, one writer at a time\. Waited \d+ s "
        r"\(CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS\)\. Let that run finish, then run again; nothing was changed by "
        rf"this one\. A writer that died lets go \d+ s after its last heartbeat \(its "
        r"CALLTRAIL_SPARK_LOCK_STALE_SECONDS; or drop view "
        rf"{seen['schema']}\._calltrail_writer once you know it is gone\)\.", message), message


def test_on_a_thrift_server_a_second_writer_waits_then_fails_naming_the_holder(thrift_lock):
    busy = thrift_lock["busy"]
    assert not busy["took"], busy
    _busy(busy["error"], thrift_lock, "a second writer")
    assert 2 <= busy["seconds"] < 60
    # a step that opens the warehouse to write it, and a dbt command by hand, the same in one line
    _busy(thrift_lock["open_for_writing"], thrift_lock, "the data-quality audit")
    dbt = thrift_lock["dbt"]
    assert dbt["code"] == 1, dbt
    said = [line for line in (dbt["stdout"] + dbt["stderr"]).splitlines() if line.startswith("calltrail dbt: ")]
    assert len(said) == 1, dbt
    _busy(said[0].removeprefix("calltrail dbt: "), thrift_lock, "dbt compile")
    assert "Traceback" not in dbt["stderr"]
    # a reader takes no turn
    assert thrift_lock["read_only"] == 42


def test_on_a_thrift_server_a_holder_that_renews_its_heartbeat_keeps_the_lock_past_the_staleness_limit(thrift_lock):
    alive = thrift_lock["alive"]  # the holder's limit of 20 s, a wait of 30 s
    assert not alive["took"], alive
    assert alive["seconds"] >= 30
    assert "A writer that died lets go 20 s after its last heartbeat" in alive["error"]


def test_on_a_thrift_server_a_waiting_writer_takes_its_turn_when_the_holder_lets_go(thrift_lock):
    assert thrift_lock["holder"] in thrift_lock["waiter_said"]
    assert thrift_lock["holder_exit"] == 0
    handover = thrift_lock["handover"]
    assert handover["took"] and handover["waited"] > 0, handover
    assert re.fullmatch(r"calltrail pid \d+ on .+: a second writer", handover["lock_view"]["calltrail.holder"])


def test_on_a_thrift_server_a_dead_holders_lock_is_taken_once_its_heartbeat_is_older_than_the_limit(thrift_lock):
    dead = thrift_lock["left_by_the_dead"]
    assert re.fullmatch(r"calltrail pid \d+ on .+: holding it for the test", dead), dead
    stale = thrift_lock["stale"]  # the dead holder's limit of 3 s
    assert stale["took"], stale
    assert stale["waited"] >= 2, stale
    assert re.fullmatch(r"calltrail pid \d+ on .+: a second writer", stale["lock_view"]["calltrail.holder"])
    taken = [line for line in thrift_lock["stale_log"] if "taken for dead" in line]
    assert len(taken) == 1, thrift_lock["stale_log"]
    assert f"was left by '{dead}' (holding it since " in taken[0]
    assert ("silent for more than 3 s (its CALLTRAIL_SPARK_LOCK_STALE_SECONDS): taken for dead, a second writer "
            "drops it and takes its turn") in taken[0]


def test_on_a_thrift_server_the_staleness_limit_is_the_holders_setting(thrift_lock):
    """A holder through open_warehouse with CALLTRAIL_SPARK_LOCK_STALE_SECONDS=10 states it in its lock;
    killed, it is taken for dead after 10 s by a writer whose own limit is the default, 300 s."""
    assert thrift_lock["stated_by_setting"] == "10"
    taken = thrift_lock["by_setting"]
    assert 5 <= taken["seconds"] < 120, taken
    assert re.fullmatch(r"calltrail pid \d+ on .+: a writer of the default limit", taken["lock_view"]["calltrail.holder"])
    assert taken["lock_view"]["calltrail.stale_seconds"] == "300"
    said = [line for line in thrift_lock["by_setting_log"] if "taken for dead" in line]
    assert len(said) == 1 and "silent for more than 10 s (its CALLTRAIL_SPARK_LOCK_STALE_SECONDS)" in said[0], said


def test_on_a_thrift_server_writers_that_find_a_dead_holders_lock_together_hold_it_one_after_another(thrift_lock):
    race = thrift_lock["race"]  # three writers released together onto a dead lock, each holding it 1 s
    held = sorted(race["held"], key=lambda h: h["start"])
    assert len(held) == 3
    for hold in held:
        mine = f"calltrail pid {hold['pid']} on {socket.gethostname()}: a breaker"
        assert (hold["first"] or {}).get("calltrail.holder") == mine, hold
        assert (hold["last"] or {}).get("calltrail.holder") == mine, hold
    assert all(earlier["end"] <= later["start"] for earlier, later in itertools.pairwise(held)), held
    taken = [line for line in race["said"] if "taken for dead" in line]
    assert len(taken) == 1 and race["dead"] in taken[0], race["said"]
    claim = f"_calltrail_writer_taken_{race['dead_id']}"
    assert claim in race["claims_after"], race  # kept for the dead holder's limit (60 s)
    assert claim not in race["claims_later"], race  # then dropped by the next writer after it


def test_on_a_thrift_server_a_claim_whose_writer_died_is_dropped_and_the_turn_taken(thrift_lock):
    stuck = thrift_lock["stuck_claim"]  # the dead lock's turn claimed an hour ago by a writer that died
    assert stuck["taken"]["took"], stuck
    assert re.fullmatch(r"calltrail pid \d+ on .+: a second writer", stuck["taken"]["lock_view"]["calltrail.holder"])
    dropped = [line for line in stuck["log"] if "that writer died before it took its turn; dropped" in line]
    assert len(dropped) == 1 and "'calltrail pid 4444 on a lost machine: a claim'" in dropped[0], stuck["log"]
    assert f"_calltrail_writer_taken_{stuck['dead_id']}" in stuck["claims_after"]  # the new claim


def test_on_a_thrift_server_the_lock_is_gone_after_each_step_also_one_that_failed(thrift_lock):
    assert thrift_lock["after_handover"] is None
    assert thrift_lock["after_stale"] is None
    assert thrift_lock["after_failed_step"] is None


def test_on_a_thrift_server_a_holder_whose_lock_was_dropped_says_so_at_its_next_heartbeat(thrift_lock):
    errors = [line for line in thrift_lock["taken_log"] if line.startswith("ERROR ")]
    assert len(errors) == 1, thrift_lock["taken_log"]
    assert "writers' lock `" in errors[0] and "is no longer this process's (dropped)" in errors[0]
    assert "another writer may be writing at the same time" in errors[0]


def test_without_a_thrift_server_a_command_says_where_it_sought_it_in_one_line(tmp_path):
    port = free_port()  # nothing listens there
    env = calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET="spark", CALLTRAIL_SPARK_METHOD="thrift",
                        CALLTRAIL_SPARK_HOST="127.0.0.1", CALLTRAIL_SPARK_PORT=str(port))
    out = run([str(BIN / "calltrail"), "export", "fct_touchpoints", "--format", "csv",
               "--out", str(tmp_path / "out.csv")], env, timeout=120)
    assert out.returncode == 1
    message = [line for line in out.stdout.splitlines() + out.stderr.splitlines() if line.startswith("calltrail export: ")]
    assert len(message) == 1, out.stdout + out.stderr
    assert f"cannot reach the Spark Thrift Server at 127.0.0.1:{port} (CALLTRAIL_SPARK_HOST" in message[0]
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "out.csv").exists()
