"""The DuckDB warehouse held open by another program while calltrail builds, checks or reads it.

DuckDB lets one process write the file and no other open it meanwhile, not even to read. The
build waits a bounded time, then fails with a message that names the file, the holder's PID and
what to do; the file is never damaged: it holds the previous or the new tables entirely."""

from __future__ import annotations

import logging
import shutil
import time

import pytest

from calltrail import settings as settings_module
from calltrail.airflow.run_context import RunInfo
from calltrail.salesforce.files import ingest_task_files
from calltrail.tasks import quality as gates
from calltrail.transform.dbt import run_dbt
from calltrail.warehouse.duckdb_file import WarehouseLocked
from calltrail.web.ingest import ingest_web_events
from tests.airflow_env import BIN, calltrail_env, run
from tests.faults.helpers import BUILD, fingerprint, hold_warehouse, kill_group, write_events, write_tasks


@pytest.fixture
def built(small_build):
    return small_build


def copy_with_new_data(built, tmp_path, **env):
    """A copy of the built installation whose lake has received more events and Tasks since."""
    shutil.copytree(built, tmp_path / "data")
    s = settings_module.load(calltrail_env(tmp_path, **env))
    write_events(s.web_landing_dir / "events-2.jsonl", 1_000, first=2_000)
    write_tasks(s.task_landing_dir / "tasks-2.jsonl", 100, first=200)
    ingest_web_events(s.web_landing_dir, s.lake_dir)
    ingest_task_files(s.task_landing_dir, s.lake_dir, s.salesforce)
    return s


def test_a_build_while_a_reader_holds_the_warehouse_fails_naming_the_reader_and_the_tables_stay_whole(
        built, tmp_path):
    s = copy_with_new_data(built, tmp_path, CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS="3")
    before = fingerprint(s.warehouse)
    reader = hold_warehouse(s.warehouse, read_only=True)
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseLocked) as failure:
            run_dbt(s, BUILD)
        waited = time.monotonic() - started
    finally:
        kill_group(reader)
    message = str(failure.value)
    assert str(s.warehouse) in message and f"PID {reader.pid}" in message, message
    assert "Close that program" in message and "CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS" in message, message
    assert waited >= 3, f"the build should wait the configured 3 s for the reader, it gave up after {waited:.1f} s"
    after = fingerprint(s.warehouse)
    assert after == before, "the warehouse must still hold the previous build's tables, unchanged"


def test_a_reader_that_lets_go_within_the_wait_lets_the_build_complete_with_the_new_tables(built, tmp_path):
    s = copy_with_new_data(built, tmp_path, CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS="120")
    before = fingerprint(s.warehouse)
    reader = hold_warehouse(s.warehouse, read_only=True, seconds=5)  # a short query in a DuckDB shell
    try:
        run_dbt(s, BUILD)
        assert reader.wait(timeout=60) == 0, "the reader should have ended on its own"
    finally:
        if reader.poll() is None:
            kill_group(reader)
    after = fingerprint(s.warehouse)
    assert after["main.stg_salesforce__tasks"][0] == 300, "the new build holds the 100 new Tasks too"
    assert after["main.fct_touchpoints"] != before["main.fct_touchpoints"], "fct_touchpoints was rebuilt"
    assert {k: v for k, v in after.items() if k.startswith("published.")} == \
        {k: v for k, v in before.items() if k.startswith("published.")}, "the build alone publishes nothing"


def test_a_program_that_opens_the_warehouse_between_the_wait_and_dbts_own_open_is_waited_for_too(built, tmp_path):
    # The wait before a dbt command ends with the file free; a program that opens it in the
    # moment before dbt does (here: as soon as the wait has ended and the command is logged) held
    # it when dbt opened the file, and the build failed at once (WarehouseLocked, "Waited 0 s").
    s = copy_with_new_data(built, tmp_path, CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS="30")
    readers: list = []

    class OpenAfterTheWait(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("dbt build") and not readers:
                readers.append(hold_warehouse(s.warehouse, read_only=True, seconds=8))

    logger = logging.getLogger("calltrail.transform.dbt")
    handler, level = OpenAfterTheWait(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        run_dbt(s, BUILD)
        assert readers, "the program opened the file after calltrail's wait"
        assert readers[0].wait(timeout=60) == 0, "the program held the file until it let go itself"
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        for reader in readers:
            if reader.poll() is None:
                kill_group(reader)
    assert fingerprint(s.warehouse)["main.stg_salesforce__tasks"][0] == 300, "the build holds the 100 new Tasks"


def test_the_audit_waits_for_a_held_warehouse_then_fails_naming_the_holder_and_what_to_do(built, tmp_path):
    shutil.copytree(built, tmp_path / "data")
    s = settings_module.load(calltrail_env(tmp_path, CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS="2"))
    before = fingerprint(s.warehouse)
    reader = hold_warehouse(s.warehouse, read_only=True)
    try:
        with pytest.raises(WarehouseLocked, match=f"PID {reader.pid}"):
            gates.audit(s, RunInfo("calltrail_transform", "held"))
    finally:
        kill_group(reader)
    assert fingerprint(s.warehouse) == before


def test_calltrail_summary_while_a_build_writes_the_warehouse_says_so_in_one_line(built, tmp_path):
    shutil.copytree(built, tmp_path / "data")
    env = calltrail_env(tmp_path)
    s = settings_module.load(env)
    writer = hold_warehouse(s.warehouse, read_only=False)  # a build in progress
    try:
        out = run([str(BIN / "calltrail"), "summary"], env, timeout=120)
    finally:
        kill_group(writer)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    line = out.stdout.strip().splitlines()[-1]
    assert line.startswith(f"calltrail summary: the warehouse {s.warehouse} is held by another process "
                           f"(PID {writer.pid}"), line
    assert "this run needs to read it" in line, line


def test_a_dbt_task_of_the_dag_fails_naming_the_holder_and_alerts_it(built, tmp_path, dbt_manifest):
    """A real Airflow task (``airflow tasks test``) of the transformation DAG's dbt group."""
    import json

    from tests.airflow_env import airflow_env

    shutil.copytree(built, tmp_path / "data")
    env = airflow_env(tmp_path, CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS="3")
    s = settings_module.load(env)
    before = fingerprint(s.warehouse)
    migrate = run([str(BIN / "airflow"), "db", "migrate"], env)
    assert migrate.returncode == 0, migrate.stdout[-3000:]
    reader = hold_warehouse(s.warehouse, read_only=True)
    try:
        out = run([str(BIN / "airflow"), "tasks", "test", "calltrail_transform", "dbt.build",
                   "2026-03-01"], env)
    finally:
        kill_group(reader)
    log = out.stdout + out.stderr
    assert "new_state=failed" in log, log[-5000:]
    assert f"WarehouseLocked: the warehouse {s.warehouse} is held by another process (PID {reader.pid}" in log, \
        log[-5000:]
    alerts = [json.loads(line) for line in s.alerts_file.read_text().splitlines()]
    assert [a["check"] for a in alerts] == ["dbt.build"], alerts
    assert f"PID {reader.pid}" in alerts[0]["observed"] and "Close that program" in alerts[0]["observed"], alerts
    assert fingerprint(s.warehouse) == before
