"""What the engine tests compare: rows normalised as every engine must give them, the report
page's data and tables, a section of calltrail's output."""

from __future__ import annotations

import datetime
import decimal
import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]
# Every intermediate model and mart but int_changed_visitors, int_changed_journeys,
# int_changed_opportunities, int_changed_tasks and int_rebuilt_web_events, which are empty after a
# full build; and stg_salesforce__tasks, the one incremental staging model.
MODELS = sorted([p.stem for folder in ("marts", "intermediate") for p in (ROOT / "dbt_project" / "models" / folder).glob("*.sql")
                 if not p.stem.startswith("int_changed_") and p.stem != "int_rebuilt_web_events"]
                + ["stg_salesforce__tasks"])
# The schemas besides the build's, named otherwise than by default (docs/configuration.md), as a
# second deployment on a shared database or metastore names them: the PostgreSQL run and Spark's
# Thrift Server run name them so, the same on both.
NAMED_SCHEMAS = {"CALLTRAIL_LAKE_SCHEMA": "acme_lake", "CALLTRAIL_PUBLISH_SCHEMA": "acme_published",
                 "CALLTRAIL_PUBLISH_LOG_SCHEMA": "acme_meta", "CALLTRAIL_QUALITY_SCHEMA": "acme_quality"}
# The partition columns Spark adds to the incremental models (docs/incremental.md).
BUCKETS = ("visitor_bucket", "journey_bucket", "opportunity_bucket", "task_bucket")


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


def cursor_rows(cur) -> tuple[list[str], Counter]:
    """The columns and normalised rows of a DB-API cursor's result."""
    return [d[0] for d in cur.description], Counter(tuple(normalised(v) for v in r) for r in cur.fetchall())


def rows_duckdb(warehouse: Path, model: str) -> tuple[list[str], Counter]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return cursor_rows(con.execute(f'select * from main."{model}"'))
    finally:
        con.close()


def rows_parquet(path: Path) -> tuple[list[str], Counter]:
    """A model another engine wrote as Parquet: its columns and normalised rows, as rows_duckdb."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return table.column_names, Counter(tuple(normalised(v) for v in row.values()) for row in table.to_pylist())


def without_partition_column(table):
    """A Spark table read back without the partition column Spark adds to the incremental models
    (``BUCKETS``); other engines have no such column."""
    return table.drop_columns([c for c in BUCKETS if c in table.column_names])


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


def assert_same_rows(model: str, duck: tuple[list[str], Counter], other: tuple[list[str], Counter], engine: str) -> None:
    """One model's columns and rows (order-independent) on DuckDB and on ``engine``; not empty."""
    (duck_columns, duck_rows), (columns, rows) = duck, other
    assert columns == duck_columns
    only_duck, only_other = duck_rows - rows, rows - duck_rows
    assert (sum(only_duck.values()), sum(only_other.values())) == (0, 0), (
        f"only on DuckDB, e.g. {list(only_duck)[:2]}; only on {engine}, e.g. {list(only_other)[:2]}")
    assert sum(duck_rows.values()) > 0 or model.startswith("dq_"), f"{model} is empty: the comparison proves nothing"


def assert_same_page_and_hand_off(shown: dict, duck, engine: str) -> None:
    """The report page and the calls-missing-BizibleId list a run wrote on ``engine`` (``shown``)
    against those written on DuckDB (``duck``: its settings)."""
    on_engine = page_data(shown["page"])
    assert on_engine["channels"] and on_engine["revenue"]["built"] and on_engine["journeys"]["list"]
    assert len(on_engine["trend"]["runs"]) == 1, f"the audit recorded its figures in {engine}"
    on_duckdb = (duck.report_dir / "index.html").read_text()
    assert on_engine == page_data(on_duckdb)
    assert page_tables(shown["page"]) == page_tables(on_duckdb)
    assert shown["csv"].count(b"\n") > 1, "the demo has calls without a BizibleId"
    assert shown["csv"] == duck.missing_bizible_id_csv.read_bytes()


def audit_alerts(settings) -> list[tuple]:
    """The audit's alerts in the alerts file of ``settings``: task ``audit`` under Airflow, none
    when the audit ran in the test's process."""
    alerts = [json.loads(line) for line in settings.alerts_file.read_text().splitlines()]
    return sorted((a["layer"], a["check"], a["severity"], a["observed"], tuple(a.get("record_ids") or ()))
                  for a in alerts if a.get("task_id") in ("audit", ""))
