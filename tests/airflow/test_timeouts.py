"""A task's execution timeout (Airflow's own ``timeout``, SIGALRM) ends the task as a timeout, and
leaves the process able to log, wherever the task is when its limit passes."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from calltrail.ops import airflow_services as services
from tests.airflow_env import BIN, airflow_env, run
from tests.airflow_live import api_server, free_port

ROOT = Path(__file__).resolve().parents[2]

# A task whose main thread never leaves logging code, in the probe and in a DAG
NEVER_BACK_FROM_LOGGING = """def never_back_from_logging():
    # a logging handler that never returns (one waiting for ever on a lock or a socket): the alarm is
    # put off for as long as the main thread is in logging code, so only the last resort ends the task
    stuck = logging.getLogger("calltrail.probe.stuck")
    stuck.propagate = False

    class NeverReturns(logging.Handler):
        def emit(self, record):
            threading.Event().wait()

    stuck.addHandler(NeverReturns())
    stuck.warning("this handler never returns")
    return "the handler returned"
"""

# Each case in a fresh interpreter: a lock left held would otherwise hang the test session.
PROBE = """
import json, logging, sys, threading, time

from airflow.sdk.execution_time.timeout import timeout

from calltrail.airflow.timeouts import guarded

case, how = sys.argv[1], sys.argv[2]


def many_loggers():
    for i in range(50000):
        logging.getLogger(f"calltrail.probe.{i}")


def in_logging():
    # dbt sets its loggers' levels each time it starts, and Python 3.11 then clears every logger's
    # cache holding logging's module lock, without `try`: here the limit passes in there, ...
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        logging.getLogger("calltrail.probe.1").setLevel(logging.INFO)
    # ... and the task goes on with other work
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        sum(range(1000))
    return "finished after its limit"


def duckdb_connection():
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 1")  # with more, DuckDB may finish a pipeline before it stops
    return con


def in_duckdb():
    con.execute("SELECT count(*) FROM range(1000000000000) a").fetchall()
    return "the query finished"


def swallowed():
    # the limit passes where the exception is dropped: a finalizer (a weakref callback, whose
    # exception Python prints and drops), a library's `except BaseException`
    try:
        time.sleep(2)
    except BaseException:
        pass
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        time.sleep(0.01)
    return "finished after its limit"

""" + NEVER_BACK_FROM_LOGGING + """


body = {"in_logging": in_logging, "in_duckdb": in_duckdb, "swallowed": swallowed,
        "never_back_from_logging": never_back_from_logging}[case]
if how == "guarded":
    body = guarded(body)
# made before the limit starts: under load these alone can take longer than the limit
if case == "in_logging":
    many_loggers()
if case == "in_duckdb":
    con = duckdb_connection()
started = time.monotonic()
try:
    with timeout(0.5):
        outcome = f"returned: {body()}"
except BaseException as exc:
    outcome = f"{type(exc).__name__}: {exc}"
ended = time.monotonic() - started
# after a failed task, other threads log (Airflow's, dbt's)
other = threading.Thread(target=lambda: logging.getLogger("calltrail.probe.after").setLevel(logging.WARNING),
                         daemon=True)
other.start()
other.join(3)
print(json.dumps({"outcome": outcome, "seconds": ended, "another_thread_logged": not other.is_alive()}))
"""


def probe(case: str, how: str, tmp_path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, case, how], env=airflow_env(tmp_path), cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_task_never_back_from_logging_code_is_killed_after_its_limit_and_grace_and_alerts(tmp_path):
    """The last resort: the timeout is put off while the main thread is in logging code, and this
    task's never leaves it. Its own thread alerts and kills the process once the limit (0.5 s) and
    CALLTRAIL_TASK_TIMEOUT_GRACE_MINUTES (here 0.02 min) have passed. The probe has no task context, so
    the limit is told as the timer had it left when the task began."""
    env = {**airflow_env(tmp_path), "CALLTRAIL_TASK_TIMEOUT_GRACE_MINUTES": "0.02"}
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", PROBE, "never_back_from_logging", "guarded"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    seconds = time.monotonic() - started
    assert out.returncode == -signal.SIGKILL, out.stdout[-2000:] + out.stderr[-3000:]
    # the timer's remaining time when the task began: 0.5 s (0.0083 min), a little less under load
    told = re.search(r"time limit of ([0-9.]+) min", out.stderr)
    assert told and 0.4 / 60 <= float(told[1]) <= 0.5 / 60 + 0.00005, out.stderr[-3000:]
    observed = (f"the task was killed, still running 0.02 min after its time limit of {told[1]} min "
                "(CALLTRAIL_TASK_TIMEOUT_MINUTES, CALLTRAIL_TASK_TIMEOUT_GRACE_MINUTES), where the timeout could not "
                "stop it; the tasks after it in this DAG run did not run. Its log shows what it was doing")
    assert f"calltrail: {observed}\n" in out.stderr, out.stderr[-3000:]
    alerts = [json.loads(line) for line in (tmp_path / "data" / "warehouse" / "alerts.jsonl").read_text().splitlines()]
    assert [(a["check"], a["observed"]) for a in alerts] == [("unknown task", observed)], alerts
    assert seconds < 60, seconds  # not the test's timeout: killed (0.5 s + 1.2 s, then the alert)


# Two DAGs of one task each that never leaves logging code, on its last try and with a try left
KILLED_DAGS = """
import logging, threading
from datetime import datetime, timedelta

from airflow.sdk import dag

from calltrail.airflow.timeouts import task


""" + NEVER_BACK_FROM_LOGGING + """

for dag_id, retries in (("killed_on_its_last_try", 0), ("killed_with_a_try_left", 1)):
    @dag(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
    def one():
        task(task_id="stuck", retries=retries, retry_delay=timedelta(0),
             execution_timeout=timedelta(seconds=1))(never_back_from_logging)()

    globals()[dag_id] = one()
"""


DAGS_TEST_SECONDS = 300  # what one supervised `dags test` of KILLED_DAGS is given


def killed_dag(tmp: Path, dag_id: str, *, supervised: bool) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``airflow dags test`` of one of ``KILLED_DAGS`` in an Airflow home and data folder of its own
    under ``tmp`` (the limit 1 s, the grace 0.02 min): the command's result, and the Airflow home.

    ``supervised``: with ``--use-executor``, the LocalExecutor runs each try in a process of its own
    under Airflow's task supervisor, which reports to an api-server of its own, as under the
    scheduler; otherwise every task runs in the one ``dags test`` process, as ``calltrail run`` runs it.

    Once (in about ten CI runs), ``dags test --use-executor`` did not end after its DAG run had
    ended, failed, in the metadata database: it hung in its shutdown for the 300 s it was given.
    Such a hang, and only such a hang, is said in a warning with the stacks of the command's threads
    (``faulthandler``), its process tree is killed, and the whole run is made once more, in a folder of its own (``tmp`` with
    ``-again``); a second hang, or any other outcome, is the test's."""
    if not supervised:
        env, home, _ = _airflow_home(tmp)
        return run([str(BIN / "airflow"), "dags", "test", dag_id], env, timeout=300), home
    for attempt in (1, 2):
        where = tmp if attempt == 1 else tmp.with_name(f"{tmp.name}-again")
        env, home, port = _airflow_home(where)
        command = [str(BIN / "airflow"), "dags", "test", "--use-executor", dag_id]
        with api_server(env, where / "api-server.log", f"http://127.0.0.1:{port}", "--host", "127.0.0.1",
                        "--port", str(port)):
            process = subprocess.Popen(command, env={**env, "PYTHONFAULTHANDLER": "1"}, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, start_new_session=True)
            try:
                stdout, stderr = process.communicate(timeout=DAGS_TEST_SECONDS)
                return subprocess.CompletedProcess(command, process.returncode, stdout, stderr), home
            except subprocess.TimeoutExpired:
                ended = _dag_run_states(home)
                # its executor's workers and their tasks (each in a group of its own), while they are its descendants
                tree = services._tree({process.pid}, {})
                process.send_signal(signal.SIGABRT)  # faulthandler writes every thread's stack, then it ends
                time.sleep(5)
                services._signal_each(tree, signal.SIGKILL)
                stdout, stderr = process.communicate(timeout=60)
        if attempt == 2 or ended != ["failed"]:
            raise AssertionError(f"airflow dags test --use-executor did not end within {DAGS_TEST_SECONDS} s "
                                 f"(try {attempt}; its DAG run: {ended}): {stdout[-3000:]}{stderr[-6000:]}")
        warnings.warn(f"airflow dags test --use-executor {dag_id} hung after its DAG run had failed; made again. "
                      f"Its threads: {stderr[-6000:]}", stacklevel=1)
    raise AssertionError("unreachable")


def _airflow_home(tmp: Path) -> tuple[dict[str, str], Path, int]:
    """``KILLED_DAGS`` in a DAG folder under ``tmp``, an Airflow home there, migrated: its
    environment, the home, and the port of the api-server the executor's tasks report to."""
    dags = tmp / "dags"
    dags.mkdir(parents=True)
    (dags / "killed.py").write_text(KILLED_DAGS)
    port = free_port()
    env = {**airflow_env(tmp), "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "CALLTRAIL_TASK_TIMEOUT_GRACE_MINUTES": "0.02",
           "AIRFLOW__API__WORKERS": "1", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/"}
    migrated = run([str(BIN / "airflow"), "db", "migrate"], env)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    return env, Path(env["AIRFLOW_HOME"]), port


def _dag_run_states(home: Path) -> list[str]:
    con = sqlite3.connect(home / "airflow.db")
    try:
        return [row[0] for row in con.execute("select state from dag_run")]
    finally:
        con.close()


def sent_alerts(home: Path) -> list[dict]:
    alerts = home.parent / "warehouse" / "alerts.jsonl"
    return [json.loads(line) for line in alerts.read_text().splitlines()] if alerts.exists() else []


def try_log(home: Path, dag_id: str, attempt: int) -> str:
    """What the task wrote in its try's log (the supervisor's JSON lines)."""
    (log,) = home.glob(f"logs/dag_id={dag_id}/run_id=*/task_id=stuck/attempt={attempt}.log")
    return "\n".join(json.loads(line)["event"] for line in log.read_text().splitlines())


def test_a_task_airflow_runs_is_killed_by_its_last_resort_and_alerts_only_when_no_retry_follows(tmp_path):
    """In real tasks: a task with a try left, under Airflow's task supervisor as the scheduler runs
    it, is killed without an alert and says so in its log; the supervisor marks it up for retry, the
    retry runs, and that last try is killed with one alert. A task on its last try in ``airflow dags
    test`` (as ``calltrail run`` runs it) alerts naming the DAG and the task. The two run at once."""
    with ThreadPoolExecutor(2) as pool:
        runs = {dag_id: pool.submit(killed_dag, tmp_path / dag_id, dag_id, supervised=supervised)
                for dag_id, supervised in (("killed_with_a_try_left", True), ("killed_on_its_last_try", False))}
    (retried, retried_home), (last, last_home) = (runs[d].result() for d in runs)
    killed = ("the task was killed, still running 0.02 min after its time limit of 0.0166667 min "
              "(CALLTRAIL_TASK_TIMEOUT_MINUTES, CALLTRAIL_TASK_TIMEOUT_GRACE_MINUTES), where the timeout could not "
              "stop it; ")
    observed = "the tasks after it in this DAG run did not run. Its log shows what it was doing"

    dag_id = "killed_with_a_try_left"
    assert retried.returncode == 1 and "DagRun failed" in retried.stdout + retried.stderr, \
        retried.stdout[-3000:] + retried.stderr[-3000:]
    assert (f"calltrail: {killed}it has tries left (this was try 1 of 2), so it does not alert: a failure alerts "
            "once no retry follows") in try_log(retried_home, dag_id, 1).splitlines()
    assert f"calltrail: {killed}{observed}" in try_log(retried_home, dag_id, 2).splitlines()
    # the supervisor's account of each try's process, killed both times
    assert re.findall(r"exit_code=<Negsignal.SIGKILL: -9> final_state=(\w+)", retried.stdout) == ["up_for_retry", "failed"], \
        retried.stdout[-3000:]
    con = sqlite3.connect(retried_home / "airflow.db")
    try:
        assert con.execute("select task_id, try_number, state from task_instance").fetchall() == [("stuck", 2, "failed")]
    finally:
        con.close()
    sent = sent_alerts(retried_home)
    assert [(a["dag_id"], a["task_id"], a["observed"]) for a in sent] == [(dag_id, "stuck", f"{killed}{observed}")], sent

    assert last.returncode == -signal.SIGKILL, last.stdout[-2000:] + last.stderr[-3000:]
    assert f"calltrail: {killed}{observed}\n" in last.stderr, last.stderr[-3000:]
    sent = sent_alerts(last_home)
    assert [(a["dag_id"], a["task_id"], a["check"], a["observed"]) for a in sent] == [
        ("killed_on_its_last_try", "stuck", "stuck", f"{killed}{observed}")], sent


@pytest.mark.parametrize("case", ["in_logging", "in_duckdb", "swallowed"])
def test_a_task_past_its_limit_ends_with_the_timeout_and_the_process_can_still_log(case, tmp_path):
    result = probe(case, "guarded", tmp_path)
    assert result["outcome"].startswith("AirflowTaskTimeout: Timeout"), result
    assert result["another_thread_logged"], result
    assert result["seconds"] < 3, result  # the limit is 0.5 s; put off by 50 ms at a time, raised again each second


def test_without_the_guard_airflows_timeout_hangs_the_next_logger_or_is_lost(tmp_path):
    # What the guard is for, on Airflow's timeout alone: each case goes wrong.
    assert not probe("in_logging", "bare", tmp_path)["another_thread_logged"]
    assert probe("in_duckdb", "bare", tmp_path)["outcome"] == "RuntimeError: Query interrupted"
    assert probe("swallowed", "bare", tmp_path)["outcome"] == "returned: finished after its limit"
