"""calltrail's writers of one PostgreSQL warehouse take turns.

PostgreSQL lets two sessions write at once, and two runs against one database used to fail on each
other: the second load of a partition on the ledger's key, two builds of a model on each other's
tables (`relation "stg_web__events" already exists`). Every step that writes (the lake's load, each
dbt command, the audit, the report page of publish) now holds the writers' lock
(`calltrail.warehouse.postgres.writer_lock`), waits up to `CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS`
for another calltrail process, and then fails in one line naming it, having changed nothing.

A real PostgreSQL server (a throwaway one), real `calltrail` commands and runs. The holder in the
tests that need one held longer than a run's step is a process of its own holding the lock as a
step does.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading
import time

import psycopg2
import pytest

from calltrail import settings as settings_module
from calltrail.transform.dbt import LOCK_TIMEOUT, run_dbt
from calltrail.warehouse.local_postgres import throwaway
from calltrail.warehouse.postgres import PostgresBusy, writer_lock
from calltrail.warehouse.target import open_warehouse
from tests.airflow_env import BIN, calltrail_env, run

BUILD = ("import json; from calltrail import settings; from calltrail.transform.dbt import build; "
         "print(json.dumps(build(settings.load())))")
PUBLISH = "from calltrail import settings; from calltrail.tasks.publish import publish; print(publish(settings.load()))"
HOLDER = textwrap.dedent("""
    import sys, time
    from calltrail.warehouse.postgres import writer_lock
    with writer_lock(None, 0, "the holder's step"):
        print("held", flush=True)
        time.sleep(float(sys.argv[1]))
""")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two `calltrail run` started together against one database, from two data folders (two
    installations, each with its dbt target folder, as docs/configuration.md asks of installations
    that share a checkout), on the same demo data."""
    with throwaway("calltrail", "held") as server:
        outs: dict[str, subprocess.CompletedProcess[str]] = {}
        envs = {}
        for name in ("first", "second"):
            tmp = tmp_path_factory.mktemp(name)
            # a wait longer than the default: a build under the suite's load may take a minute
            envs[name] = calltrail_env(tmp, **server, CALLTRAIL_DBT_TARGET="postgres", CALLTRAIL_DEMO_VISITORS="80",
                                       CALLTRAIL_DBT_TARGET_DIR=str(tmp / "dbt_target"),
                                       CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS="600")

        def go(name: str) -> None:
            outs[name] = run([str(BIN / "calltrail"), "run"], envs[name], timeout=900)

        threads = [threading.Thread(target=go, args=(name,)) for name in envs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        yield {"server": server, "outs": outs, "envs": envs}


def task_logs(env: dict[str, str]) -> str:
    logs = settings_module.load(env).airflow_home / "logs"
    return "".join(p.read_text(errors="replace") for p in sorted(logs.glob("run-*.log")))


def query(server: dict[str, str], sql: str, database: str = "calltrail") -> list[tuple]:
    con = psycopg2.connect(host="127.0.0.1", port=int(server["CALLTRAIL_PG_PORT"]), user="postgres", dbname=database)
    try:
        con.autocommit = True
        cur = con.cursor()
        cur.execute(sql)
        return cur.fetchall() if cur.description else []
    finally:
        con.close()


def test_two_runs_at_once_on_one_database_both_complete_taking_turns(two_runs):
    """Each run completes, or its publish refused the other run's build, which came after its audit
    (the steps interleave); the run that built last publishes, so one run at least completes."""
    refused = "calltrail_transform / publish: BuildChangedSinceAudit: publish refused: the build schema holds build "
    completed = 0
    for name, out in two_runs["outs"].items():
        if out.returncode == 0:
            completed += 1
            continue
        failed = out.stdout[out.stdout.find("calltrail run FAILED: "):].splitlines()[:1]
        assert failed and failed[0].startswith(f"calltrail run FAILED: {refused}"), \
            f"{name}: {out.stdout[-4000:]}{out.stderr[-2000:]}"
    assert completed >= 1
    logs = "".join(task_logs(env) for env in two_runs["envs"].values())
    assert "already exists" not in logs
    assert "duplicate key" not in logs
    waits = [line for line in logs.splitlines() if "waits up to 600 s for it" in line]
    assert waits, "one run's step waited for the other's"


def test_after_two_runs_at_once_the_published_marts_are_the_audited_build(two_runs):
    server = two_runs["server"]
    for mart in ("fct_touchpoints", "rpt_revenue_by_channel"):
        count = query(server, f"select count(*) from published.{mart}")[0][0]
        assert count > 0
        assert query(server, f"select count(*) from calltrail.{mart}")[0][0] == count
        assert query(server, f"select count(*) from (select * from published.{mart} "
                             f"except all select * from calltrail.{mart}) d")[0][0] == 0
    loaded = query(server, "select path, count(*) from lake._calltrail_partitions group by path having count(*) > 1")
    assert loaded == []


@pytest.fixture
def holder(two_runs):
    """Start a process holding the writers' lock of database `held` for ``seconds``; yields its PID."""
    started = []

    def start(seconds: float) -> subprocess.Popen[str]:
        env = {**two_runs["envs"]["first"], "CALLTRAIL_PG_DATABASE": "held"}
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(seconds)], env=env, stdout=subprocess.PIPE,
                                text=True)
        assert proc.stdout.readline().strip() == "held"
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def held_tables(two_runs) -> list[tuple]:
    """Every table of database `held` with its row count (what a step could have changed)."""
    tables = query(two_runs["server"], "select table_schema || '.' || table_name from information_schema.tables "
                                       "where table_schema not in ('pg_catalog', 'information_schema') order by 1",
                   "held")
    return [(t, query(two_runs["server"], f"select count(*) from {t}", "held")[0][0]) for (t,) in tables]


def held_env(two_runs, wait: str) -> dict[str, str]:
    return {**two_runs["envs"]["first"], "CALLTRAIL_PG_DATABASE": "held", "CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS": wait}


def test_a_load_that_waits_longer_than_the_wait_fails_in_one_line_naming_the_holder_and_loads_nothing(
        two_runs, holder):
    before = held_tables(two_runs)
    proc = holder(120)
    out = run([str(BIN / "calltrail"), "load-postgres"], held_env(two_runs, "2"), timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr
    port = two_runs["server"]["CALLTRAIL_PG_PORT"]
    assert out.stdout.startswith(
        f"calltrail load-postgres: the warehouse (PostgreSQL database held at 127.0.0.1:{port}) is being written "
        f"by 'calltrail pid {proc.pid} on {socket.gethostname()}: the holder's step' (server process "), out.stdout
    assert "the lake's load needs to write it" in out.stdout
    assert "Waited 2 s (CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS)" in out.stdout
    assert len(out.stdout.splitlines()) == 1 and "Traceback" not in out.stderr, out.stdout + out.stderr
    assert held_tables(two_runs) == before


def test_a_dbt_command_and_the_audit_wait_for_the_holder_then_name_it_and_change_nothing(two_runs, holder):
    before = held_tables(two_runs)
    proc = holder(120)
    settings = settings_module.load(held_env(two_runs, "1"))
    with pytest.raises(PostgresBusy, match=rf"'calltrail pid {proc.pid} on .*: the holder's step'.*"
                                           r"and dbt seed needs to write it"):
        run_dbt(settings, ["seed"])
    with pytest.raises(PostgresBusy, match=r"and the data-quality audit needs to write it"):
        open_warehouse(settings, doing="the data-quality audit")
    assert held_tables(two_runs) == before
    # a reader takes no turn: the export and the summary read while a step writes
    with open_warehouse(settings, read_only=True) as con:
        assert con.execute("select 1").fetchall() == [(1,)]


def test_a_step_inside_a_step_on_another_database_waits_for_that_databases_writer(two_runs, holder):
    """A step inside a step of one process waits for no one, but only on the same database: a
    process holding database calltrail's lock went ahead on database held past its holder."""
    proc = holder(120)
    with writer_lock(two_runs["envs"]["first"], 1, "a step on calltrail"):
        with writer_lock(two_runs["envs"]["first"], 1, "a step inside it"):  # the same database: no wait
            pass
        with pytest.raises(PostgresBusy, match=rf"'calltrail pid {proc.pid} on .*: the holder's step'"):
            with writer_lock(held_env(two_runs, "1"), 1, "a step on held"):
                pass


def test_a_holder_that_lets_go_within_the_wait_lets_the_load_complete(two_runs, holder):
    holder(3)
    out = run([str(BIN / "calltrail"), "load-postgres"], held_env(two_runs, "60"), timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "lake.web_events: " in out.stdout and " new partition" in out.stdout
    loaded = query(two_runs["server"], "select count(*) from lake._calltrail_partitions", "held")[0][0]
    first = query(two_runs["server"], "select count(*) from lake._calltrail_partitions")[0][0]
    assert loaded == first > 0


def test_publish_waits_for_a_readers_open_transaction_then_names_it_and_publishes_nothing(two_runs):
    # A BI tool's session (or a psql prompt) that read a published mart and left its transaction
    # open holds that table until the transaction ends; publish waited for it for ever.
    server = two_runs["server"]
    env = {**two_runs["envs"]["first"], "CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS": "2"}
    published = query(server, "select count(*) from calltrail_meta.publications")[0][0]
    reader = psycopg2.connect(host="127.0.0.1", port=int(server["CALLTRAIL_PG_PORT"]), user="postgres",
                              dbname="calltrail", application_name="bi-dashboard")
    try:
        reader.cursor().execute("select count(*) from published.fct_touchpoints")  # its transaction stays open
        out = subprocess.run([sys.executable, "-c", PUBLISH], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 1, out.stdout + out.stderr
        said = out.stderr.strip().splitlines()[-1]
        assert said.startswith("calltrail.warehouse.postgres.PublishBlocked: publish waited 2 s "
                               "(CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS) for other sessions to let go of the "
                               f"published tables: 'bi-dashboard' (server process {reader.get_backend_pid()}, "
                               "user postgres, from 127.0.0.1/32, idle in transaction since "), said
        assert "holds published.fct_touchpoints. Nothing was published" in said, said
        assert query(server, "select count(*) from calltrail_meta.publications")[0][0] == published
    finally:
        reader.close()
    out = subprocess.run([sys.executable, "-c", PUBLISH], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert query(server, "select count(*) from calltrail_meta.publications")[0][0] == published + 1


def test_the_lock_outlasts_a_servers_idle_session_timeout(two_runs, holder):
    # The holder's session is idle while its step runs; a server that ends idle sessions after a
    # second would end the lock with it, and a second writer would go ahead.
    server = two_runs["server"]
    query(server, "alter database held set idle_session_timeout = '1s'", "postgres")
    try:
        proc = holder(30)
        time.sleep(3)
        settings = settings_module.load(held_env(two_runs, "0"))
        with pytest.raises(PostgresBusy, match=rf"'calltrail pid {proc.pid} on "):
            open_warehouse(settings, doing="the data-quality audit")
    finally:
        query(server, "alter database held reset idle_session_timeout", "postgres")


def test_a_build_waits_for_a_readers_open_transaction_then_the_model_in_its_way_names_it(two_runs):
    # An analyst's session that read a table of the build and left its transaction open holds the
    # table until the transaction ends; dbt's statement that replaces it waited for ever.
    server = two_runs["server"]
    env = {**two_runs["envs"]["first"], "CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS": "2"}
    reader = psycopg2.connect(host="127.0.0.1", port=int(server["CALLTRAIL_PG_PORT"]), user="postgres",
                              dbname="calltrail", application_name="analyst")
    try:
        reader.cursor().execute("select count(*) from calltrail.rpt_revenue_by_channel")  # left open
        out = subprocess.run([sys.executable, "-c", BUILD], env=env, capture_output=True, text=True, timeout=300)
        pid = reader.get_backend_pid()
    finally:
        reader.close()
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    results = json.loads(out.stdout.strip().splitlines()[-1])
    node = results["model.calltrail.rpt_revenue_by_channel"]
    assert node["status"] == "error", node
    assert LOCK_TIMEOUT in node["message"], node
    assert (f"(waited 2 s, CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS, for other sessions: 'analyst' (server process {pid}, "
            "user postgres, from 127.0.0.1/32, idle in transaction since ") in node["message"], node
    assert "holds calltrail.rpt_revenue_by_channel" in node["message"], node
    assert results["model.calltrail.fct_touchpoints"]["status"] == "success", "the models out of its way are built"
