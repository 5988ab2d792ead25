"""The same dbt project on DuckDB and on PostgreSQL gives the same rows.

The demo data (every scenario of the generator) goes through ingestion into the lake once. DuckDB
builds it from the lake's Parquet files; a throwaway PostgreSQL server gets the lake's partitions
through calltrail.transform.postgres_lake and builds it there, unit tests included (so every macro
runs on PostgreSQL, not only renders). Every mart and the intermediate models they stand on are then
compared row by row: order-independent, timestamps in UTC, decimals exact. Both engines then publish,
and `calltrail export` writes every published mart from each: the files are the same, byte for byte.
"""

from __future__ import annotations

import datetime
import decimal
import subprocess
from collections import Counter
from pathlib import Path

import duckdb
import psycopg2
import pytest

from calltrail import settings as settings_module
from calltrail.transform.dbt import run_dbt
from calltrail.transform.postgres_lake import FILE_COLUMN, load_lake
from calltrail.warehouse.export import ExportError, export
from calltrail.warehouse.local_postgres import throwaway
from calltrail.warehouse.schemas import PUBLISHED_MODELS
from tests.airflow_env import BIN, calltrail_env

ROOT = Path(__file__).resolve().parents[2]
MODELS = sorted(p.stem for folder in ("marts", "intermediate") for p in (ROOT / "dbt_project" / "models" / folder).glob("*.sql"))
PG_SCHEMA = "calltrail"


def normalised(value):
    """A value as both engines must give it: timestamps naive in UTC, decimals and floats exact."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return ("timestamp", value.isoformat())
    if isinstance(value, decimal.Decimal):
        return ("number", format(value.normalize(), "f"))
    if isinstance(value, float):
        return ("number", format(decimal.Decimal(repr(value)).normalize(), "f"))
    if isinstance(value, int) and not isinstance(value, bool):
        return ("number", str(value))
    return value


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """(DuckDB warehouse path, PostgreSQL port, (the first load's results, `calltrail load-postgres`'s
    output of a second load)) after both builds."""
    tmp = tmp_path_factory.mktemp("engines")
    env = calltrail_env(tmp)
    subprocess.run([str(BIN / "calltrail"), "demo", "--visitors", "80"], env=env, check=True, capture_output=True)
    ingest = ("from calltrail import settings; from calltrail.tasks import ingest; s = settings.load(); "
              "ingest.ingest_web_events(s); ingest.ingest_task_files(s); "
              "[ingest.ingest_salesforce_files(s, o) for o in ('lead', 'contact', 'opportunity', "
              "'opportunity_contact_role')]")
    subprocess.run([str(BIN / "python"), "-c", ingest], env=env, check=True, capture_output=True)
    duck = settings_module.load(env)
    # dbt in this process (as the DAG's tasks run it): no dbt import per command
    run_dbt(duck, ["build", "--exclude", "resource_type:unit_test"], in_process=True)
    with throwaway("calltrail") as server, pytest.MonkeyPatch.context() as mp:
        pg_env = {**server, "CALLTRAIL_PG_SCHEMA": PG_SCHEMA}
        port = int(server["CALLTRAIL_PG_PORT"])
        for key, value in pg_env.items():
            mp.setenv(key, value)
        first = load_lake(duck.lake_dir, pg_env)
        again = subprocess.run([str(BIN / "calltrail"), "load-postgres"], env={**env, **pg_env}, check=True,
                               capture_output=True, text=True).stdout
        postgres = settings_module.load({**env, **pg_env, "CALLTRAIL_DBT_TARGET": "postgres"})
        run_dbt(postgres, ["build"], in_process=True)
        for settings in (duck, postgres):
            run_dbt(settings, ["run-operation", "calltrail__publish"], in_process=True)
        exports = {}
        for name, settings in (("duckdb", duck), ("postgres", postgres)):
            for table in PUBLISHED_MODELS:
                for fmt in ("csv", "parquet"):
                    out = tmp / "exports" / name / f"{table}.{fmt}"
                    exports[name, table, fmt] = export(settings, table, fmt, out, pg_env).path.read_bytes()
        cli = {name: subprocess.run([str(BIN / "calltrail"), "export", "rpt_revenue_by_channel", "--format", "parquet",
                                     "--out", str(tmp / "cli" / f"{name}.parquet")],
                                    env={**env, **pg_env, "CALLTRAIL_DBT_TARGET": name}, check=True,
                                    capture_output=True, text=True).stdout
               for name in ("duckdb", "postgres")}
        yield duck.warehouse, port, (first, again), (exports, cli, tmp, duck)


def rows_duckdb(warehouse: Path, model: str) -> tuple[list[str], Counter]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cur = con.execute(f'select * from main."{model}"')
        return [d[0] for d in cur.description], Counter(tuple(normalised(v) for v in r) for r in cur.fetchall())
    finally:
        con.close()


def rows_postgres(port: int, model: str) -> tuple[list[str], Counter]:
    con = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="calltrail")
    try:
        cur = con.cursor()
        cur.execute("set time zone 'UTC'")
        cur.execute(f'select * from {PG_SCHEMA}."{model}"')
        return [d[0] for d in cur.description], Counter(tuple(normalised(v) for v in r) for r in cur.fetchall())
    finally:
        con.close()


def test_the_lake_is_loaded_once_per_partition(engines):
    _, port, (first, again), _ = engines
    assert {r.dataset for r in first if r.files} >= {"web_events", "salesforce_task", "salesforce_opportunity"}
    assert again.splitlines() == [
        f"lake.{r.dataset}: 0 new partitions (0 rows) loaded, {r.files + r.skipped} loaded before" for r in first]
    con = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="calltrail")
    cur = con.cursor()
    cur.execute(f"select count(*), count(distinct {FILE_COLUMN}) from lake.web_events")
    events, files = cur.fetchone()
    con.close()
    loaded = next(r for r in first if r.dataset == "web_events")
    assert (events, files) == (loaded.rows, loaded.files)


@pytest.mark.parametrize("model", MODELS)
def test_duckdb_and_postgresql_give_the_same_rows(engines, model):
    warehouse, port, *_ = engines
    duck_columns, duck_rows = rows_duckdb(warehouse, model)
    pg_columns, pg_rows = rows_postgres(port, model)
    assert pg_columns == duck_columns
    only_duck, only_pg = duck_rows - pg_rows, pg_rows - duck_rows
    assert (sum(only_duck.values()), sum(only_pg.values())) == (0, 0), (
        f"only on DuckDB, e.g. {list(only_duck)[:2]}; only on PostgreSQL, e.g. {list(only_pg)[:2]}")
    assert sum(duck_rows.values()) > 0 or model.startswith("dq_"), f"{model} is empty: the comparison proves nothing"


@pytest.mark.parametrize("table", PUBLISHED_MODELS)
def test_export_writes_the_same_files_from_both_engines(engines, table):
    exports = engines[3][0]
    for fmt in ("csv", "parquet"):
        duck, pg = exports["duckdb", table, fmt], exports["postgres", table, fmt]
        assert duck == pg, f"{table}.{fmt} differs between DuckDB and PostgreSQL"
    assert exports["duckdb", table, "csv"].count(b"\n") > 1 or table.startswith("dq_"), f"{table} exported no rows"


def test_the_export_command_says_what_it_wrote_from_which_target(engines):
    _, cli, tmp, _ = engines[3]
    for name in ("duckdb", "postgres"):
        written = tmp / "cli" / f"{name}.parquet"
        assert cli[name].startswith("rpt_revenue_by_channel: ") and cli[name].rstrip().endswith(f"from {name})")
        assert f"written to {written}" in cli[name]
    assert (tmp / "cli" / "duckdb.parquet").read_bytes() == (tmp / "cli" / "postgres.parquet").read_bytes()


def test_export_refuses_a_table_that_is_not_a_published_mart(engines):
    _, _, tmp, duck = engines[3]
    with pytest.raises(ExportError, match="not a published mart: one of fct_touchpoints"):
        export(duck, "int_sessions", "csv", tmp / "no.csv")
    assert not (tmp / "no.csv").exists()
