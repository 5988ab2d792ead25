"""The same dbt project on DuckDB and on PostgreSQL gives the same rows, and the whole pipeline runs
on PostgreSQL.

`CALLTRAIL_DBT_TARGET=postgres calltrail run` (what `make run` runs) goes through Airflow on the demo
data (every scenario of the generator) against a throwaway PostgreSQL server: ingestion, the lake's
partitions copied into PostgreSQL, dbt, the audit gate, publish, the report page and the summary, all
on PostgreSQL; the DuckDB file is never created. The run's login has no CREATE on the database: its
administrator made the schemas for it, as a company's would. The unit tests then run on PostgreSQL too (so every
macro runs there, not only renders). The same lake is then built, audited and published on DuckDB in
this process. Every mart and the intermediate models they stand on are compared row by row:
order-independent, timestamps in UTC, decimals exact. Both engines name the lake's, the published,
the publication log's and the quality history's schemas otherwise than by default. The summary, the report page's data, the alerts
and the calls-missing-BizibleId list are the same, and `calltrail export` writes every published mart
from each engine into the same file, byte for byte.

The late-arriving data of tests/transform/late_data.py is also built on PostgreSQL step by step,
incrementally; every model (the marts included) must then equal one full build of the final lake on
DuckDB.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import io
import json
import os
import pty
import re
import subprocess
from collections import Counter
from datetime import UTC
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from calltrail import settings as settings_module
from calltrail.airflow.run_context import RunInfo
from calltrail.lake.layout import datasets
from calltrail.quality.outcome import DataQualityError
from calltrail.tasks import quality
from calltrail.tasks.publish import publish
from calltrail.transform.dbt import BUILD_ARGS, run_dbt
from calltrail.transform.postgres_lake import FILE_COLUMN
from calltrail.warehouse.arrow import UnreadableColumn
from calltrail.warehouse.export import ExportError, export
from calltrail.warehouse.local_postgres import throwaway
from calltrail.warehouse.schemas import PUBLISHED_MODELS
from calltrail.warehouse.target import open_warehouse
from tests.airflow_env import BIN, calltrail_env, run
from tests.transform.engine_compare import (
    MODELS,
    NAMED_SCHEMAS,
    assert_same_page_and_hand_off,
    assert_same_rows,
    audit_alerts,
    cursor_rows,
    rows_duckdb,
    subprocess_out,
    summary_section,
)
from tests.transform.late_data import (
    COMPARED,
    REBUILT,
    REBUILT_JOURNEYS,
    REBUILT_OPPORTUNITIES,
    REBUILT_TASKS,
    build_in_one_go,
)

ROOT = Path(__file__).resolve().parents[2]
PG_SCHEMA = "calltrail"
# The run's login cannot create a schema: one of the default names used anywhere would fail the run.
LAKE, PUBLISHED = NAMED_SCHEMAS["CALLTRAIL_LAKE_SCHEMA"], NAMED_SCHEMAS["CALLTRAIL_PUBLISH_SCHEMA"]


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """Everything the tests compare, after the run on PostgreSQL and the build on DuckDB."""
    tmp = tmp_path_factory.mktemp("engines")
    env = calltrail_env(tmp, CALLTRAIL_DEMO_VISITORS="80", **NAMED_SCHEMAS)
    with throwaway("calltrail") as server, pytest.MonkeyPatch.context() as mp:
        pg_env = {**env, **server, **handed_over(server), "CALLTRAIL_PG_SCHEMA": PG_SCHEMA,
                  "CALLTRAIL_DBT_TARGET": "postgres"}
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
        run_dbt(duck, [*BUILD_ARGS], in_process=True)
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
               "shown": shown, "summary": summary, "exports": exports, "cli": cli, "tmp": tmp, "duck_env": duck_env,
               "pg_env": pg_env}


def handed_over(server: dict[str, str]) -> dict[str, str]:
    """The database as a company's administrator hands it over: a login of calltrail's own without
    CREATE on the database, and the schemas calltrail writes (docs/deploying.md) made beforehand,
    owned by it. The run then creates no schema. A reader (a BI tool's login) is granted the published
    marts through default privileges, as docs/deploying.md says, since publish replaces them."""
    con = psycopg2.connect(host="127.0.0.1", port=int(server["CALLTRAIL_PG_PORT"]), user="postgres",
                           dbname=server["CALLTRAIL_PG_DATABASE"])
    con.autocommit = True
    cur = con.cursor()
    cur.execute("create role calltrail_app login")
    for schema in (PG_SCHEMA, *NAMED_SCHEMAS.values()):
        cur.execute(f'create schema "{schema}" authorization calltrail_app')
    cur.execute("create role reporting login")
    cur.execute(f"grant usage on schema {PUBLISHED} to reporting")
    cur.execute(f"alter default privileges for role calltrail_app in schema {PUBLISHED} grant select on tables "
                "to reporting")
    cur.execute("select has_database_privilege('calltrail_app', current_database(), 'CREATE')")
    assert cur.fetchone()[0] is False
    con.close()
    return {"CALLTRAIL_PG_USER": "calltrail_app"}


def rows_postgres(port: int, model: str, database: str = "calltrail") -> tuple[list[str], Counter]:
    con = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname=database)
    try:
        cur = con.cursor()
        cur.execute("set time zone 'UTC'")
        cur.execute(f'select * from {PG_SCHEMA}."{model}"')
        return cursor_rows(cur)
    finally:
        con.close()


def test_the_run_on_postgresql_loads_the_lake_first_and_never_creates_the_duckdb_file(engines):
    assert re.search(r"\] load_lake_into_postgres\s", engines["run"]), "the transformation DAG copies the lake first"
    assert f"PostgreSQL database calltrail at 127.0.0.1:{engines['port']}" in engines["run"], (
        "the summary names the warehouse it read")
    assert not engines["shown"]["duckdb_file_after_run"], "the DuckDB file is not the target: nothing may create it"


def test_every_schema_is_the_one_its_setting_names_on_both_engines(engines):
    """Nothing went into a schema of the default names; each named schema holds its tables."""
    defaults = {"lake", "published", "calltrail_meta", "quality"}
    con = psycopg2.connect(host="127.0.0.1", port=engines["port"], user="postgres", dbname="calltrail")
    try:
        cur = con.cursor()
        cur.execute("select table_schema, table_name from information_schema.tables")
        on_postgres = set(cur.fetchall())
    finally:
        con.close()
    on_duckdb = set(duckdb_published(engines, "select table_schema, table_name from information_schema.tables"))
    for name, tables in (("postgres", on_postgres), ("duckdb", on_duckdb)):
        assert {schema for schema, _ in tables} & defaults == set(), name
        assert {("acme_meta", "publications"), ("acme_quality", "run_metrics"),
                *((PUBLISHED, t) for t in PUBLISHED_MODELS)} <= tables, name
    assert {(LAKE, "web_events"), (LAKE, "_calltrail_partitions")} <= on_postgres


def test_a_reader_granted_through_default_privileges_reads_every_published_mart(engines):
    counts = {}
    for user in ("postgres", "reporting"):
        con = psycopg2.connect(host="127.0.0.1", port=engines["port"], user=user, dbname="calltrail")
        try:
            cur = con.cursor()
            for table in PUBLISHED_MODELS:
                cur.execute(f"select count(*) from {PUBLISHED}.{table}")
                counts[user, table] = cur.fetchone()[0]
        finally:
            con.close()
    assert all(counts["postgres", t] == counts["reporting", t] for t in PUBLISHED_MODELS), counts
    assert counts["reporting", "fct_touchpoints"] > 0


def test_the_lake_is_loaded_once_per_partition(engines):
    lake = engines["duck"].lake_dir
    files = {dataset: sorted(lake.glob(glob)) for dataset, glob in datasets().items()}
    assert {d for d, f in files.items() if f} >= {"web_events", "salesforce_task", "salesforce_opportunity"}
    assert engines["again"].splitlines() == [
        f"{LAKE}.{dataset}: 0 new partitions (0 rows) loaded, {len(f)} loaded before" for dataset, f in files.items()]
    con = psycopg2.connect(host="127.0.0.1", port=engines["port"], user="postgres", dbname="calltrail")
    cur = con.cursor()
    cur.execute(f"select count(*), count(distinct {FILE_COLUMN}) from {LAKE}.web_events")
    events, loaded_files = cur.fetchone()
    con.close()
    web = files["web_events"]
    assert (events, loaded_files) == (sum(pq.read_metadata(f).num_rows for f in web), len(web))


@pytest.mark.parametrize("model", MODELS)
def test_duckdb_and_postgresql_give_the_same_rows(engines, model):
    assert_same_rows(model, rows_duckdb(engines["duck"].warehouse, model), rows_postgres(engines["port"], model),
                     "PostgreSQL")


def test_the_summary_read_from_postgresql_equals_duckdbs(engines):
    on_postgres = summary_section(engines["run"], "calls and touchpoints")
    assert any(line.strip().startswith("opportunities attributed") for line in on_postgres), on_postgres
    assert on_postgres == summary_section(engines["summary"], "calls and touchpoints")


def test_the_report_page_and_the_hand_off_list_written_on_postgresql_equal_duckdbs(engines):
    assert_same_page_and_hand_off(engines["shown"], engines["duck"], "PostgreSQL")


def test_the_audit_on_postgresql_raises_the_alerts_duckdbs_raises(engines):
    assert engines["duck"].alerts_file != engines["postgres"].alerts_file
    assert audit_alerts(engines["postgres"]), "the demo raises at least one warning (an opportunity without people)"
    assert audit_alerts(engines["postgres"]) == audit_alerts(engines["duck"])


@pytest.mark.parametrize("table", PUBLISHED_MODELS)
def test_export_writes_the_same_files_from_both_engines(engines, table):
    exports = engines["exports"]
    for fmt in ("csv", "parquet"):
        duck, pg = exports["duckdb", table, fmt], exports["postgres", table, fmt]
        assert duck == pg, f"{table}.{fmt} differs between DuckDB and PostgreSQL"
    assert exports["duckdb", table, "csv"].count(b"\n") > 1 or table.startswith("dq_"), f"{table} exported no rows"


def test_parquet_exports_mark_the_timestamps_as_the_utc_instants_the_warehouse_holds(engines):
    table = pq.read_table(io.BytesIO(engines["exports"]["duckdb", "fct_touchpoints", "parquet"]))
    stamps = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
    assert stamps == ["touchpoint_at"], table.schema
    assert {str(table.schema.field(name).type) for name in stamps} == {"timestamp[us, tz=UTC]"}
    # the warehouse holds UTC without a zone: the same instants
    held = duckdb_published(engines, f"select {', '.join(stamps)} from {PUBLISHED}.fct_touchpoints")
    assert Counter(zip(*(table.column(name).to_pylist() for name in stamps), strict=True)) == Counter(
        tuple(v.replace(tzinfo=UTC) if v is not None else None for v in row) for row in held)


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


def test_freshness_on_postgres_with_nothing_loaded_fails_on_each_source_and_says_so(engines, tmp_path, monkeypatch):
    """A database whose schema lake has no table yet: dbt cannot measure either source, and its
    sources.json leaves both out; each is an error that says nothing is loaded."""
    con = psycopg2.connect(host="127.0.0.1", port=engines["port"], user="postgres", dbname="postgres")
    con.autocommit = True
    con.cursor().execute("create database nothing_loaded")
    con.close()
    monkeypatch.setenv("CALLTRAIL_PG_DATABASE", "nothing_loaded")
    s = settings_module.load({**engines["pg_env"], "CALLTRAIL_PG_DATABASE": "nothing_loaded",
                              "CALLTRAIL_WAREHOUSE": str(tmp_path / "calltrail.duckdb"),
                              "CALLTRAIL_DATA_DOCS_DIR": str(tmp_path / "data_docs")})
    with pytest.raises(DataQualityError, match="freshness_salesforce_task"):
        quality.check_source_freshness(s, RunInfo("calltrail_transform", "nothing_loaded"), in_process=True)
    observed = {a["check"]: a["observed"] for a in map(json.loads, s.alerts_file.read_text().splitlines())}
    assert observed == {f"freshness_{name}": f"no rows loaded yet: the warehouse has no table {LAKE}.{name}, "
                                             "nothing of it is loaded"
                        for name in ("salesforce_task", "web_events")}, observed


@pytest.mark.parametrize("engine", ["duck", "postgres"])
def test_export_reads_a_marts_name_as_sql_does_in_any_case_and_with_its_schema(engines, engine):
    tmp = engines["tmp"]
    environ = engines["pg_env"] if engine == "postgres" else None
    done = export(engines[engine], "ACME_Published.RPT_Call_Match_Rates", "parquet", tmp / f"named_{engine}.parquet",
                  environ)
    assert done.table == "rpt_call_match_rates"
    name = "duckdb" if engine == "duck" else "postgres"
    assert done.path.read_bytes() == engines["exports"][name, "rpt_call_match_rates", "parquet"]
    with pytest.raises(ExportError, match="'lake.rpt_call_match_rates' is not a published mart"):
        export(engines[engine], "lake.rpt_call_match_rates", "csv", tmp / "other_schema.csv", environ)


def test_export_into_a_folder_names_the_file_after_the_mart(engines):
    tmp = engines["tmp"]
    folder = tmp / "into_folder"
    folder.mkdir()
    done = export(engines["duck"], "rpt_call_match_rates", "parquet", folder)
    assert done.path == folder / "rpt_call_match_rates.parquet"
    assert [p.name for p in folder.iterdir()] == ["rpt_call_match_rates.parquet"]
    assert done.path.read_bytes() == engines["exports"]["duckdb", "rpt_call_match_rates", "parquet"]


def test_export_to_a_path_it_cannot_write_says_so_and_leaves_no_file(engines):
    tmp = engines["tmp"]
    blocker = tmp / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ExportError, match=f"cannot write {blocker}/out.csv: cannot create the folder {blocker}"):
        export(engines["duck"], "rpt_call_match_rates", "csv", blocker / "out.csv")
    # the folder exists, the file cannot be created in it: a folder already holds the partial's name
    target = tmp / "blocked" / "out.csv"
    (tmp / "blocked" / "out.csv.partial").mkdir(parents=True)
    with pytest.raises(ExportError, match=f"cannot write {target}: "):
        export(engines["duck"], "rpt_call_match_rates", "csv", target)
    assert sorted(p.name for p in (tmp / "blocked").iterdir()) == ["out.csv.partial"]
    assert (tmp / "blocked" / "out.csv.partial").is_dir()


def duckdb_published(engines, sql: str) -> list[tuple]:
    """The rows of ``sql`` over the DuckDB side's published marts, read as a consumer reads them."""
    con = duckdb.connect(str(engines["duck"].warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_export_takes_the_format_from_the_files_name_and_refuses_a_name_that_says_another(engines):
    env, folder = engines["duck_env"], engines["tmp"] / "named"
    folder.mkdir()
    exported = engines["exports"]

    def export_cli(*args: str):
        return run([str(BIN / "calltrail"), "export", "rpt_call_match_rates", *args], env, timeout=300)

    said = export_cli("--out", str(folder / "x.parquet"))
    assert said.returncode == 0
    assert duckdb_published(engines, f"select count(*) from {PUBLISHED}.rpt_call_match_rates") == [(1,)]
    assert said.stdout.splitlines() == [f"rpt_call_match_rates: 1 row written to {folder / 'x.parquet'} "
                                        f"({(folder / 'x.parquet').stat().st_size:,} bytes, from duckdb)"]
    assert (folder / "x.parquet").read_bytes() == exported["duckdb", "rpt_call_match_rates", "parquet"]
    assert export_cli("--out", str(folder / "x.txt")).returncode == 0  # a name that says nothing: CSV
    assert (folder / "x.txt").read_bytes() == exported["duckdb", "rpt_call_match_rates", "csv"]
    refused = export_cli("--format", "csv", "--out", str(folder / "y.PARQUET"))
    assert refused.returncode == 1
    assert refused.stdout.splitlines() == [
        f"calltrail export: cannot write csv into {folder / 'y.PARQUET'}: its name says parquet "
        "(--format parquet, or a name ending in .csv)"], refused.stdout + refused.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["x.parquet", "x.txt"]
    # a name ending in / is a folder, made if new
    assert export_cli("--out", f"{folder / 'new' / 'sub'}/").returncode == 0
    assert [p.name for p in (folder / "new" / "sub").iterdir()] == ["rpt_call_match_rates.csv"]
    assert (folder / "new" / "sub" / "rpt_call_match_rates.csv").read_bytes() == exported[
        "duckdb", "rpt_call_match_rates", "csv"]
    refused = export_cli("--out", f"{folder / 'x.txt'}/")
    assert (refused.returncode, refused.stdout) == (
        1, f"calltrail export: cannot write into the folder {folder / 'x.txt'}: it is a file\n")


def test_export_to_standard_output_writes_the_files_bytes_there_and_says_so_on_standard_error(engines):
    env, tmp = engines["duck_env"], engines["tmp"]
    cwd = tmp / "stdout"
    cwd.mkdir()
    rows = duckdb_published(engines, f"select count(*) from {PUBLISHED}.fct_touchpoints")[0][0]
    assert rows > 10
    for fmt in ("csv", "parquet"):
        done = subprocess.run([str(BIN / "calltrail"), "export", "fct_touchpoints", "--format", fmt, "--out", "-"],
                              env=env, cwd=cwd, capture_output=True, check=False, timeout=300)
        assert done.returncode == 0, done.stderr.decode()
        assert done.stdout == engines["exports"]["duckdb", "fct_touchpoints", fmt]
        assert done.stderr.decode().strip() == (f"fct_touchpoints: {rows:,} rows written to standard output "
                                                f"({len(done.stdout):,} bytes, from duckdb)")
    assert list(cwd.iterdir()) == [], "no file named - is written"
    # ./- is a file of that name
    subprocess.run([str(BIN / "calltrail"), "export", "rpt_call_match_rates", "--out", "./-"], env=env, cwd=cwd,
                   capture_output=True, check=True, timeout=300)
    assert (cwd / "-").read_bytes() == engines["exports"]["duckdb", "rpt_call_match_rates", "csv"]


def test_export_to_standard_output_stops_quietly_when_the_reader_stops_early(engines):
    """`calltrail export T --out - | head`: the shell's code for a closed pipe, no traceback, and no
    claim that every row was written. The pipe holds one page, so the export is still writing when
    the reader, having read the first bytes, closes its end."""
    csv = engines["exports"]["duckdb", "fct_touchpoints", "csv"]
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    assert len(csv) > 4 * 4096
    with os.fdopen(read_end, "rb") as reader:
        try:
            export = subprocess.Popen([str(BIN / "calltrail"), "export", "fct_touchpoints", "--out", "-"],
                                      env=engines["duck_env"], stdout=write_end, stderr=subprocess.PIPE, text=True)
        finally:
            os.close(write_end)
        assert reader.read(10) == csv[:10]
    stderr = export.communicate(timeout=300)[1]
    assert export.returncode == 141, stderr
    assert "Traceback" not in stderr and "rows written" not in stderr, stderr


def test_export_refuses_parquet_onto_a_terminal(engines):
    primary, secondary = pty.openpty()
    try:
        done = subprocess.run([str(BIN / "calltrail"), "export", "fct_touchpoints", "--format", "parquet", "--out", "-"],
                              env=engines["duck_env"], stdout=secondary, stderr=subprocess.PIPE, text=True,
                              check=False, timeout=300)
        os.set_blocking(primary, False)
        try:
            shown = os.read(primary, 65536)
        except BlockingIOError:
            shown = b""
    finally:
        os.close(primary)
        os.close(secondary)
    assert done.returncode == 1
    assert done.stderr.strip() == ("calltrail export: --out - writes Parquet (binary) into a pipe or a redirect only, "
                                   "not onto a terminal: add `> FILE` or `| COMMAND`, or use --format csv")
    assert b"PAR1" not in shown


def test_the_summary_as_json_is_the_same_on_both_engines_with_exact_amounts(engines):
    said = {name: json.loads(subprocess_out([str(BIN / "calltrail"), "summary", "--json"], env))
            for name, env in (("duckdb", engines["duck_env"]), ("postgres", engines["pg_env"]))}
    touchpoints = duckdb_published(engines, f"select count(*) from {PUBLISHED}.fct_touchpoints")[0][0]
    revenue = duckdb_published(
        engines, "select marketing_channel, currency_iso_code, sum(attributed_pipeline), sum(attributed_won_revenue) "
        f"from {PUBLISHED}.rpt_revenue_by_channel where grouped_by = 'channel' and model = 'full_path' group by 1, 2")
    assert revenue and any(won for *_, won in revenue), "the demo has won revenue"
    for name, summary in said.items():
        marts = summary["marts"]
        assert marts["touchpoints"] == touchpoints, name
        assert marts["revenue_model"] == "full_path", name
        assert {(r["channel"], r["currency"], Decimal(r["attributed_pipeline"]), Decimal(r["attributed_won_revenue"]))
                for r in marts["revenue"]} == {(c, cur, p or 0, w or 0) for c, cur, p, w in revenue}, name
        assert all(isinstance(r["attributed_pipeline"], str) for r in marts["revenue"]), "exact, not a float"
        assert summary["lake"]["tasks"] > 0
        assert summary["lake"]["objects"]["salesforce_opportunity"]["records"] > 0, summary["lake"]["objects"]
    assert said["duckdb"] == said["postgres"]


def test_a_question_mark_or_percent_sign_in_a_string_is_text_on_postgresql(engines):
    with open_warehouse(engines["postgres"]) as warehouse:
        rows = warehouse.execute("select 'why?' as q, 'it''s 50%?' as r, ? as v, ? as w", [7, "x?"]).fetchall()
        warehouse.execute("create temporary table asked (q text, v integer)")
        warehouse.executemany("insert into asked values ('how?', ?)", [[1], [2]])
        asked = warehouse.execute("select q, v from asked order by v").fetchall()
    assert [tuple(r) for r in rows] == [("why?", "it's 50%?", 7, "x?")]
    assert [tuple(r) for r in asked] == [("how?", 1), ("how?", 2)]


def test_postgresql_rows_are_read_with_their_declared_types_and_an_unknown_type_is_named(engines):
    with open_warehouse(engines["postgres"]) as warehouse:
        frame = warehouse.execute("select cast(1.5 as numeric) as share, 'x' as name").df()
        with pytest.raises(UnreadableColumn, match=r"column doc has a PostgreSQL type \(oid 114\)"):
            warehouse.execute("""select cast('{"a": 1}' as json) as doc""").df()
    assert frame.to_dict("records") == [{"share": 1.5, "name": "x"}]


@pytest.fixture(scope="module")
def late_on_postgres(tmp_path_factory):
    """The late-arriving data of tests/transform/late_data.py built step by step on PostgreSQL as the
    transformation DAG does (the lake's new partitions copied in, then dbt), incrementally after the
    first step, then once more in full mode on those tables; and one full build of the final lake on
    DuckDB."""
    from calltrail.tasks.transform import load_lake_into_postgres
    from tests.transform.late_data import STEPS, load_step

    tmp = tmp_path_factory.mktemp("late_postgres")
    full = settings_module.load({**calltrail_env(tmp), "CALLTRAIL_DBT_TARGET_DIR": str(tmp / "full_target"),
                                 "CALLTRAIL_WAREHOUSE": str(tmp / "full" / "calltrail.duckdb")})
    beside = concurrent.futures.ThreadPoolExecutor(1)
    with throwaway("late") as server, pytest.MonkeyPatch.context() as mp, beside:
        env = {**calltrail_env(tmp), **server, "CALLTRAIL_PG_SCHEMA": PG_SCHEMA, "CALLTRAIL_DBT_TARGET": "postgres",
               "CALLTRAIL_DBT_TARGET_DIR": str(tmp / "dbt_target")}
        for key, value in env.items():
            if key.startswith("CALLTRAIL_PG_"):
                mp.setenv(key, value)
        settings = settings_module.load(env)
        port = int(server["CALLTRAIL_PG_PORT"])
        steps = []
        for number in range(len(STEPS)):
            load_step(settings, number)
            load_lake_into_postgres(settings)
            # up to the incremental models, with their data tests; after the last step every model
            last = number == len(STEPS) - 1
            run_dbt(settings, ["build", *([] if last else ["--select", "+int_increment_state", "+int_journey_state"]),
                               "--exclude-resource-type", "unit_test", "--indirect-selection", "cautious"],
                    in_process=True)
            steps.append({key: rows_postgres(port, model, "late")[1] for key, model in (
                ("mode", "int_increment"), ("rebuilt", "int_changed_visitors"), ("journeys", "int_changed_journeys"),
                ("opportunities", "int_changed_opportunities"), ("tasks", "int_changed_tasks"))})
        models = {m: rows_postgres(port, m, "late") for m in COMPARED}
        # the lake is final: DuckDB's build from scratch in a dbt process beside the full run below
        from_scratch = beside.submit(build_in_one_go, full, in_process=False)
        # then a full run on the tables the steps built: one incremental table dropped, so every other
        # one is recreated where it stands (should_full_refresh), not built on an empty schema
        con = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="late")
        con.autocommit = True
        con.cursor().execute(f'drop table {PG_SCHEMA}."int_conversions"')
        con.close()
        run_dbt(settings, ["build", "--exclude-resource-type", "unit_test"], in_process=True)
        full_run = rows_postgres(port, "int_increment", "late")[1]
        after_full_run = {m: rows_postgres(port, m, "late") for m in COMPARED}
        from_scratch.result()
    return {"steps": steps, "models": models, "full_run": full_run, "after_full_run": after_full_run, "full": full}


def test_on_postgresql_a_missing_incremental_table_makes_a_full_run_that_recreates_the_others(late_on_postgres):
    assert [tuple(r)[:2] for r in late_on_postgres["full_run"]] == [("full", "no table int_conversions")]


def test_on_postgresql_each_late_data_step_after_the_first_rebuilds_only_what_it_changed(late_on_postgres):
    steps = late_on_postgres["steps"]
    assert [r[0] for r in steps[0]["mode"]] == ["full"]
    for number, step in enumerate(steps[1:], start=1):
        assert [r[0] for r in step["mode"]] == ["incremental"], number
        assert {r[0] for r in step["rebuilt"]} == REBUILT[number], f"step {number + 1}"
        assert {r[0] for r in step["journeys"]} == REBUILT_JOURNEYS[number], f"step {number + 1}"
        assert {r[0] for r in step["opportunities"]} == REBUILT_OPPORTUNITIES[number], f"step {number + 1}"
        assert {r[0] for r in step["tasks"]} == REBUILT_TASKS[number], f"step {number + 1}"


@pytest.mark.parametrize("model", COMPARED)
def test_on_postgresql_the_late_data_built_step_by_step_equals_one_full_build_on_duckdb(late_on_postgres, model):
    assert_same_rows(model, rows_duckdb(late_on_postgres["full"].warehouse, model), late_on_postgres["models"][model],
                     "PostgreSQL, step by step")


@pytest.mark.parametrize("model", COMPARED)
def test_on_postgresql_the_full_run_on_existing_tables_equals_one_full_build_on_duckdb(late_on_postgres, model):
    assert_same_rows(model, rows_duckdb(late_on_postgres["full"].warehouse, model),
                     late_on_postgres["after_full_run"][model], "PostgreSQL, full run on existing tables")
