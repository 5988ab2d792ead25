"""The watermark is the lake's own: no hour is lost, the first run reads the history, and a lost
watermark falls back to a full load (fake Salesforce over HTTPS, real lake)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from calltrail.salesforce.extract import extract_tasks
from calltrail.salesforce.watermark import API_DATASET, read_watermark
from tests.salesforce.lake_versions import fingerprint, lake_versions, modify, org_versions, serving
from tests.salesforce.test_extract import SF, client_for, task

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    with serving(tmp_path, monkeypatch) as server:
        yield server


def ids(n: int) -> str:
    return f"00T5e00000ABC{n:03d}AAA"


def history(count: int) -> list[dict[str, object]]:
    """Tasks changed over three years before T0, the oldest first."""
    return [task(i, T0 - timedelta(days=3 * 365) + timedelta(days=11 * i, minutes=i)) for i in range(count)]


def test_tasks_modified_while_the_scheduler_was_down_for_three_hours_are_all_in_the_lake(fake, tmp_path):
    lake = tmp_path / "lake"
    fake.state.records = history(10)
    extract_tasks(client_for(fake), SF, lake, until=T0)
    # The 13:00, 14:00 and 15:00 runs never happen. Meanwhile Salesforce changes:
    modify(fake.state.records, ids(1), T0 + timedelta(minutes=10), Subject="edited at 12:10")
    modify(fake.state.records, ids(2), T0 + timedelta(minutes=70), bizible2__BizibleId__c="f" * 32)
    modify(fake.state.records, ids(3), T0 + timedelta(minutes=130), IsDeleted=True)  # into the Recycle Bin
    fake.state.records.append(task(50, T0 + timedelta(minutes=170)))  # created at 14:50
    modify(fake.state.records, ids(1), T0 + timedelta(minutes=175), Subject="edited again at 14:55")
    changed = {v for v in org_versions(fake.state.records) if v[1] >= T0.replace(tzinfo=None)}
    assert len(changed) == 4

    out = extract_tasks(client_for(fake), SF, lake, until=T0 + timedelta(hours=3, minutes=5))

    assert out.kind == "incremental"
    missing = changed - set(lake_versions(lake))
    assert not missing, f"versions changed while the scheduler was down are not in the lake: {sorted(missing)}"
    assert out.watermark == (T0 + timedelta(minutes=175)).isoformat()
    assert read_watermark(lake).at == T0 + timedelta(minutes=175)


def test_the_same_run_repeated_changes_nothing_in_the_lake(fake, tmp_path):
    lake = tmp_path / "lake"
    fake.state.records = history(6)
    extract_tasks(client_for(fake), SF, lake, until=T0)
    modify(fake.state.records, ids(4), T0 + timedelta(minutes=20), Subject="edited")
    until = T0 + timedelta(hours=1)
    first = extract_tasks(client_for(fake), SF, lake, until=until)
    assert first.partition is not None and first.result.rows_valid == 1
    before, mark = fingerprint(lake), read_watermark(lake)

    again = extract_tasks(client_for(fake), SF, lake, until=until)

    assert again.partition is None, f"a repeated run wrote {again.partition}"
    assert fingerprint(lake) == before
    assert read_watermark(lake) == mark
    versions = lake_versions(lake)
    assert len(versions) == len(set(versions)) == 7  # 6 Tasks, one of them in two versions


def test_first_run_without_a_watermark_reads_the_whole_history_through_rest_below_the_bulk_threshold(
        fake, tmp_path):
    lake = tmp_path / "lake"
    fake.state.records = history(12)
    fake.state.records[2]["IsDeleted"] = True  # deleted, still in the Recycle Bin: queryAll returns it
    assert read_watermark(lake) is None

    out = extract_tasks(client_for(fake), replace(SF, bulk_threshold=12), lake, until=T0)

    assert (out.kind, out.mode) == ("full", "rest_queryAll")
    assert set(lake_versions(lake)) == org_versions(fake.state.records)
    data_queries = [q for q in fake.state.soql_seen if "COUNT()" not in q]
    assert data_queries and all(">=" not in q for q in data_queries), "a full load has no lower bound"
    assert any(q.startswith("SELECT COUNT() FROM Task") for q in fake.state.soql_seen)
    assert not any("/jobs/query" in path for _, path in fake.state.requests), "12 Tasks must not start a Bulk job"
    assert read_watermark(lake).at == T0 - timedelta(days=3 * 365) + timedelta(days=11 * 11, minutes=11)


def test_first_run_without_a_watermark_uses_bulk_api_above_the_threshold_counting_deleted_tasks(fake, tmp_path):
    lake = tmp_path / "lake"
    fake.state.records = history(12)
    fake.state.records[2]["IsDeleted"] = True  # the 12th Task by queryAll's count; query would say 11

    out = extract_tasks(client_for(fake), replace(SF, bulk_threshold=11), lake, until=T0, poll_seconds=0.01)

    assert (out.kind, out.mode) == ("full", "bulk2_queryAll")
    assert set(lake_versions(lake)) == org_versions(fake.state.records)
    jobs = list(fake.state.bulk_jobs.values())
    assert [j["operation"] for j in jobs] == ["queryAll"]
    assert any("/queryAll/" in path and "COUNT" in path for _, path in fake.state.requests), \
        "the size must be counted through queryAll"


def test_lost_watermark_falls_back_to_a_full_load(fake, tmp_path):
    lake = tmp_path / "lake"
    fake.state.records = history(5)
    extract_tasks(client_for(fake), SF, lake, until=T0)
    for manifest in (lake / API_DATASET).glob("*/_manifest.json"):
        manifest.unlink()
    assert read_watermark(lake) is None
    # A Task the lake never had, changed long before any overlap window: only a full load finds it.
    fake.state.records.append(task(77, T0 - timedelta(days=200)))

    out = extract_tasks(client_for(fake), SF, lake, until=T0 + timedelta(hours=1))

    assert out.kind == "full"
    assert set(lake_versions(lake)) == org_versions(fake.state.records)
    versions = lake_versions(lake)
    assert len(versions) == len(set(versions)), "the full load wrote versions the lake already had"
    assert read_watermark(lake).at == T0 - timedelta(days=200), "the full load restores the watermark"


def test_a_partition_whose_parquet_file_is_gone_does_not_hold_the_watermark(fake, tmp_path):
    lake = tmp_path / "lake"
    fake.state.records = history(3)
    extract_tasks(client_for(fake), SF, lake, until=T0)
    fake.state.records.append(task(9, T0 + timedelta(minutes=5)))
    second = extract_tasks(client_for(fake), SF, lake, until=T0 + timedelta(hours=1))
    assert read_watermark(lake).at == T0 + timedelta(minutes=5)
    (second.partition / "tasks.parquet").unlink()
    assert read_watermark(lake).at == T0 - timedelta(days=3 * 365) + timedelta(days=22, minutes=2)


def test_full_load_parameter_reads_everything_again_whatever_the_watermark(fake, tmp_path):
    lake = tmp_path / "lake"
    fake.state.records = history(4)
    extract_tasks(client_for(fake), SF, lake, until=T0)
    fake.state.records.append(task(88, T0 - timedelta(days=30)))  # behind the watermark
    fake.state.soql_seen.clear()

    out = extract_tasks(client_for(fake), SF, lake, until=T0 + timedelta(hours=1), full_load=True)

    assert out.kind == "full" and out.result.rows_valid == 1 and out.result.duplicates_in_lake == 4
    assert set(lake_versions(lake)) == org_versions(fake.state.records)
    manifest = json.loads((out.partition / "_manifest.json").read_text())
    assert manifest["kind"] == "full" and manifest["watermark_before"] is None


def test_an_incremental_window_above_the_threshold_goes_through_bulk_api(fake, tmp_path):
    """After a long outage the changes since the watermark are many: one Bulk queryAll job for them."""
    lake = tmp_path / "lake"
    fake.state.records = history(3)
    extract_tasks(client_for(fake), SF, lake, until=T0)
    fake.state.records += [task(100 + i, T0 + timedelta(hours=i)) for i in range(8)]

    out = extract_tasks(client_for(fake), replace(SF, bulk_threshold=5), lake, until=T0 + timedelta(days=1),
                        poll_seconds=0.01)

    assert (out.kind, out.mode, out.result.rows_valid) == ("incremental", "bulk2_queryAll", 8)
    assert set(lake_versions(lake)) == org_versions(fake.state.records)
    assert "SystemModstamp >= " in out.soql and "ORDER BY" not in out.soql
