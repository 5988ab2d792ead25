"""Task files from the landing folder: REST JSON lines and Data Loader CSV."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb

from calltrail.salesforce.files import ingest_task_files
from calltrail.settings import SalesforceSettings

SF = SalesforceSettings()


def rows(lake_dir):
    con = duckdb.connect()
    cur = con.execute(
        f"select * from read_parquet('{lake_dir}/salesforce_task/source=file/*/tasks.parquet') order by Id, SystemModstamp")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def test_rest_json_lines_with_attributes_load_typed_in_utc(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    record = {"attributes": {"type": "Task", "url": "/services/data/v59.0/sobjects/Task/00T1"},
              "Id": "00T000000000001AAA", "Type": "Call", "IsDeleted": False, "CallDurationInSeconds": 42,
              "CreatedDate": "2026-03-01T09:10:00.000+0000", "SystemModstamp": "2026-03-01T10:10:00.000+0100",
              "bizible2__BizibleId__c": "7059e81415f34f7bbaf40fe32fdcba21", "ActivityDate": "2026-03-01"}
    (landing / "tasks.jsonl").write_text(json.dumps(record) + "\n" + json.dumps({**record, "attributes": None}) + "\n")
    report = ingest_task_files(landing, tmp_path / "lake", SF)
    [row] = rows(tmp_path / "lake")
    assert row["SystemModstamp"] == datetime(2026, 3, 1, 9, 10)
    assert row["IsDeleted"] is False and row["CallDurationInSeconds"] == 42
    assert report.files[0]["duplicates_in_file"] == 1


def test_data_loader_csv_with_upper_case_headers(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "extract.csv").write_text(
        '"ID","TYPE","SUBJECT","ISDELETED","CREATEDDATE","SYSTEMMODSTAMP","BIZIBLE2__BIZIBLEID__C"\n'
        '"00T000000000001AAA","","Call, inbound","true","2026-03-01T09:10:00.000Z","2026-03-01T09:10:00.000Z",""\n'
    )
    ingest_task_files(landing, tmp_path / "lake", SF)
    [row] = rows(tmp_path / "lake")
    assert (row["Id"], row["Type"], row["Subject"], row["IsDeleted"]) == ("00T000000000001AAA", None, "Call, inbound", True)
    assert row["bizible2__BizibleId__c"] is None, "a Task without BizibleId is loaded, not quarantined"


def test_task_rows_without_id_or_with_naive_timestamps_are_quarantined(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    good = {"Id": "00T000000000001AAA", "CreatedDate": "2026-03-01T09:10:00Z", "SystemModstamp": "2026-03-01T09:10:00Z"}
    lines = [good, {**good, "Id": None}, {**good, "Id": "00T000000000002AAA", "CreatedDate": "2026-03-01T09:10:00"},
             {**good, "Id": "00T000000000003AAA", "bizible2__Bizible_Touchpoint_Date__c": "2026-03-01 09:10"},
             {**good, "Id": "00T000000000004AAA", "IsDeleted": "maybe"}]
    (landing / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    ingest_task_files(landing, tmp_path / "lake", SF)
    assert [r["Id"] for r in rows(tmp_path / "lake")] == ["00T000000000001AAA"]
    q = [json.loads(x) for f in (tmp_path / "lake" / "quarantine").rglob("*.jsonl") for x in f.read_text().splitlines()]
    assert [r["reason"] for r in q] == [
        "missing_Id",
        "timestamp_without_offset:CreatedDate",
        "timestamp_without_offset:bizible2__Bizible_Touchpoint_Date__c",
        "invalid_boolean:IsDeleted",
    ]
