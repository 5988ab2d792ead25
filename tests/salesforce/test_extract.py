"""Extraction against a local fake Salesforce (HTTPS, real wire format)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from simple_salesforce import Salesforce

from calltrail.salesforce.client import (
    FieldNotReadable,
    RequestLimitExceeded,
    ResilientSalesforce,
    SalesforceUnavailable,
    SessionRejected,
    connect,
)
from calltrail.salesforce.extract import extract_tasks
from calltrail.salesforce.watermark import API_DATASET, read_watermark
from calltrail.settings import SalesforceSettings
from tests.fakes.salesforce import FakeSalesforce, FakeSalesforceServer

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
SF = SalesforceSettings(overlap_minutes=15, max_attempts=3, backoff_seconds=0.01, bulk_page_size=3)


def task(n: int, modstamp: datetime, **extra: object) -> dict[str, object]:
    stamp = modstamp.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    record: dict[str, object] = {
        "Id": f"00T5e00000ABC{n:03d}AAA", "WhoId": None, "WhatId": None, "Subject": f"Call {n}",
        "Type": "Call", "TaskSubtype": "Call", "CallType": "Inbound", "CallDurationInSeconds": 60 + n,
        "CallObject": None, "CallDisposition": None, "Status": "Completed", "ActivityDate": "2026-03-01",
        "CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp, "IsDeleted": False,
        "bizible2__BizibleId__c": f"{n:032x}", "bizible2__Bizible_Touchpoint_Date__c": stamp,
    }
    record.update(extra)
    return record


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    state = FakeSalesforce(page_size=3)
    with FakeSalesforceServer(state, tmp_path) as server:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_path))
        yield server


def client_for(server: FakeSalesforceServer, tokens: list[str] | None = None) -> ResilientSalesforce:
    handed = iter(tokens or ["token-1"] * 10)
    return ResilientSalesforce(
        lambda: Salesforce(instance_url=server.instance_url, session_id=next(handed)),
        max_attempts=SF.max_attempts, backoff_seconds=SF.backoff_seconds,
        watched_fields=(SF.bizible_id_field, SF.touchpoint_date_field),
    )


def lake_rows(partition: Path) -> list[dict[str, object]]:
    con = duckdb.connect()
    cur = con.execute(f"select * from read_parquet('{partition}/tasks.parquet') order by Id, SystemModstamp")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


def test_rest_extraction_follows_next_records_url_over_several_pages(fake, tmp_path):
    fake.state.records = [task(i, START + timedelta(minutes=i)) for i in range(8)]
    out = extract_tasks(client_for(fake), SF, tmp_path / "lake", until=END)
    assert out.pages == 3, f"8 records at 3 per page should be 3 pages, saw {out.pages}"
    assert [r["Id"] for r in lake_rows(out.partition)] == [f"00T5e00000ABC{i:03d}AAA" for i in range(8)]
    followed = [p for m, p in fake.state.requests if "01gFAKE" in p]
    assert len(followed) == 2, f"expected two nextRecordsUrl follow-ups, saw {followed}"
    assert all("OFFSET" not in q.upper() for q in fake.state.soql_seen)


def test_incremental_window_starts_at_the_watermark_less_the_overlap_and_ends_before_until(fake, tmp_path):
    lake = tmp_path / "lake"
    fake.state.records = [task(9, START)]
    first = extract_tasks(client_for(fake), SF, lake, until=START + timedelta(minutes=1))
    assert first.kind == "full" and first.watermark == START.isoformat()
    fake.state.records += [
        task(1, START - timedelta(minutes=20)),  # before the overlap: not extracted
        task(2, START - timedelta(minutes=10)),  # inside the 15-minute overlap
        task(3, START + timedelta(minutes=59)),
        task(4, END),  # the window is half-open
    ]
    fake.state.soql_seen.clear()
    out = extract_tasks(client_for(fake), SF, lake, until=END)
    assert out.kind == "incremental"
    # 009 is read again through the overlap but is already in the lake: not written twice
    assert [r["Id"][-6:-3] for r in lake_rows(out.partition)] == ["002", "003"]
    window = "SystemModstamp >= 2026-03-01T08:45:00Z AND SystemModstamp < 2026-03-01T10:00:00Z"
    assert [q for q in fake.state.soql_seen if window in q and "COUNT()" not in q], fake.state.soql_seen


def test_query_all_brings_deleted_tasks_flagged_is_deleted(fake, tmp_path):
    fake.state.records = [task(1, START), task(2, START + timedelta(minutes=1), IsDeleted=True)]
    out = extract_tasks(client_for(fake), SF, tmp_path / "lake", until=END)
    assert {r["Id"][-6:-3]: r["IsDeleted"] for r in lake_rows(out.partition)} == {"001": False, "002": True}
    assert any("/queryAll/" in p for _, p in fake.state.requests)


def test_offsets_are_normalised_to_utc_and_fields_typed(fake, tmp_path):
    fake.state.records = [task(1, START, CreatedDate="2026-03-01T10:10:00.000+0100")]
    out = extract_tasks(client_for(fake), SF, tmp_path / "lake", until=END)
    row = lake_rows(out.partition)[0]
    assert row["CreatedDate"] == datetime(2026, 3, 1, 9, 10)
    assert row["CallDurationInSeconds"] == 61
    assert row["bizible2__BizibleId__c"] == f"{1:032x}"


def test_expired_session_is_re_authenticated_and_the_extraction_continues(fake, tmp_path):
    fake.state.records = [task(i, START + timedelta(minutes=i)) for i in range(5)]
    client = client_for(fake, tokens=["expired-token", "token-1"])
    out = extract_tasks(client, SF, tmp_path / "lake", until=END)
    assert out.records == 5
    assert client.reauthentications == 1


def test_access_token_rejected_after_re_authentication_fails_with_instructions(fake, tmp_path):
    client = client_for(fake, tokens=["stale", "still-stale"])
    with pytest.raises(SessionRejected, match="mint a new token"):
        extract_tasks(client, SF, tmp_path / "lake", until=END)


def test_request_limit_exceeded_is_retried_with_backoff_then_succeeds(fake, tmp_path):
    fake.state.records = [task(1, START)]
    fake.state.fail("queryAll", 403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", times=2)
    client = client_for(fake)
    out = extract_tasks(client, SF, tmp_path / "lake", until=END)
    assert out.records == 1 and client.retries == 2


def test_request_limit_exceeded_on_every_attempt_fails_clearly(fake, tmp_path):
    fake.state.fail("queryAll", 403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", times=5)
    with pytest.raises(RequestLimitExceeded, match="daily|24-hour"):
        extract_tasks(client_for(fake), SF, tmp_path / "lake", until=END)


def test_server_error_500_then_success(fake, tmp_path):
    fake.state.records = [task(i, START + timedelta(minutes=i)) for i in range(4)]
    fake.state.fail("more", 500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.", times=1)
    client = client_for(fake)
    out = extract_tasks(client, SF, tmp_path / "lake", until=END)
    assert out.records == 4 and client.retries == 1


def test_invalid_field_on_bizible_id_names_the_field_and_the_cause(fake, tmp_path):
    fake.state.readable_fields = set(SF_FIELDS_WITHOUT_BIZIBLE_ID)
    with pytest.raises(FieldNotReadable) as err:
        extract_tasks(client_for(fake), SF, tmp_path / "lake", until=END)
    message = str(err.value)
    assert "bizible2__BizibleId__c" in message and "package" in message and "field-level" in message


def test_a_failed_run_writes_no_partial_partition_and_keeps_the_previous_one(fake, tmp_path):
    lake = tmp_path / "lake"
    fake.state.records = [task(i, START + timedelta(minutes=i)) for i in range(4)]
    first = extract_tasks(client_for(fake), SF, lake, until=END)
    before = lake_rows(first.partition)
    fake.state.records.append(task(9, START + timedelta(minutes=30)))
    fake.state.fail("more", 500, "UNKNOWN_EXCEPTION", "boom", times=SF.max_attempts)
    with pytest.raises(SalesforceUnavailable):
        extract_tasks(client_for(fake), SF, lake, until=END + timedelta(hours=1))
    assert lake_rows(first.partition) == before
    assert read_watermark(lake).at == START + timedelta(minutes=3), "a failed run must not move the watermark"
    assert [p.name for p in (lake / API_DATASET).iterdir()] == [first.partition.name]
    leftovers = [p for p in (lake / ".tmp").iterdir()] if (lake / ".tmp").exists() else []
    assert leftovers == [], f"scratch files left behind: {leftovers}"


def test_running_the_same_window_again_writes_nothing(fake, tmp_path):
    lake = tmp_path / "lake"
    fake.state.records = [task(i, START + timedelta(minutes=i)) for i in range(4)]
    first = extract_tasks(client_for(fake), SF, lake, until=END)
    out = extract_tasks(client_for(fake), SF, lake, until=END)
    files = sorted(p.relative_to(lake).as_posix() for p in lake.rglob("*.parquet"))
    assert files == ["salesforce_task/source=api/interval=full_20260301T100000Z/tasks.parquet"]
    assert len(lake_rows(first.partition)) == 4
    assert out.partition is None and out.records == 4 and out.result.duplicates_in_lake == 4


def test_bulk_full_load_reads_every_result_page_including_deleted(fake, tmp_path):
    fake.state.records = [task(i, START - timedelta(days=400) + timedelta(hours=i)) for i in range(7)]
    fake.state.records[3]["IsDeleted"] = True
    fake.state.records[4]["Type"] = None
    out = extract_tasks(client_for(fake), replace(SF, bulk_threshold=6), tmp_path / "lake", until=END,
                        poll_seconds=0.01)
    rows = lake_rows(out.partition)
    assert out.mode == "bulk2_queryAll" and out.pages == 3 and len(rows) == 7
    assert [r["IsDeleted"] for r in rows].count(True) == 1
    assert rows[4]["Type"] is None, "an empty Bulk CSV cell is a null field"
    results = [p for _, p in fake.state.requests if p.split("?")[0].endswith("/results")]
    assert len(results) == 3 and "locator=3" in results[1]


def test_access_token_connection_mode_over_https_with_a_self_signed_certificate(fake, tmp_path, monkeypatch):
    fake.state.records = [task(1, START)]
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", json.dumps({
        "conn_type": "salesforce",
        "extra": {"instance_url": fake.instance_url, "access_token": "token-1"},
    }))
    client = ResilientSalesforce(lambda: connect("salesforce_default"), max_attempts=1)
    out = extract_tasks(client, SF, tmp_path / "lake", until=END)
    assert out.records == 1
    assert fake.instance_url.startswith("https://")


def test_untrusted_certificate_is_refused(fake, tmp_path, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setenv("CURL_CA_BUNDLE", "")
    client = ResilientSalesforce(lambda: Salesforce(instance_url=fake.instance_url, session_id="token-1"),
                                 max_attempts=1)
    with pytest.raises(SalesforceUnavailable, match="SSL|certificate"):
        extract_tasks(client, SF, tmp_path / "lake", until=END)


SF_FIELDS_WITHOUT_BIZIBLE_ID = [
    "Id", "WhoId", "WhatId", "Subject", "Type", "TaskSubtype", "CallType", "CallDurationInSeconds", "CallObject",
    "CallDisposition", "Status", "ActivityDate", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted",
    "bizible2__Bizible_Touchpoint_Date__c",
]
