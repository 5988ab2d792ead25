"""`calltrail load-postgres` when a lake partition cannot be read: the command stops in one line
naming the file, the partitions loaded before it stay loaded and recorded, nothing of the bad one is
in PostgreSQL, and the next run (once the file is mended) loads only what is missing. A throwaway
PostgreSQL server of Debian's binaries; the whole pipeline on PostgreSQL is in test_engines.py.
The lake goes into a schema of its own name (CALLTRAIL_LAKE_SCHEMA)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq

from calltrail.lake.layout import WEB_EVENTS, WEB_EVENTS_FILE
from calltrail.transform.postgres_lake import LEDGER
from calltrail.warehouse.local_postgres import throwaway
from tests.airflow_env import BIN, calltrail_env, run


def events(event_ids: list[str]) -> pa.Table:
    return pa.table({"event_id": event_ids, "bizible_id": ["0" * 32] * len(event_ids),
                     "occurred_at": [datetime(2026, 1, 2, 3, 4, tzinfo=UTC)] * len(event_ids)})


SCHEMA = "acme_lake"  # CALLTRAIL_LAKE_SCHEMA: not the default, which stays empty


def test_a_partition_that_cannot_be_read_stops_the_load_in_one_line_and_loses_nothing_loaded(tmp_path):
    env = calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET="postgres", CALLTRAIL_LAKE_SCHEMA=SCHEMA)
    lake = tmp_path / "data" / "lake" / WEB_EVENTS
    good, bad = lake / "file=a" / WEB_EVENTS_FILE, lake / "file=b" / WEB_EVENTS_FILE
    good.parent.mkdir(parents=True)
    bad.parent.mkdir(parents=True)
    pq.write_table(events(["e1", "e2"]), good)
    bad.write_bytes(b"PAR1 not a Parquet file")
    with throwaway("calltrail") as server:
        env.update(server)
        failed = run([str(BIN / "calltrail"), "load-postgres"], env)
        con = psycopg2.connect(host="127.0.0.1", port=int(server["CALLTRAIL_PG_PORT"]), user="postgres",
                               dbname="calltrail")
        try:
            cur = con.cursor()
            cur.execute(f"select path, row_count from {SCHEMA}.{LEDGER}")
            recorded = cur.fetchall()
            cur.execute(f"select event_id from {SCHEMA}.{WEB_EVENTS} order by 1")
            loaded = [r[0] for r in cur.fetchall()]
            pq.write_table(events(["e3"]), bad)  # mended
            again = run([str(BIN / "calltrail"), "load-postgres"], env)
            cur.execute(f"select event_id from {SCHEMA}.{WEB_EVENTS} order by 1")
            after = [r[0] for r in cur.fetchall()]
            cur.execute("select count(*) from pg_namespace where nspname = 'lake'")
            default_schema = cur.fetchone()[0]
        finally:
            con.close()
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr, failed.stderr
    assert failed.stdout.strip().splitlines() == [
        f"calltrail load-postgres: {SCHEMA}.{WEB_EVENTS}: loading {bad} failed: Could not open Parquet input source "
        f"'{bad}': Parquet magic bytes not found in footer. Either the file is corrupted or this is not a parquet "
        "file."], failed.stdout
    assert recorded == [(f"{WEB_EVENTS}/file=a/{WEB_EVENTS_FILE}", 2)]
    assert loaded == ["e1", "e2"]
    assert again.returncode == 0, again.stderr
    assert f"{SCHEMA}.{WEB_EVENTS}: 1 new partition (1 row) loaded, 1 loaded before" in again.stdout
    assert after == ["e1", "e2", "e3"]
    assert default_schema == 0, "the lake went into schema lake, not CALLTRAIL_LAKE_SCHEMA"
