"""The deployment's process topology without Docker: api-server, scheduler, dag-processor and
triggerer on a PostgreSQL metadata database (a throwaway cluster of Debian's PostgreSQL server,
started here), LocalExecutor; the scheduler runs a DAG on its own and it succeeds."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg2
import pytest

from calltrail import settings as settings_module
from tests.airflow_env import BIN, calltrail_env, run
from tests.airflow_live import api, free_port, processes_of, wait_for_run


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def postgres():
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    assert initdb, ("PostgreSQL server binaries not found: `scripts/system-deps.sh` (run by make test and "
                    ".ci/run) installs Debian's postgresql package")
    bindir = os.path.dirname(initdb[-1])
    # Not under pytest's temporary folder: that one is private to us, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="calltrail-pg-"))
    data, sockets = root / "data", root / "sockets"
    data.mkdir()
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        for d in (data, sockets):
            shutil.chown(d, "postgres")
        os.chmod(root, 0o755)
    port = free_port()
    subprocess.run(_as_postgres([f"{bindir}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust",
                                 "-E", "UTF8"]), check=True, capture_output=True)
    subprocess.run(_as_postgres([f"{bindir}/pg_ctl", "-D", str(data), "-w", "-l", str(root / "server.log"),
                                 "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1", "start"]),
                   check=True, capture_output=True)
    try:
        con = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        con.autocommit = True
        con.cursor().execute("create database airflow")
        con.close()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/airflow", port
    finally:
        subprocess.run(_as_postgres([f"{bindir}/pg_ctl", "-D", str(data), "-m", "fast", "stop"]),
                       check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_the_components_on_postgresql_metadata_run_a_scheduled_dag(tmp_path, postgres):
    sql_alchemy_conn, pg_port = postgres
    port = free_port()
    env = calltrail_env(tmp_path, CALLTRAIL_AIRFLOW_PORT=str(port), CALLTRAIL_DEMO_VISITORS="60",
                        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sql_alchemy_conn)
    settings = settings_module.load(env)
    url = f"http://127.0.0.1:{port}"
    started = run([str(BIN / "calltrail"), "airflow", "start"], env, timeout=600)
    state = settings.airflow_home / "calltrail-airflow.json"
    groups = json.loads(state.read_text())["groups"] if state.exists() else {}
    try:
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        assert "metadata: postgresql+psycopg2" in started.stdout
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
