"""`CALLTRAIL_DBT_TARGET=postgres calltrail run` end to end, on a throwaway PostgreSQL server it starts
itself (no CALLTRAIL_PG_* configured), and what it shows equals what DuckDB gives on the same lake.

The run goes through Airflow as `make run` does: ingestion, the lake's partitions copied into
PostgreSQL, dbt, the audit gate, publish, the report page and the summary, all on PostgreSQL; the
DuckDB file is never created. The same lake is then built, audited and published on DuckDB in this
process: the summary, the report page's data and the calls-missing-BizibleId list are the same.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from calltrail import settings as settings_module
from calltrail.airflow.run_context import RunInfo
from calltrail.tasks import quality
from calltrail.tasks.publish import publish
from calltrail.transform.dbt import run_dbt
from calltrail.warehouse.postgres import PostgresUnreachable, connect
from tests.airflow_env import BIN, calltrail_env, run
from tests.airflow_live import free_port

VISITORS = "80"


def page_data(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert found, "the report page carries its data"
    data = json.loads(found.group(1).replace("<\\/", "</"))
    for r in data["trend"]["runs"]:  # this run's id and time differ between the two runs
        r.pop("run_id")
        r.pop("measured_at")
    return data


def tables(html: str) -> str:
    """The page's body without the times of its writing and of the audit runs (and their ids)."""
    body = html[html.index("<main>"):html.index("</main>")]
    body = re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?", "TIME", body)
    return re.sub(r"(manual|scheduled|asset_triggered)__[^<\s\"]+|duckdb_side", "RUN", body)


def section(output: str, title: str) -> list[str]:
    """The lines of one titled section of the run's output, without the warehouse's location."""
    lines = output[output.index(f"calltrail: {title}"):].splitlines()[2:]
    end = next((i for i, line in enumerate(lines) if line.startswith("calltrail: ")), len(lines))
    return [line for line in lines[:end] if not line.lstrip().startswith("warehouse ")]


@pytest.fixture(scope="module")
def postgres_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run_postgres")
    env = calltrail_env(tmp, CALLTRAIL_DBT_TARGET="postgres", CALLTRAIL_DEMO_VISITORS=VISITORS)
    out = run([str(BIN / "calltrail"), "run"], env, timeout=900)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    pg = settings_module.load(env)
    shown = {"page": (pg.report_dir / "index.html").read_text(), "csv": pg.missing_bizible_id_csv.read_bytes(),
             "duckdb_file_after_run": pg.warehouse.exists()}
    duck = settings_module.load({**env, "CALLTRAIL_DBT_TARGET": "duckdb"})
    run_dbt(duck, ["build", "--exclude", "resource_type:unit_test"], in_process=True)
    quality.audit(duck, RunInfo("calltrail_transform", "duckdb_side"))
    publish(duck, in_process=True)
    summary = subprocess.run([str(BIN / "calltrail"), "summary"], env={**env, "CALLTRAIL_DBT_TARGET": "duckdb"},
                             capture_output=True, text=True, check=True).stdout
    return out.stdout, shown, duck, summary


def test_the_run_starts_a_throwaway_server_loads_the_lake_into_it_and_never_opens_the_duckdb_file(postgres_run):
    stdout, shown, _, _ = postgres_run
    started = re.search(r"a throwaway PostgreSQL server on 127\.0\.0\.1:(\d+) holds the warehouse", stdout)
    assert started, stdout[:2000]
    assert re.search(r"\] load_lake_into_postgres\s", stdout), "the transformation DAG copies the lake first"
    assert "PostgreSQL database calltrail at 127.0.0.1" in stdout, "the summary names the warehouse it read"
    assert not shown["duckdb_file_after_run"], "the DuckDB file is not the target: nothing may create it"
    with pytest.raises(PostgresUnreachable):  # removed when the run ended
        connect({"CALLTRAIL_PG_HOST": "127.0.0.1", "CALLTRAIL_PG_PORT": started.group(1),
                 "CALLTRAIL_PG_USER": "postgres", "CALLTRAIL_PG_DATABASE": "calltrail"}).close()


def test_the_summary_read_from_postgresql_equals_duckdbs(postgres_run):
    stdout, _, _, summary = postgres_run
    on_postgres = section(stdout, "calls and touchpoints")
    assert any(line.strip().startswith("opportunities attributed") for line in on_postgres), on_postgres
    assert on_postgres == section(summary, "calls and touchpoints")


def test_the_report_page_and_the_hand_off_list_written_on_postgresql_equal_duckdbs(postgres_run):
    _, shown, duck, _ = postgres_run
    on_postgres = page_data(shown["page"])
    assert on_postgres["channels"] and on_postgres["revenue"]["built"] and on_postgres["journeys"]["list"]
    assert len(on_postgres["trend"]["runs"]) == 1, "the audit recorded its figures in PostgreSQL"
    on_duckdb = (duck.report_dir / "index.html").read_text()
    assert on_postgres == page_data(on_duckdb)
    assert tables(shown["page"]) == tables(on_duckdb)
    assert shown["csv"].count(b"\n") > 1, "the demo has calls without a BizibleId"
    assert shown["csv"] == duck.missing_bizible_id_csv.read_bytes()


def test_an_unreachable_server_is_one_line_naming_it(tmp_path):
    port = str(free_port())
    env = calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET="postgres", CALLTRAIL_PG_HOST="127.0.0.1",
                        CALLTRAIL_PG_PORT=port)
    out = run([str(BIN / "calltrail"), "summary"], env, timeout=120)
    assert out.returncode == 1
    assert f"calltrail summary: cannot connect to PostgreSQL at 127.0.0.1:{port}" in out.stdout, out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_the_scheduler_needs_a_configured_server(tmp_path):
    env = calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET="postgres")
    out = run([str(BIN / "calltrail"), "airflow", "start"], env, timeout=120)
    assert out.returncode == 1
    assert "needs a PostgreSQL server that outlives one run for the scheduler: set CALLTRAIL_PG_HOST" in out.stdout
    assert not (tmp_path / "data" / "airflow" / "calltrail-airflow.json").exists()
