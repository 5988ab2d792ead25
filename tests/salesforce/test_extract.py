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
    ApiBudgetTooLow,
    DailyApiLimitExceeded,
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
from tests.fakes.salesforce import FakeSalesforceServer
from tests.salesforce.lake_versions import serving

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
SF = SalesforceSettings(overlap_minutes=15, max_attempts=3, backoff_seconds=0.01, bulk_page_size=3)
BULK = replace(SF, bulk_threshold=6)  # the Bulk tests' seven Tasks go through Bulk API 2.0


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
    with serving(tmp_path, monkeypatch) as server:
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


def test_a_session_rejected_again_right_after_a_new_login_fails_with_instructions(fake, tmp_path):
    client = client_for(fake, tokens=["stale", "still-stale", "token-1"])
    with pytest.raises(SessionRejected, match="even right after logging in again"):
        extract_tasks(client, SF, tmp_path / "lake", until=END)
    assert client.logins == 2, f"one login, one renewal, then give up; saw {client.logins} logins"


CONCURRENT_LIMIT = "ConcurrentPerOrgLongTxn Limit exceeded."


def test_request_limit_exceeded_is_retried_with_backoff_then_succeeds(fake, tmp_path):
    fake.state.records = [task(1, START)]
    fake.state.fail("queryAll", 403, "REQUEST_LIMIT_EXCEEDED", CONCURRENT_LIMIT, times=2)
    client = client_for(fake)
    out = extract_tasks(client, SF, tmp_path / "lake", until=END)
    assert out.records == 1 and client.retries == 2


def test_request_limit_exceeded_on_every_attempt_fails_clearly(fake, tmp_path):
    fake.state.fail("queryAll", 403, "REQUEST_LIMIT_EXCEEDED", CONCURRENT_LIMIT, times=5)
    with pytest.raises(RequestLimitExceeded, match="24-hour") as err:
        extract_tasks(client_for(fake), SF, tmp_path / "lake", until=END)
    assert "after 3 attempts" in str(err.value)


def test_daily_request_limit_hit_fails_at_once_without_retrying(fake, tmp_path):
    fake.state.fail("queryAll", 403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", times=5)
    client = client_for(fake)
    with pytest.raises(DailyApiLimitExceeded, match="daily API request limit is used up") as err:
        extract_tasks(client, SF, tmp_path / "lake", until=END)
    queries = [p for _, p in fake.state.requests if "/queryAll/" in p]
    assert len(queries) == 1 and client.retries == 0, f"the daily limit cannot recover in seconds: {queries}"
    assert "not retried" in str(err.value)


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
    assert "\n" not in message, f"one line for the console: {message!r}"
    # The COUNT() selects no field and cannot hit INVALID_FIELD; the query that selects the field must.
    field_queries = [q for q in fake.state.soql_seen if "bizible2__BizibleId__c" in q]
    assert len(field_queries) == 1, f"INVALID_FIELD cannot recover and is not retried: {fake.state.soql_seen}"
    queries = [p for _, p in fake.state.requests if "/queryAll/" in p]
    assert len(queries) == 2, f"the COUNT() and the refused query, once each: {queries}"


def test_invalid_field_on_a_bulk_load_names_the_field_and_leaves_no_job(fake, tmp_path):
    fake.state.records = [task(i, START + timedelta(minutes=i)) for i in range(7)]
    fake.state.readable_fields = set(SF_FIELDS_WITHOUT_BIZIBLE_ID)
    with pytest.raises(FieldNotReadable, match="field bizible2__BizibleId__c is not readable") as err:
        extract_tasks(client_for(fake), BULK, tmp_path / "lake", until=END, poll_seconds=0.01)
    assert "\n" not in str(err.value), f"one line for the console: {str(err.value)!r}"
    creates = [p for m, p in fake.state.requests if m == "POST" and p.rstrip("/").endswith("/jobs/query")]
    assert len(creates) == 1, f"INVALID_FIELD on job creation is not retried: {creates}"
    assert fake.state.bulk_jobs == {} and not (tmp_path / "lake" / API_DATASET).exists()


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


def recording_client(server: FakeSalesforceServer, delays: list[float], **kwargs: object) -> ResilientSalesforce:
    """A client whose backoffs are recorded instead of slept (its own settings otherwise)."""
    options: dict[str, object] = {"max_attempts": SF.max_attempts, "backoff_seconds": SF.backoff_seconds, **kwargs}
    return ResilientSalesforce(lambda: Salesforce(instance_url=server.instance_url, session_id="token-1"),
                               watched_fields=(SF.bizible_id_field, SF.touchpoint_date_field),
                               sleep=delays.append, **options)  # type: ignore[arg-type]


def ids(rows: list[dict[str, object]]) -> list[str]:
    return [str(r["Id"]) for r in rows]


def test_retry_after_on_a_503_is_honoured(fake, tmp_path):
    fake.state.records = [task(1, START)]
    fake.state.fail("queryAll", 503, "SERVER_UNAVAILABLE", "Down for maintenance", headers={"Retry-After": "7"})
    delays: list[float] = []
    out = extract_tasks(recording_client(fake, delays), SF, tmp_path / "lake", until=END)
    assert out.records == 1
    assert len(delays) == 1 and 7 <= delays[0] <= 8, f"expected a wait of 7 s (+ jitter up to 1 s), saw {delays}"


def test_backoff_without_retry_after_grows_with_jitter(fake, tmp_path):
    fake.state.records = [task(1, START)]
    fake.state.fail("queryAll", 500, "UNKNOWN_EXCEPTION", "boom", times=2)
    delays: list[float] = []
    extract_tasks(recording_client(fake, delays, backoff_seconds=1.0), SF, tmp_path / "lake", until=END)
    assert len(delays) == 2
    assert 1 <= delays[0] <= 2 and 2 <= delays[1] <= 3, f"expected 1 s then 2 s, each + up to 1 s jitter: {delays}"


def test_a_retry_after_longer_than_the_longest_wait_fails_at_once_and_says_so(fake, tmp_path):
    fake.state.fail("queryAll", 503, "SERVER_UNAVAILABLE", "Down for maintenance", headers={"Retry-After": "3600"})
    delays: list[float] = []
    with pytest.raises(SalesforceUnavailable, match=r"asked to wait 3600 s \(Retry-After\)"):
        extract_tasks(recording_client(fake, delays), SF, tmp_path / "lake", until=END)
    assert delays == []


def test_a_chunked_page_broken_off_mid_stream_is_read_again_and_the_data_is_whole(fake, tmp_path):
    fake.state.records = [task(i, START + timedelta(minutes=i)) for i in range(8)]
    fake.state.break_body("more")
    client = client_for(fake)
    out = extract_tasks(client, SF, tmp_path / "lake", until=END)
    assert ids(lake_rows(out.partition)) == [f"00T5e00000ABC{i:03d}AAA" for i in range(8)]
    assert out.records == 8 and client.retries == 1
    pages = [p for _, p in fake.state.requests if "01gFAKE" in p]
    assert len(pages) == 3 and pages[0] == pages[1], f"the broken page is asked for again: {pages}"


def test_a_first_page_cut_short_of_its_content_length_is_read_again(fake, tmp_path):
    fake.state.records = [task(i, START + timedelta(minutes=i)) for i in range(3)]
    fake.state.break_body("queryAll", chunked=False, after=1)  # the COUNT() whole, the first page cut short
    client = client_for(fake)
    out = extract_tasks(client, SF, tmp_path / "lake", until=END)
    assert ids(lake_rows(out.partition)) == [f"00T5e00000ABC{i:03d}AAA" for i in range(3)]
    assert client.retries == 1
    count, *pages = [p for _, p in fake.state.requests if "/queryAll/" in p]
    assert "COUNT" in count and len(pages) == 2 and pages[0] == pages[1] and "COUNT" not in pages[0], \
        f"the COUNT() once, then the cut page asked for again: {[count, *pages]}"


def test_a_page_that_times_out_is_asked_for_again(fake, tmp_path, monkeypatch):
    from calltrail.salesforce.client import Credentials, SalesforceConnector

    fake.state.records = [task(i, START + timedelta(minutes=i)) for i in range(5)]
    fake.state.stall("more", seconds=1.5)
    token = Credentials("salesforce_default", "access_token",
                        {"session_id": "token-1", "instance": fake.instance_url.removeprefix("https://")},
                        "59.0", None, fake.instance_url)
    connector = SalesforceConnector("salesforce_default", read_timeout=0.5, credentials=token)
    client = ResilientSalesforce(connector, max_attempts=3, backoff_seconds=0.01)
    out = extract_tasks(client, SF, tmp_path / "lake", until=END)
    assert out.records == 5 and client.retries == 1


def test_a_bulk_result_page_broken_off_mid_stream_retries_the_job_and_leaves_one(fake, tmp_path):
    fake.state.records = [task(i, START - timedelta(days=30) + timedelta(hours=i)) for i in range(7)]
    fake.state.break_body("bulk_results")
    out = extract_tasks(client_for(fake), BULK, tmp_path / "lake", until=END, poll_seconds=0.01)
    assert out.mode == "bulk2_queryAll", f"7 Tasks above a threshold of 6 go through Bulk API 2.0: {out.mode}"
    assert sorted(ids(lake_rows(out.partition))) == sorted(str(r["Id"]) for r in fake.state.records)
    creates = [p for m, p in fake.state.requests if m == "POST" and p.rstrip("/").endswith("/jobs/query")]
    assert len(creates) == 2, f"the broken job is retried as a new job: {creates}"
    assert len(fake.state.bulk_jobs) == 1, f"one job left in the org, saw {list(fake.state.bulk_jobs)}"


def test_a_500_on_bulk_job_creation_after_the_job_was_created_leaves_exactly_one_job(fake, tmp_path):
    fake.state.records = [task(i, START - timedelta(days=400) + timedelta(hours=i)) for i in range(7)]
    fake.state.fail("bulk_create", 500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.", after_work=True)
    out = extract_tasks(client_for(fake), BULK, tmp_path / "lake", until=END, poll_seconds=0.01)
    assert out.mode == "bulk2_queryAll" and len(lake_rows(out.partition)) == 7
    creates = [p for m, p in fake.state.requests if m == "POST" and p.rstrip("/").endswith("/jobs/query")]
    deletes = [p for m, p in fake.state.requests if m == "DELETE"]
    assert len(creates) == 2 and len(deletes) == 1, f"creates {creates}, deletes {deletes}"
    assert len(fake.state.bulk_jobs) == 1, f"exactly one job in the org, saw {list(fake.state.bulk_jobs)}"


def test_a_lower_case_configured_field_name_gets_the_value_salesforce_sends_in_canonical_case(fake, tmp_path):
    lower = SalesforceSettings(bizible_id_field="bizible2__bizibleid__c",
                               touchpoint_date_field="BIZIBLE2__BIZIBLE_TOUCHPOINT_DATE__C", bulk_page_size=3)
    fake.state.records = [task(1, START), task(2, START + timedelta(minutes=1))]
    answered = fake.state.run_soql("SELECT bizible2__bizibleid__c FROM Task", include_deleted=True)[0]
    assert "bizible2__BizibleId__c" in answered, f"the fake answers in canonical case as Salesforce does: {answered}"
    for mode, threshold in (("rest_queryAll", 2), ("bulk2_queryAll", 1)):  # the two Tasks: REST, then Bulk
        out = extract_tasks(client_for(fake), replace(lower, bulk_threshold=threshold), tmp_path / f"lake-{mode}",
                            until=END, poll_seconds=0.01)
        assert out.mode == mode, f"expected {mode}, the run went through {out.mode}"
        rows = lake_rows(out.partition)
        assert [r["bizible2__bizibleid__c"] for r in rows] == [f"{1:032x}", f"{2:032x}"], (mode, rows)
        assert rows[0]["BIZIBLE2__BIZIBLE_TOUCHPOINT_DATE__C"] == datetime(2026, 3, 1, 9, 0)


def test_a_daily_api_budget_too_low_fails_before_any_query(fake, tmp_path):
    fake.state.records = [task(1, START)]
    fake.state.daily_api_max, fake.state.daily_api_remaining = 15000, 1200
    with pytest.raises(ApiBudgetTooLow) as err:
        extract_tasks(client_for(fake), SF, tmp_path / "lake", until=END)
    message = str(err.value)
    assert "1199 of 15000 requests left" in message  # the /limits read is a request too and "CALLTRAIL_SF_API_RESERVE_PERCENT=10" in message
    assert [p for _, p in fake.state.requests] == ["/services/data/v59.0/limits/"], fake.state.requests
    assert not (tmp_path / "lake" / "salesforce_task").exists()


def test_a_budget_that_covers_the_run_and_the_reserve_lets_it_run(fake, tmp_path):
    fake.state.records = [task(1, START)]
    fake.state.daily_api_max, fake.state.daily_api_remaining = 15000, 1600
    out = extract_tasks(client_for(fake), SF, tmp_path / "lake", until=END)
    assert out.records == 1 and fake.state.daily_api_remaining == 1597, "/limits, the COUNT() and one query page"


def test_a_budget_that_covers_a_rest_run_but_not_the_bulk_job_the_count_chose_fails_before_any_job(fake, tmp_path):
    fake.state.records = [task(i, START + timedelta(minutes=i)) for i in range(7)]
    fake.state.daily_api_max, fake.state.daily_api_remaining = 15000, 1540  # reserve 1500: 40 to spend
    with pytest.raises(ApiBudgetTooLow) as err:
        extract_tasks(client_for(fake), BULK, tmp_path / "lake", until=END, poll_seconds=0.01)
    message = str(err.value)
    assert "the run needs about 60" in message and "bulk2_queryAll" in message and "no Task was read" in message
    paths = [p.split("?")[0] for _, p in fake.state.requests]
    assert paths == ["/services/data/v59.0/limits/", "/services/data/v59.0/queryAll/"], f"/limits, COUNT(): {paths}"
    assert fake.state.soql_seen == ["SELECT COUNT() FROM Task WHERE SystemModstamp < 2026-03-01T10:00:00Z"]
    assert not (tmp_path / "lake" / "salesforce_task").exists()


def test_a_page_broken_on_every_attempt_fails_naming_the_org_and_the_attempts(fake, tmp_path):
    fake.state.records = [task(i, START + timedelta(minutes=i)) for i in range(5)]
    fake.state.break_body("more", times=SF.max_attempts)
    with pytest.raises(SalesforceUnavailable) as err:
        extract_tasks(client_for(fake), SF, tmp_path / "lake", until=END)
    message = str(err.value)
    assert f"Salesforce at {fake.instance_url} failed after 3 attempts: response broken off mid-body" in message
    assert not list((tmp_path / "lake").rglob("*.parquet")), "a failed run stores no partition"


def test_a_session_expiring_while_a_bulk_job_runs_is_renewed_and_the_orphan_job_removed(fake, tmp_path):
    fake.state.records = [task(i, START - timedelta(days=30) + timedelta(hours=i)) for i in range(7)]
    fake.state.sessions_expire_after = 5  # /limits, the COUNT(), two job lists and the create; the first poll gets 401
    client = ResilientSalesforce(lambda: Salesforce(instance_url=fake.instance_url, session_id=fake.state.issue_token()),
                                 max_attempts=3, backoff_seconds=0.01)
    out = extract_tasks(client, BULK, tmp_path / "lake", until=END, poll_seconds=0.01)
    assert out.mode == "bulk2_queryAll", out.mode
    assert sorted(ids(lake_rows(out.partition))) == sorted(str(r["Id"]) for r in fake.state.records)
    assert client.reauthentications == 1
    assert len(fake.state.bulk_jobs) == 1, f"the job of the expired session is removed: {list(fake.state.bulk_jobs)}"
    assert len([p for m, p in fake.state.requests if m == "DELETE"]) == 1


def test_limits_the_user_may_not_read_leave_the_budget_unchecked_and_the_run_goes_on(fake, tmp_path, caplog):
    fake.state.records = [task(1, START)]
    fake.state.fail("limits", 403, "INSUFFICIENT_ACCESS", "insufficient access rights on object id")
    out = extract_tasks(client_for(fake), SF, tmp_path / "lake", until=END)
    assert out.records == 1
    assert "View Setup and Configuration" in caplog.text, "the operator is told why the budget was not checked"
