"""The deployment's process topology without Docker: api-server, scheduler, dag-processor and
triggerer on a PostgreSQL metadata database (a throwaway cluster of Debian's PostgreSQL server,
started here), LocalExecutor, and the warehouse on the dbt target postgres in a database of the
same server; the scheduler runs a DAG on its own and it succeeds."""

from __future__ import annotations

import json

import psycopg2
import pytest

from calltrail import settings as settings_module
from calltrail.warehouse.local_postgres import throwaway
from tests.airflow_env import BIN, calltrail_env, run
from tests.airflow_live import api, free_port, processes_of, wait_for_run


@pytest.fixture(scope="module")
def postgres():
    with throwaway("airflow", "calltrail") as server:
        port = int(server["CALLTRAIL_PG_PORT"])
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/airflow", port


def test_the_components_on_postgresql_metadata_run_a_scheduled_dag(tmp_path, postgres):
    sql_alchemy_conn, pg_port = postgres
    port = free_port()
    # the warehouse on the same server (the target postgres with a configured server, as a team runs it)
    env = calltrail_env(tmp_path, CALLTRAIL_AIRFLOW_PORT=str(port), CALLTRAIL_DEMO_VISITORS="60",
                        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sql_alchemy_conn, CALLTRAIL_DBT_TARGET="postgres",
                        CALLTRAIL_PG_HOST="127.0.0.1", CALLTRAIL_PG_PORT=str(pg_port), CALLTRAIL_PG_USER="postgres",
                        CALLTRAIL_PG_DATABASE="calltrail")
    settings = settings_module.load(env)
    url = f"http://127.0.0.1:{port}"
    started = run([str(BIN / "calltrail"), "airflow", "start"], env, timeout=600)
    state = settings.airflow_home / "calltrail-airflow.json"
    groups = json.loads(state.read_text())["groups"] if state.exists() else {}
    try:
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        assert "metadata: postgresql+psycopg2" in started.stdout
        assert (f"  warehouse   PostgreSQL database calltrail at 127.0.0.1:{pg_port}  (CALLTRAIL_DBT_TARGET=postgres)"
                in started.stdout.splitlines()), started.stdout
        assert set(groups) == {"api-server", "scheduler", "dag-processor", "triggerer"}
        # Only the topology is under test here: keep the (long) transformation out of the way.
        api(url, "/dags/calltrail_transform", method="PATCH", body={"is_paused": True})
        finished = wait_for_run(url, "calltrail_ingest_web_events", timeout=600)
        assert (finished["run_type"], finished["state"]) == ("scheduled", "success"), finished
        assert api(url, "/monitor/health")["metadatabase"]["status"] == "healthy"
    finally:
        stopped = run([str(BIN / "calltrail"), "airflow", "stop"], env, timeout=120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert processes_of(settings.airflow_home) == [], "a process of this Airflow is still running"
    # The run is in PostgreSQL, not in a SQLite file.
    con = psycopg2.connect(host="127.0.0.1", port=pg_port, user="postgres", dbname="airflow")
    try:
        cur = con.cursor()
        cur.execute("select run_type, state from dag_run where dag_id = 'calltrail_ingest_web_events'")
        assert ("scheduled", "success") in cur.fetchall()
    finally:
        con.close()
    assert not (settings.airflow_home / "airflow.db").exists()
