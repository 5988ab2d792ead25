"""`calltrail summary` before anything is published: after the lake, one section that says the
configured warehouse has no published marts yet and what publishes them (before: the section was
left out without a word, on every target)."""

from __future__ import annotations

import json

from calltrail.warehouse.local_postgres import throwaway
from tests.airflow_env import BIN, calltrail_env, run

NOTHING = ["calltrail: calls and touchpoints",
           "================================",
           "  nothing is published in {warehouse} yet: no run has passed its checks",
           "  (`make run` builds, checks and publishes the marts)"]


def _section(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    at = lines.index(NOTHING[0])
    return lines[at:at + len(NOTHING)]


def test_on_duckdb_with_no_warehouse_file_yet(tmp_path):
    env = calltrail_env(tmp_path)
    out = run([str(BIN / "calltrail"), "summary"], env, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "calltrail: what is in the lake" in out.stdout
    warehouse = tmp_path / "data" / "warehouse" / "calltrail.duckdb"
    assert _section(out.stdout) == [line.format(warehouse=warehouse) for line in NOTHING], out.stdout
    assert not warehouse.exists(), "reading creates no warehouse"


def test_on_postgres_with_an_empty_database(tmp_path):
    with throwaway("calltrail") as server:
        env = calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET="postgres", **server)
        out = run([str(BIN / "calltrail"), "summary"], env, timeout=120)
        as_json = run([str(BIN / "calltrail"), "summary", "--json"], env, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    warehouse = f"PostgreSQL database calltrail at 127.0.0.1:{server['CALLTRAIL_PG_PORT']}"
    assert _section(out.stdout) == [line.format(warehouse=warehouse) for line in NOTHING], out.stdout
    assert as_json.returncode == 0 and json.loads(as_json.stdout)["marts"] is None, as_json.stdout
