"""`calltrail` on the dbt target `postgres` without a configured server, and with one that does not
answer. (The whole run on PostgreSQL, compared with DuckDB's: tests/transform/test_engines.py.)"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

from calltrail.warehouse.postgres import PostgresUnreachable, connect
from tests.airflow_env import BIN, calltrail_env, run
from tests.airflow_live import free_port


def test_make_run_without_a_server_starts_a_throwaway_one_and_removes_it_when_the_run_ends(tmp_path):
    # The run fails early (dbt cannot write its target folder) so that what it leaves behind shows.
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    before = set(Path(tempfile.gettempdir()).glob("calltrail-pg-*"))
    env = calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET="postgres", CALLTRAIL_DBT_TARGET_DIR=str(blocker / "target"))
    out = run([str(BIN / "calltrail"), "run"], env, timeout=300)
    started = re.search(r"no CALLTRAIL_PG_HOST: a throwaway PostgreSQL server on 127\.0\.0\.1:(\d+) holds the "
                        r"warehouse for this run and is removed when it ends", out.stdout)
    assert started, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.returncode == 1
    assert "calltrail run FAILED while preparing Airflow and dbt" in out.stdout, out.stdout[-3000:]
    assert "Traceback" not in out.stdout + out.stderr
    with pytest.raises(PostgresUnreachable):  # stopped
        connect({"CALLTRAIL_PG_HOST": "127.0.0.1", "CALLTRAIL_PG_PORT": started.group(1),
                 "CALLTRAIL_PG_USER": "postgres", "CALLTRAIL_PG_DATABASE": "calltrail"}).close()
    assert set(Path(tempfile.gettempdir()).glob("calltrail-pg-*")) <= before, "its folder is removed"


def test_an_unreachable_server_is_one_line_naming_it(tmp_path):
    port = str(free_port())
    env = calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET="postgres", CALLTRAIL_PG_HOST="127.0.0.1",
                        CALLTRAIL_PG_PORT=port)
    (tmp_path / "out").mkdir()
    for command in (["summary"], ["load-postgres"], ["export", "fct_touchpoints", "--out", str(tmp_path / "out")]):
        out = run([str(BIN / "calltrail"), *command], env, timeout=120)
        assert out.returncode == 1, out.stdout + out.stderr
        assert out.stdout.startswith(f"calltrail {command[0]}: cannot connect to PostgreSQL at 127.0.0.1:{port} "
                                     "(database calltrail, user calltrail; CALLTRAIL_PG_*): "), out.stdout
        assert "Connection refused Is the server running" in out.stdout, "libpq's two lines, in one"
        assert len(out.stdout.splitlines()) == 1 and "Traceback" not in out.stderr, out.stdout + out.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_the_scheduler_needs_a_configured_server(tmp_path):
    env = calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET="postgres")
    out = run([str(BIN / "calltrail"), "airflow", "start"], env, timeout=120)
    assert out.returncode == 1
    assert "needs a PostgreSQL server that outlives one run for the scheduler: set CALLTRAIL_PG_HOST" in out.stdout
    assert not (tmp_path / "data" / "airflow" / "calltrail-airflow.json").exists()
