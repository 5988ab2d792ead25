"""End to end on a real Airflow (``airflow dags test``, SQLite metadata in a temporary home)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from calltrail import report
from tests.airflow_env import BIN, airflow_env, calltrail_env, run
from tests.fakes.salesforce import FakeSalesforce, FakeSalesforceServer
from tests.salesforce.test_extract import task


def lake_fingerprint(lake: Path) -> dict[str, str]:
    """Content hash of every Parquet file in the lake (manifests carry run times, so they are left out)."""
    return {p.relative_to(lake).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(lake.rglob("*.parquet"))}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    env = calltrail_env(tmp)
    first = run([str(BIN / "calltrail"), "run"], env)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    data = tmp / "data"
    truth = json.loads((data / "landing" / "_demo" / "truth.json").read_text())
    return tmp, env, first, truth


def test_make_run_says_it_uses_demo_data_when_no_salesforce_connection_is_configured(demo_run):
    _, _, first, _ = demo_run
    assert "no Salesforce connection 'salesforce_default' configured" in first.stdout
    assert "using demo data" in first.stdout
    assert "calltrail_ingest_web_events succeeded" in first.stdout
    assert "calltrail_ingest_salesforce succeeded" in first.stdout


def test_the_lake_holds_what_the_generator_wrote(demo_run):
    tmp, _, first, truth = demo_run
    summary = report.summarise(tmp / "data" / "lake")
    assert summary.web_events == truth["web_events_valid"]
    assert dict(summary.quarantined["web_events"]) == truth["web_rows_bad"]
    assert summary.tasks == truth["tasks"]["call_tasks"] + truth["tasks"]["other_tasks"]
    assert summary.task_versions == truth["task_records_written"] + truth["task_versions_in_updates"]
    assert summary.deleted_tasks == truth["tasks"]["deleted"]
    assert re.search(rf"web events\s+{truth['web_events_valid']:,}\s", first.stdout), first.stdout


def test_the_summary_names_rows_quarantine_reasons_and_locations(demo_run):
    tmp, _, first, truth = demo_run
    for reason in truth["web_rows_bad"]:
        assert reason in first.stdout
    assert str(tmp / "data" / "lake") in first.stdout
    assert str(tmp / "data" / "lake" / "quarantine") in first.stdout


def test_a_second_run_changes_nothing_in_the_lake(demo_run):
    tmp, env, _, _ = demo_run
    lake = tmp / "data" / "lake"
    before = lake_fingerprint(lake)
    second = run([str(BIN / "calltrail"), "run"], env)
    assert second.returncode == 0, second.stdout[-4000:]
    assert lake_fingerprint(lake) == before


def test_salesforce_api_intervals_extracted_through_airflow_over_https(tmp_path, monkeypatch):
    """The access-token connection, TLS trust through REQUESTS_CA_BUNDLE, and one partition per interval
    when two hourly intervals are run one after the other (a backfill by logical date)."""
    base = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    state = FakeSalesforce(page_size=2, records=[task(i, base + timedelta(minutes=20 * i)) for i in range(6)])
    with FakeSalesforceServer(state, tmp_path) as server:
        conn = json.dumps({"conn_type": "salesforce",
                           "extra": {"instance_url": server.instance_url, "access_token": "token-1"}})
        env = airflow_env(tmp_path, AIRFLOW_CONN_SALESFORCE_DEFAULT=conn, REQUESTS_CA_BUNDLE=str(server.ca_path),
                          CALLTRAIL_SF_OVERLAP_MINUTES="0")
        migrate = run([str(BIN / "airflow"), "db", "migrate"], env)
        assert migrate.returncode == 0, migrate.stdout[-3000:]
        for logical_date in ("2026-03-01T10:00:00+00:00", "2026-03-01T11:00:00+00:00"):
            out = run([str(BIN / "airflow"), "dags", "test", "calltrail_ingest_salesforce", logical_date], env)
            assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    lake = tmp_path / "data" / "lake" / "salesforce_task" / "source=api"
    partitions = sorted(p.name for p in lake.iterdir())
    assert partitions == ["interval=20260301T090000Z_20260301T100000Z", "interval=20260301T100000Z_20260301T110000Z"]
    counts = {p: pq.read_metadata(lake / p / "tasks.parquet").num_rows for p in partitions}
    assert counts == {partitions[0]: 3, partitions[1]: 3}, counts
    assert any("/queryAll/" in path for _, path in state.requests)
