"""Deletes beyond the Recycle Bin: the reconciliation marks them in the lake, and through dbt
staging their touchpoints disappear (fake Salesforce over HTTPS, real lake, real dbt on DuckDB)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from calltrail import settings as settings_module
from calltrail.salesforce.extract import extract_tasks
from calltrail.salesforce.files import ingest_task_files
from calltrail.salesforce.reconcile import RECONCILIATION_DATASET, ReconciliationRefused, reconcile_tasks
from calltrail.salesforce.watermark import read_watermark
from calltrail.transform.dbt import run_dbt
from calltrail.web.ingest import ingest_web_events
from tests.airflow_env import calltrail_env
from tests.salesforce.lake_versions import fingerprint, lake_versions, serving
from tests.salesforce.test_extract import SF, client_for, task

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=40)  # the weekly run, long after the Recycle Bin let go of the delete


def tid(n: int) -> str:
    return f"00T5e00000ABC{n:03d}AAA"


@pytest.fixture
def fake(tmp_path, monkeypatch):
    with serving(tmp_path, monkeypatch) as server:
        yield server


def loaded(fake, lake, count: int = 6) -> None:
    fake.state.records = [task(i, T0 - timedelta(days=10) + timedelta(hours=i)) for i in range(count)]
    extract_tasks(client_for(fake), SF, lake, until=T0)


def latest(lake) -> dict[str, tuple[datetime, bool]]:
    out: dict[str, tuple[datetime, bool]] = {}
    for task_id, modstamp, deleted in lake_versions(lake):
        if task_id not in out or (modstamp, deleted) > out[task_id]:
            out[task_id] = (modstamp, deleted)
    return out


def test_a_task_deleted_beyond_the_recycle_bin_gets_a_tombstone_marked_as_from_reconciliation(fake, tmp_path):
    lake = tmp_path / "lake"
    loaded(fake, lake)
    last_version = latest(lake)[tid(2)][0]
    fake.state.hard_delete(tid(2))

    out = reconcile_tasks(client_for(fake), SF, lake, now=NOW)

    assert (out.salesforce_ids, out.live_tasks_checked, out.tombstones) == (5, 6, 1)
    assert out.partition.parent == lake / RECONCILIATION_DATASET
    con = duckdb.connect()
    rows = con.execute(f"select Id, IsDeleted, SystemModstamp, _deleted_by, Subject, CreatedDate "
                       f"from read_parquet('{out.partition}/tasks.parquet')").fetchall()
    assert len(rows) == 1
    task_id, deleted, modstamp, marker, subject, created = rows[0]
    assert (task_id, deleted, marker, subject) == (tid(2), True, "reconciliation", "Call 2")
    assert modstamp == last_version + timedelta(milliseconds=1), "the tombstone must be the latest version"
    assert created is not None, "a tombstone keeps the Task's fields, so it passes the lake contract"
    assert {k: v[1] for k, v in latest(lake).items()} == {tid(i): i == 2 for i in range(6)}
    manifest = json.loads((out.partition / "_manifest.json").read_text())
    assert manifest["kind"] == "reconciliation" and manifest["tombstones"] == 1


def test_reconciliation_run_twice_writes_nothing_the_second_time(fake, tmp_path):
    lake = tmp_path / "lake"
    loaded(fake, lake)
    fake.state.hard_delete(tid(4))
    reconcile_tasks(client_for(fake), SF, lake, now=NOW)
    before = fingerprint(lake)

    again = reconcile_tasks(client_for(fake), SF, lake, now=NOW + timedelta(days=7))

    assert again.tombstones == 0 and again.partition is None
    assert fingerprint(lake) == before


def test_tombstones_do_not_move_the_extraction_watermark(fake, tmp_path):
    lake = tmp_path / "lake"
    loaded(fake, lake)
    mark = read_watermark(lake)
    fake.state.hard_delete(tid(5))  # the Task that holds the watermark
    reconcile_tasks(client_for(fake), SF, lake, now=NOW)
    assert read_watermark(lake) == mark


def test_tasks_in_the_recycle_bin_and_tasks_changed_after_the_listing_began_are_left_alone(fake, tmp_path):
    lake = tmp_path / "lake"
    loaded(fake, lake)
    fake.state.records[1]["IsDeleted"] = True  # in the Recycle Bin: queryAll still lists it
    # A Task created 20 s before the listing starts and stored by the hourly extraction, but absent
    # from the listing (as when the listing began before the Task was committed): too fresh to judge.
    fake.state.records.append(task(30, NOW - timedelta(seconds=20)))
    extract_tasks(client_for(fake), SF, lake, until=NOW)
    fake.state.hard_delete(tid(30))

    out = reconcile_tasks(client_for(fake), SF, lake, now=NOW)

    assert out.tombstones == 0, "neither a Recycle Bin Task nor one changed within the overlap is marked"


def test_tasks_known_only_from_landing_files_are_left_alone(fake, tmp_path):
    lake, landing = tmp_path / "lake", tmp_path / "landing"
    loaded(fake, lake)
    landing.mkdir()
    (landing / "export.jsonl").write_text(json.dumps(task(60, T0 - timedelta(days=3))) + "\n")
    ingest_task_files(landing, lake, SF)

    out = reconcile_tasks(client_for(fake), SF, lake, now=NOW)

    assert out.tombstones == 0 and latest(lake)[tid(60)][1] is False


def test_reconciliation_lists_ids_through_bulk_api_above_the_threshold(fake, tmp_path):
    lake = tmp_path / "lake"
    loaded(fake, lake, count=8)
    fake.state.hard_delete(tid(7))

    out = reconcile_tasks(client_for(fake), replace(SF, bulk_threshold=5), lake, now=NOW, poll_seconds=0.01)

    assert out.mode == "bulk2_queryAll" and out.tombstones == 1
    assert [j["operation"] for j in fake.state.bulk_jobs.values()] == ["queryAll"]
    assert any(q == "SELECT Id FROM Task" for q in fake.state.soql_seen)


def test_reconciliation_refuses_to_mark_most_of_the_lake_deleted_and_writes_nothing(fake, tmp_path):
    lake = tmp_path / "lake"
    loaded(fake, lake)
    before = fingerprint(lake)
    for i in range(4):  # 4 of 6: what a user who lost "View All Data" would see
        fake.state.hard_delete(tid(i))

    with pytest.raises(ReconciliationRefused, match="CALLTRAIL_SF_RECONCILE_MAX_DELETE_SHARE=0.5") as err:
        reconcile_tasks(client_for(fake), SF, lake, now=NOW)

    assert "4 of the lake's 6 live Task records" in str(err.value) and "nothing was written" in str(err.value)
    assert fingerprint(lake) == before
    out = reconcile_tasks(client_for(fake), replace(SF, reconcile_max_delete_share=1.0), lake, now=NOW)
    assert out.tombstones == 4


V1, V2 = "1" * 32, "2" * 32
SITE = "https://www.acme.example"


# the models up to the touchpoints and their data tests; dbt's unit tests read no lake data (the first
# build of tests/transform/test_dbt_build.py runs them)
STAGING_BUILD = ["build", "--select", "+fct_touchpoints", "--indirect-selection", "cautious",
                 "--exclude-resource-type", "unit_test"]


def test_a_hard_deleted_tasks_touchpoint_disappears_through_dbt_staging(tmp_path, monkeypatch):
    settings = settings_module.load(calltrail_env(tmp_path))
    web = [
        {"event_id": "e1", "bizible_id": V1, "event_type": "page_view", "occurred_at": "2026-02-20T10:00:00Z",
         "page_url": f"{SITE}/?utm_source=google&utm_medium=cpc&gclid=a", "referrer_url": "https://www.google.com/",
         "form_url": None},
        {"event_id": "e2", "bizible_id": V2, "event_type": "page_view", "occurred_at": "2026-02-20T11:00:00Z",
         "page_url": f"{SITE}/?utm_source=bing&utm_medium=cpc&msclkid=b", "referrer_url": "https://www.bing.com/",
         "form_url": None},
    ]
    settings.web_landing_dir.mkdir(parents=True)
    (settings.web_landing_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in web))
    ingest_web_events(settings.web_landing_dir, settings.lake_dir)
    call_at = datetime(2026, 2, 20, 10, 10, tzinfo=UTC)
    with serving(tmp_path, monkeypatch) as fake:
        fake.state.records = [
            task(1, call_at, bizible2__BizibleId__c=V1),
            task(2, call_at + timedelta(hours=1), bizible2__BizibleId__c=V2),
        ] + [task(10 + i, call_at + timedelta(days=1, minutes=i), bizible2__BizibleId__c=None) for i in range(3)]
        extract_tasks(client_for(fake), SF, settings.lake_dir, until=T0)
        # an hour later the overlap reads Task 2's version again: it must not reach staging twice
        extract_tasks(client_for(fake), replace(SF, overlap_minutes=60 * 24 * 30), settings.lake_dir,
                      until=T0 + timedelta(hours=1))
        run_dbt(settings, STAGING_BUILD, in_process=True)
        assert touchpoint_tasks(settings) == [tid(1), tid(2)]

        fake.state.hard_delete(tid(1))
        out = reconcile_tasks(client_for(fake), SF, settings.lake_dir, now=NOW)
        assert out.tombstones == 1

    run_dbt(settings, STAGING_BUILD, in_process=True)
    assert touchpoint_tasks(settings) == [tid(2)], "the deleted Task's touchpoint is still there"
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        staged = con.execute("select task_id, count(*) from stg_salesforce__tasks group by 1 order by 1").fetchall()
        versions = con.execute("select count(*), count(distinct (task_id, system_modstamp)) "
                               "from stg_salesforce__task_versions").fetchone()
    finally:
        con.close()
    assert staged == [(tid(2), 1), (tid(10), 1), (tid(11), 1), (tid(12), 1)]
    assert versions[0] == versions[1] == 6, f"versions in staging (rows, distinct): {versions}"


def touchpoint_tasks(settings) -> list[str]:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return [r[0] for r in con.execute(
            "select task_id from fct_touchpoints where task_id is not null order by task_id").fetchall()]
    finally:
        con.close()


def test_the_reconciliation_settings_are_validated_with_the_variable_named():
    assert settings_module.load({"CALLTRAIL_SF_RECONCILE_SCHEDULE": "off"}).salesforce.reconcile_schedule is None
    assert settings_module.load({"CALLTRAIL_SF_RECONCILE_SCHEDULE": "@Daily"}).salesforce.reconcile_schedule == "@daily"
    with pytest.raises(settings_module.ConfigurationError, match="CALLTRAIL_SF_RECONCILE_SCHEDULE='every sunday'"):
        settings_module.load({"CALLTRAIL_SF_RECONCILE_SCHEDULE": "every sunday"})
    with pytest.raises(settings_module.ConfigurationError, match="CALLTRAIL_SF_RECONCILE_MAX_DELETE_SHARE"):
        settings_module.load({"CALLTRAIL_SF_RECONCILE_MAX_DELETE_SHARE": "5"})
    with pytest.raises(settings_module.ConfigurationError, match="CALLTRAIL_SF_BULK_THRESHOLD"):
        settings_module.load({"CALLTRAIL_SF_BULK_THRESHOLD": "-1"})
