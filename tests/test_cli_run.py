"""`calltrail run` and `calltrail setup` when they cannot even start: one line that says why (dbt's
own reason when dbt parse fails), exit 1, no traceback. And `calltrail run` when its warehouse is
out of reach: the failure told as any other."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import psutil
import pytest

from tests.airflow_env import BIN, calltrail_env, run
from tests.airflow_live import free_port, processes_of


@pytest.mark.parametrize(("command", "failed"), [
    ("run", "calltrail run FAILED while preparing Airflow and dbt: dbt parse failed (exit 2): "),
    ("setup", "calltrail setup FAILED: dbt parse failed (exit 2): "),
], ids=("run", "setup"))
def test_a_dbt_parse_that_fails_ends_the_command_in_one_line_with_dbts_reason(tmp_path, command, failed):
    not_a_folder = tmp_path / "dbt_target"
    not_a_folder.write_text("a file where dbt's target folder should be\n")
    env = calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET_DIR=str(not_a_folder))
    out = run([str(BIN / "calltrail"), command], env, timeout=300)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    assert f"{failed}[Errno 20] Not a directory: '{not_a_folder}/" in out.stdout, out.stdout
    assert "Traceback" not in out.stdout + out.stderr, out.stderr[-3000:]
    assert "running calltrail_ingest" not in out.stdout
    assert "the full output is in " in out.stdout


def test_a_target_calltrail_does_not_build_is_refused_before_anything_starts(tmp_path):
    out = run([str(BIN / "calltrail"), "run"], calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET="snowflake"), timeout=300)
    assert out.returncode == 2, out.stdout[-3000:] + out.stderr[-3000:]
    assert "CALLTRAIL_DBT_TARGET='snowflake': use one of duckdb, postgres, spark" in out.stderr, out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert "preparing the Airflow metadata database" not in out.stdout


def test_a_warehouse_out_of_reach_fails_the_run_with_its_cause_and_where_the_logs_are(tmp_path):
    """The spark target through a Spark Thrift Server that nothing serves: the transformation DAG
    fails, and the run's summary cannot read the published marts either."""
    port = free_port()
    env = calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET="spark", CALLTRAIL_SPARK_METHOD="thrift",
                        CALLTRAIL_SPARK_HOST="127.0.0.1", CALLTRAIL_SPARK_PORT=str(port),
                        CALLTRAIL_DBT_TARGET_DIR=str(tmp_path / "dbt_target"))
    out = run([str(BIN / "calltrail"), "run"], env, timeout=900)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    unreachable = f"cannot reach the Spark Thrift Server at 127.0.0.1:{port} "
    assert f"    cause: calltrail_transform / register_lake_on_spark: SparkUnavailable: {unreachable}" in out.stdout
    assert f"  the published marts could not be read: {unreachable}" in out.stdout, out.stdout
    failed = out.stdout[out.stdout.index("calltrail run FAILED: "):].splitlines()
    assert failed[0].startswith(f"calltrail run FAILED: calltrail_transform / register_lake_on_spark: "
                                f"SparkUnavailable: {unreachable}"), failed
    assert failed[-1].startswith("  ") and "task logs: " in failed[-1], failed
    assert "Traceback" not in out.stdout + out.stderr, out.stderr[-3000:]


HOLD_RUN = ("import sys, time; from calltrail import settings; from calltrail.cli import one_run_at_a_time\n"
            "with one_run_at_a_time(settings.load(), *sys.argv[1:]):\n    print('held', flush=True); time.sleep(120)")


def _while_held(env, command, holder_env, *as_command):
    """Run ``calltrail COMMAND`` while another process holds the run's folders as ``calltrail run``
    (or ``as_command``) does; its output and the holder's PID."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_RUN, *as_command], env=holder_env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        return run([str(BIN / "calltrail"), *command], env, timeout=120), holder.pid
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("shared", ["data folder", "dbt target folder"])
def test_a_second_run_sharing_a_running_runs_folders_stops_at_once_naming_it(tmp_path, shared):
    # Two runs from one data folder (or two installations sharing a checkout's dbt target folder)
    # wrote one manifest at once, and a DAG read it half written ("Expecting ',' delimiter").
    target = tmp_path / "dbt_target"
    first = calltrail_env(tmp_path / "first", CALLTRAIL_DBT_TARGET_DIR=str(target))
    second = first if shared == "data folder" else calltrail_env(tmp_path / "second", CALLTRAIL_DBT_TARGET_DIR=str(target))
    out, pid = _while_held(second, ["run"], first)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    folder = tmp_path / "first" / "data" / "airflow" if shared == "data folder" else target
    assert out.stderr.startswith(f"calltrail run: another calltrail run (PID {pid}, started "), out.stderr
    assert f"uses the {'Airflow home (its metadata database)' if shared == 'data folder' else shared + ' (the manifest)'} "\
           f"{folder}: let it finish, then run again." in out.stderr, out.stderr
    assert "preparing the Airflow metadata database" not in out.stdout, "nothing started"
    assert "Traceback" not in out.stderr


def test_a_local_airflow_started_during_a_run_from_its_home_stops_at_once_naming_the_run(tmp_path):
    # It started its services on the run's metadata database and parsed into the run's manifest.
    env = calltrail_env(tmp_path)
    try:
        out, pid = _while_held(env, ["airflow", "start"], env)
    finally:  # should it have started anyway, its services do not outlive the test
        run([str(BIN / "calltrail"), "airflow", "stop"], env, timeout=120)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stderr.startswith(f"calltrail airflow start: another calltrail run (PID {pid}, started "), out.stderr
    assert f"uses the Airflow home (its metadata database) {tmp_path / 'data' / 'airflow'}: let it finish, " \
           "then start it again." in out.stderr, out.stderr
    assert "preparing the metadata database" not in out.stdout, "nothing started"
    assert not (tmp_path / "data" / "airflow" / "airflow.db").exists()
    assert "Traceback" not in out.stderr


def test_a_run_while_a_local_airflow_is_starting_from_its_home_stops_at_once_naming_the_start(tmp_path):
    # Until the start's services run, `calltrail run` could not see them and went on beside them.
    env = calltrail_env(tmp_path)
    out, pid = _while_held(env, ["run"], env, "calltrail airflow start")
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stderr.startswith(f"calltrail run: another calltrail airflow start (PID {pid}, started "), out.stderr
    assert "let it finish, then run again." in out.stderr, out.stderr
    assert "preparing the Airflow metadata database" not in out.stdout, "nothing started"
    assert "Traceback" not in out.stderr


def test_a_run_in_which_no_task_ends_for_the_task_limit_and_its_grace_is_stopped_and_alerts(tmp_path):
    """The watchdog: a process whose task its limit cannot stop (here frozen with SIGSTOP, as a task
    stuck in a call that never returns to Python would be) is stopped with its children, and the
    DAG it ran fails naming the limit and alerts."""
    env = calltrail_env(tmp_path, CALLTRAIL_TASK_TIMEOUT_MINUTES="0.2", CALLTRAIL_TASK_TIMEOUT_GRACE_MINUTES="0.05")
    proc = subprocess.Popen([str(BIN / "calltrail"), "run"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines, frozen = [], None
    try:
        for line in proc.stdout:
            lines.append(line)
            if frozen is None and "running calltrail_transform (airflow dags test)" in line:
                dags = [p for p in psutil.Process(proc.pid).children()
                        if "calltrail.ops.airflow_cli" in " ".join(p.cmdline())]
                assert len(dags) == 1, [p.cmdline() for p in psutil.Process(proc.pid).children()]
                frozen = dags[0].pid
                os.kill(frozen, signal.SIGSTOP)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines)
    assert proc.returncode == 1 and frozen is not None, out[-4000:]
    why = "CALLTRAIL_TASK_TIMEOUT_MINUTES=0.2 plus CALLTRAIL_TASK_TIMEOUT_GRACE_MINUTES=0.05: a task its limit could not stop"
    assert "calltrail_ingest_web_events succeeded" in out and "calltrail_ingest_salesforce succeeded" in out
    stopped = next(line for line in lines if "calltrail_transform FAILED" in line)
    said = r"stopped by calltrail run: no task ended for (1[5-9]|2\d) s \((task \S+ still running|no task running); "
    assert re.fullmatch(r"    calltrail_transform FAILED \(" + said + re.escape(why) + r"\)\) in \d+ s", stopped.rstrip()), stopped
    failed = out[out.index("calltrail run FAILED: "):].splitlines()[0]
    assert re.fullmatch(r"calltrail run FAILED: calltrail_transform: airflow dags test calltrail_transform was "
                        + said + re.escape(why) + r"\): see \S+\.log", failed), failed
    alerts = [json.loads(line) for line in (tmp_path / "data" / "warehouse" / "alerts.jsonl").read_text().splitlines()]
    assert [a["observed"] for a in alerts] == [failed.split(": ", 2)[2]], alerts
    assert not psutil.pid_exists(frozen), "the frozen process was not stopped"
    assert processes_of(tmp_path / "data" / "airflow") == [], "a process of the run is still there"
    assert "Traceback" not in out


def test_a_task_still_running_after_the_task_timeout_is_stopped_and_the_run_fails_naming_the_limit(tmp_path):
    # Without a limit, a task that hangs holds its DAG for ever (max_active_runs=1), and nothing alerts.
    env = calltrail_env(tmp_path, CALLTRAIL_TASK_TIMEOUT_MINUTES="0.02")  # 1.2 s: dbt's start alone is longer
    out = run([str(BIN / "calltrail"), "run"], env, timeout=600)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    failed = out.stdout[out.stdout.index("calltrail run FAILED: "):].splitlines()[0]
    assert ": AirflowTaskTimeout: the task was stopped, still running after 0.02 min " \
           "(CALLTRAIL_TASK_TIMEOUT_MINUTES); the tasks after it in this DAG run did not run." in failed, failed
    alerts = [json.loads(line) for line in (tmp_path / "data" / "warehouse" / "alerts.jsonl").read_text().splitlines()]
    assert failed.split(": ", 2)[2] in [a["observed"] for a in alerts], alerts
    assert "nothing has been published yet" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr
