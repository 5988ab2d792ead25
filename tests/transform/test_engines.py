"""The same dbt project on DuckDB and on PostgreSQL gives the same rows, and the whole pipeline runs
on PostgreSQL.

`CALLTRAIL_DBT_TARGET=postgres calltrail run` (what `make run` runs) goes through Airflow on the demo
data (every scenario of the generator) against a throwaway PostgreSQL server: ingestion, the lake's
partitions copied into PostgreSQL, dbt, the audit gate, publish, the report page and the summary, all
on PostgreSQL; the DuckDB file is never created. The unit tests then run on PostgreSQL too (so every
macro runs there, not only renders). The same lake is then built, audited and published on DuckDB in
this process. Every mart and the intermediate models they stand on are compared row by row:
order-independent, timestamps in UTC, decimals exact. The summary, the report page's data, the alerts
and the calls-missing-BizibleId list are the same, and `calltrail export` writes every published mart
from each engine into the same file, byte for byte.
"""

from __future__ import annotations

import datetime
import decimal
import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import duckdb
import psycopg2
import pyarrow.parquet as pq
import pytest

from calltrail import settings as settings_module
from calltrail.airflow.run_context import RunInfo
from calltrail.tasks import quality
from calltrail.tasks.publish import publish
from calltrail.transform.dbt import run_dbt
from calltrail.transform.postgres_lake import FILE_COLUMN, datasets
from calltrail.warehouse.export import ExportError, export
from calltrail.warehouse.local_postgres import throwaway
from calltrail.warehouse.schemas import PUBLISHED_MODELS
from tests.airflow_env import BIN, calltrail_env, run

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


def subprocess_out(cmd: list[str], env: dict[str, str]) -> str:
    return subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """Everything the tests compare, after the run on PostgreSQL and the build on DuckDB."""
    tmp = tmp_path_factory.mktemp("engines")
    env = calltrail_env(tmp, CALLTRAIL_DEMO_VISITORS="80")
    with throwaway("calltrail") as server, pytest.MonkeyPatch.context() as mp:
        pg_env = {**env, **server, "CALLTRAIL_PG_SCHEMA": PG_SCHEMA, "CALLTRAIL_DBT_TARGET": "postgres"}
        pg_run = run([str(BIN / "calltrail"), "run"], pg_env, timeout=900)
        assert pg_run.returncode == 0, pg_run.stdout[-4000:] + pg_run.stderr[-4000:]
        postgres = settings_module.load(pg_env)
        shown = {"page": (postgres.report_dir / "index.html").read_text(),
                 "csv": postgres.missing_bizible_id_csv.read_bytes(),
                 "duckdb_file_after_run": postgres.warehouse.exists()}
        again = subprocess_out([str(BIN / "calltrail"), "load-postgres"], pg_env)
        for key in server:  # dbt in this process reads the profile's variables from the environment
            mp.setenv(key, server[key])
        mp.setenv("CALLTRAIL_PG_SCHEMA", PG_SCHEMA)
        # dbt in this process (as the DAG's tasks run it): no dbt import per command
        run_dbt(postgres, ["test", "--select", "test_type:unit"], in_process=True)
        # Beside its own file: the alerts (raised once) and the hand-off list of each engine apart.
        duck_env = {**env, "CALLTRAIL_WAREHOUSE": str(tmp / "duckdb" / "calltrail.duckdb")}
        duck = settings_module.load(duck_env)
        run_dbt(duck, ["build", "--exclude", "resource_type:unit_test"], in_process=True)
        quality.audit(duck, RunInfo("calltrail_transform", "duckdb_side"))
        publish(duck, in_process=True)
        summary = subprocess_out([str(BIN / "calltrail"), "summary"], duck_env)
        exports = {}
        for name, settings in (("duckdb", duck), ("postgres", postgres)):
            for table in PUBLISHED_MODELS:
                for fmt in ("csv", "parquet"):
                    out = tmp / "exports" / name / f"{table}.{fmt}"
                    exports[name, table, fmt] = export(settings, table, fmt, out, server).path.read_bytes()
        cli = {name: subprocess_out([str(BIN / "calltrail"), "export", "rpt_revenue_by_channel", "--format",
                                     "parquet", "--out", str(tmp / "cli" / f"{name}.parquet")],
                                    duck_env if name == "duckdb" else pg_env)
               for name in ("duckdb", "postgres")}
        yield {"duck": duck, "postgres": postgres, "port": int(server["CALLTRAIL_PG_PORT"]), "again": again, "run": pg_run.stdout,
               "shown": shown, "summary": summary, "exports": exports, "cli": cli, "tmp": tmp}


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


def test_the_run_on_postgresql_loads_the_lake_first_and_never_creates_the_duckdb_file(engines):
    assert re.search(r"\] load_lake_into_postgres\s", engines["run"]), "the transformation DAG copies the lake first"
    assert f"PostgreSQL database calltrail at 127.0.0.1:{engines['port']}" in engines["run"], (
        "the summary names the warehouse it read")
    assert not engines["shown"]["duckdb_file_after_run"], "the DuckDB file is not the target: nothing may create it"


def test_the_lake_is_loaded_once_per_partition(engines):
    lake = engines["duck"].lake_dir
    files = {dataset: sorted(lake.glob(glob)) for dataset, glob in datasets().items()}
    assert {d for d, f in files.items() if f} >= {"web_events", "salesforce_task", "salesforce_opportunity"}
    assert engines["again"].splitlines() == [
        f"lake.{dataset}: 0 new partitions (0 rows) loaded, {len(f)} loaded before" for dataset, f in files.items()]
    con = psycopg2.connect(host="127.0.0.1", port=engines["port"], user="postgres", dbname="calltrail")
    cur = con.cursor()
    cur.execute(f"select count(*), count(distinct {FILE_COLUMN}) from lake.web_events")
    events, loaded_files = cur.fetchone()
    con.close()
    web = files["web_events"]
    assert (events, loaded_files) == (sum(pq.read_metadata(f).num_rows for f in web), len(web))


@pytest.mark.parametrize("model", MODELS)
def test_duckdb_and_postgresql_give_the_same_rows(engines, model):
    duck_columns, duck_rows = rows_duckdb(engines["duck"].warehouse, model)
    pg_columns, pg_rows = rows_postgres(engines["port"], model)
    assert pg_columns == duck_columns
    only_duck, only_pg = duck_rows - pg_rows, pg_rows - duck_rows
    assert (sum(only_duck.values()), sum(only_pg.values())) == (0, 0), (
        f"only on DuckDB, e.g. {list(only_duck)[:2]}; only on PostgreSQL, e.g. {list(only_pg)[:2]}")
    assert sum(duck_rows.values()) > 0 or model.startswith("dq_"), f"{model} is empty: the comparison proves nothing"


def page_data(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert found, "the report page carries its data"
    data = json.loads(found.group(1).replace("<\\/", "</"))
    for r in data["trend"]["runs"]:  # the audit runs' ids and times differ between the engines
        r.pop("run_id")
        r.pop("measured_at")
    return data


def page_tables(html: str) -> str:
    """The page's body without the times of its writing and of the audit runs (and their ids)."""
    body = html[html.index("<main>"):html.index("</main>")]
    body = re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?", "TIME", body)
    return re.sub(r"(manual|scheduled|asset_triggered)__[^<\s\"]+|duckdb_side", "RUN", body)


def summary_section(output: str, title: str) -> list[str]:
    """The lines of one titled section of calltrail's output, without the warehouse's location."""
    lines = output[output.index(f"calltrail: {title}"):].splitlines()[2:]
    end = next((i for i, line in enumerate(lines) if line.startswith("calltrail: ")), len(lines))
    return [line for line in lines[:end] if not line.lstrip().startswith("warehouse ")]


def test_the_summary_read_from_postgresql_equals_duckdbs(engines):
    on_postgres = summary_section(engines["run"], "calls and touchpoints")
    assert any(line.strip().startswith("opportunities attributed") for line in on_postgres), on_postgres
    assert on_postgres == summary_section(engines["summary"], "calls and touchpoints")


def test_the_report_page_and_the_hand_off_list_written_on_postgresql_equal_duckdbs(engines):
    shown, duck = engines["shown"], engines["duck"]
    on_postgres = page_data(shown["page"])
    assert on_postgres["channels"] and on_postgres["revenue"]["built"] and on_postgres["journeys"]["list"]
    assert len(on_postgres["trend"]["runs"]) == 1, "the audit recorded its figures in PostgreSQL"
    on_duckdb = (duck.report_dir / "index.html").read_text()
    assert on_postgres == page_data(on_duckdb)
    assert page_tables(shown["page"]) == page_tables(on_duckdb)
    assert shown["csv"].count(b"\n") > 1, "the demo has calls without a BizibleId"
    assert shown["csv"] == duck.missing_bizible_id_csv.read_bytes()


def test_the_audit_on_postgresql_raises_the_alerts_duckdbs_raises(engines):
    def raised(settings) -> list[tuple]:
        alerts = [json.loads(line) for line in settings.alerts_file.read_text().splitlines()]
        return sorted((a["layer"], a["check"], a["severity"], a["observed"], tuple(a.get("record_ids") or ()))
                      for a in alerts if a.get("task_id") in ("audit", ""))  # "": the audit run in this process

    assert engines["duck"].alerts_file != engines["postgres"].alerts_file
    assert raised(engines["postgres"]), "the demo raises at least one warning (an opportunity without people)"
    assert raised(engines["postgres"]) == raised(engines["duck"])


@pytest.mark.parametrize("table", PUBLISHED_MODELS)
def test_export_writes_the_same_files_from_both_engines(engines, table):
    exports = engines["exports"]
    for fmt in ("csv", "parquet"):
        duck, pg = exports["duckdb", table, fmt], exports["postgres", table, fmt]
        assert duck == pg, f"{table}.{fmt} differs between DuckDB and PostgreSQL"
    assert exports["duckdb", table, "csv"].count(b"\n") > 1 or table.startswith("dq_"), f"{table} exported no rows"


def test_the_export_command_says_what_it_wrote_from_which_target(engines):
    cli, tmp = engines["cli"], engines["tmp"]
    for name in ("duckdb", "postgres"):
        written = tmp / "cli" / f"{name}.parquet"
        assert cli[name].startswith("rpt_revenue_by_channel: ") and cli[name].rstrip().endswith(f"from {name})")
        assert f"written to {written}" in cli[name]
    assert (tmp / "cli" / "duckdb.parquet").read_bytes() == (tmp / "cli" / "postgres.parquet").read_bytes()


def test_export_refuses_a_table_that_is_not_a_published_mart(engines):
    tmp = engines["tmp"]
    with pytest.raises(ExportError, match="not a published mart: one of fct_touchpoints"):
        export(engines["duck"], "int_sessions", "csv", tmp / "no.csv")
    assert not (tmp / "no.csv").exists()
