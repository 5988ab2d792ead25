"""Leads, Contacts, Opportunities and OpportunityContactRoles through the same machinery as Tasks:
the fake org over HTTPS (queryAll pages, Bulk API 2.0, describe), the lake in real Parquet."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from simple_salesforce import Salesforce

from calltrail.airflow.assets import SALESFORCE_OBJECTS
from calltrail.salesforce.client import FieldNotReadable, ResilientSalesforce
from calltrail.salesforce.extract import extract_object
from calltrail.salesforce.files import ingest_object_files
from calltrail.salesforce.objects import (
    BEYOND_TASK,
    CONTACT,
    LEAD,
    OPPORTUNITY,
    OPPORTUNITY_CONTACT_ROLE,
    SalesforceObject,
)
from calltrail.salesforce.reconcile import reconcile_object
from calltrail.salesforce.watermark import read_watermark
from calltrail.settings import SalesforceSettings
from tests.fakes.salesforce import FakeSalesforceServer
from tests.salesforce.lake_versions import serving

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "dbt_project" / "models" / "staging" / "_salesforce__sources.yml"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SF = SalesforceSettings(overlap_minutes=15, max_attempts=3, backoff_seconds=0.01, bulk_page_size=2)


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def lead(n: int, at: datetime) -> dict[str, Any]:
    converted = n % 2 == 1
    return {"Id": f"00Q5e00000LEA{n:03d}AAA", "FirstName": "Ada", "LastName": f"Lead {n}", "Company": "Acme",
            "Email": f"Lead{n}@Example.com", "CreatedDate": stamp(at - timedelta(days=3)), "IsConverted": converted,
            "ConvertedContactId": f"0035e00000CON{n:03d}AAA" if converted else None, "ConvertedAccountId": None,
            "ConvertedDate": "2026-02-28" if converted else None, "LastModifiedDate": stamp(at),
            "SystemModstamp": stamp(at), "IsDeleted": False}


def contact(n: int, at: datetime) -> dict[str, Any]:
    return {"Id": f"0035e00000CON{n:03d}AAA", "FirstName": "Grace", "LastName": f"Contact {n}",
            "Email": f"contact{n}@example.com", "AccountId": "0015e00000ACC001AAA",
            "CreatedDate": stamp(at - timedelta(days=2)), "LastModifiedDate": stamp(at), "SystemModstamp": stamp(at),
            "IsDeleted": False}


def opportunity(n: int, at: datetime) -> dict[str, Any]:
    return {"Id": f"0065e00000OPP{n:03d}AAA", "Name": f"Deal {n}", "AccountId": "0015e00000ACC001AAA",
            "Amount": 1000 * n + 0.5, "CurrencyIsoCode": "EUR", "StageName": "Closed Won" if n == 1 else "Prospecting",
            "CreatedDate": stamp(at - timedelta(days=5)), "CloseDate": "2026-03-31", "IsClosed": n == 1,
            "IsWon": n == 1, "LastModifiedDate": stamp(at), "SystemModstamp": stamp(at), "IsDeleted": False}


def contact_role(n: int, at: datetime) -> dict[str, Any]:
    return {"Id": f"00K5e00000OCR{n:03d}AAA", "OpportunityId": "0065e00000OPP001AAA",
            "ContactId": f"0035e00000CON{n:03d}AAA", "Role": "Decision Maker" if n == 0 else None,
            "IsPrimary": n == 0, "CreatedDate": stamp(at), "LastModifiedDate": stamp(at),
            "SystemModstamp": stamp(at), "IsDeleted": False}


BUILD: dict[str, Callable[[int, datetime], dict[str, Any]]] = {
    "Lead": lead, "Contact": contact, "Opportunity": opportunity, "OpportunityContactRole": contact_role}
# One bad value per object and the reason the quarantine must give for it.
BAD: dict[str, tuple[dict[str, Any], str]] = {
    "Lead": ({"ConvertedDate": "28/02/2026"}, "invalid_date:ConvertedDate"),
    "Contact": ({"CreatedDate": "2026-02-27T09:00:00"}, "timestamp_without_offset:CreatedDate"),
    "Opportunity": ({"Amount": "a lot"}, "invalid_decimal:Amount"),
    "OpportunityContactRole": ({"IsPrimary": "maybe"}, "invalid_boolean:IsPrimary"),
}
OBJECTS = pytest.mark.parametrize("obj", BEYOND_TASK, ids=lambda o: o.name)


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with serving(tmp_path, monkeypatch) as server:
        yield server


def client_for(server: FakeSalesforceServer) -> ResilientSalesforce:
    return ResilientSalesforce(lambda: Salesforce(instance_url=server.instance_url, session_id="token-1"),
                               max_attempts=SF.max_attempts, backoff_seconds=SF.backoff_seconds)


def rows(files: list[Path]) -> list[dict[str, Any]]:
    con = duckdb.connect()
    listed = ", ".join(f"'{f}'" for f in files)
    cur = con.execute(f"select * from read_parquet([{listed}], union_by_name = true, hive_partitioning = false) order by Id, SystemModstamp")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def declared_columns(obj: SalesforceObject) -> list[tuple[str, str]]:
    """The lake columns of ``obj`` as dbt's sources declare them: (name, type)."""
    tables = yaml.safe_load(SOURCES.read_text())["sources"][0]["tables"]
    [table] = [t for t in tables if t["name"] == obj.dataset.name]
    return [(c["name"], c["data_type"].upper()) for c in table["columns"]]


def lake_columns(parquet: Path) -> list[tuple[str, str]]:
    con = duckdb.connect()
    return [(r[0], r[1]) for r in con.execute(f"describe select * from read_parquet('{parquet}', hive_partitioning = false)").fetchall()]


def quarantined(lake: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for f in sorted((lake / "quarantine").rglob("*.jsonl")) for line in f.read_text().splitlines()]


@OBJECTS
def test_each_object_round_trips_with_pages_its_own_watermark_a_delete_and_a_quarantined_row(fake, tmp_path, obj):
    lake = tmp_path / "lake"
    records = fake.state.records_of(obj.name)
    records += [BUILD[obj.name](i, START + timedelta(minutes=i)) for i in range(5)]
    records[3]["IsDeleted"] = True
    bad_values, reason = BAD[obj.name]
    records[4].update(bad_values)

    first = extract_object(client_for(fake), SF, lake, obj, until=START + timedelta(minutes=10))
    assert (first.kind, first.mode, first.pages) == ("full", "rest_queryAll", 2), first.as_dict()
    ids = [r["Id"] for r in records]
    stored = rows([first.partition / obj.dataset.file])
    assert [r["Id"] for r in stored] == ids[:4], f"expected the four valid records, saw {stored}"
    assert [r["IsDeleted"] for r in stored] == [False, False, False, True], stored
    [bad] = quarantined(lake)
    assert (bad["reason"], json.loads(bad["record"])["Id"]) == (reason, ids[4]), bad
    mark = read_watermark(lake, obj.dataset)
    assert mark is not None and mark.at == START + timedelta(minutes=4), \
        f"the watermark is the highest SystemModstamp stored, the quarantined row's included; saw {mark}"
    assert read_watermark(lake) is None, "another object's extraction must not give Task a watermark"

    records[1].update(SystemModstamp=stamp(START + timedelta(minutes=30)))  # an edit in Salesforce
    records.append(BUILD[obj.name](5, START + timedelta(minutes=31)))
    fake.state.soql_seen.clear()
    second = extract_object(client_for(fake), SF, lake, obj, until=START + timedelta(hours=1))
    assert second.kind == "incremental", second.as_dict()
    window = f"FROM {obj.name} WHERE SystemModstamp >= 2026-03-01T08:49:00Z AND SystemModstamp < 2026-03-01T10:00:00Z"
    assert any(window in q for q in fake.state.soql_seen), f"expected the window {window!r}, saw {fake.state.soql_seen}"
    assert [(r["Id"], r["SystemModstamp"]) for r in rows([second.partition / obj.dataset.file])] == [
        (ids[1], datetime(2026, 3, 1, 9, 30)), (records[5]["Id"], datetime(2026, 3, 1, 9, 31))], \
        "only the new versions are written; the overlap's repeats are already in the lake"
    every = rows(obj.dataset.files(lake))
    assert [r["SystemModstamp"] for r in every if r["Id"] == ids[1]] == [
        datetime(2026, 3, 1, 9, 1), datetime(2026, 3, 1, 9, 30)], "every version of a record is kept"


@OBJECTS
def test_lake_columns_are_exactly_those_the_dbt_sources_declare(fake, tmp_path, obj):
    fake.state.records_of(obj.name).append(BUILD[obj.name](1, START))
    out = extract_object(client_for(fake), SF, tmp_path / "lake", obj, until=START + timedelta(hours=1))
    assert lake_columns(out.partition / obj.dataset.file) == declared_columns(obj)


def test_values_are_typed_amount_decimal_dates_booleans_and_times_in_utc(fake, tmp_path):
    fake.state.records_of("Opportunity").append(
        {**opportunity(1, START), "CreatedDate": "2026-02-24T10:00:00.000+0100", "Amount": 1234.5})
    fake.state.records_of("Lead").append(lead(1, START))
    lake = tmp_path / "lake"
    opp = extract_object(client_for(fake), SF, lake, OPPORTUNITY, until=START + timedelta(hours=1))
    [row] = rows([opp.partition / OPPORTUNITY.dataset.file])
    assert (row["Amount"], row["CurrencyIsoCode"], row["CreatedDate"], row["CloseDate"], row["IsWon"]) == (
        Decimal("1234.50"), "EUR", datetime(2026, 2, 24, 9, 0), date(2026, 3, 31), True), row
    led = extract_object(client_for(fake), SF, lake, LEAD, until=START + timedelta(hours=1))
    [row] = rows([led.partition / LEAD.dataset.file])
    assert (row["Email"], row["IsConverted"], row["ConvertedDate"]) == (
        "Lead1@Example.com", True, date(2026, 2, 28)), "values are stored as Salesforce sent them, typed"


def test_bulk_api_2_reads_every_opportunity_result_page_including_deleted(fake, tmp_path):
    records = fake.state.records_of("Opportunity")
    records += [opportunity(i, START + timedelta(minutes=i)) for i in range(1, 6)]
    records[2]["IsDeleted"] = True
    out = extract_object(client_for(fake), replace(SF, bulk_threshold=4), tmp_path / "lake", OPPORTUNITY,
                         until=START + timedelta(hours=1), poll_seconds=0.01)
    assert (out.mode, out.pages, out.records) == ("bulk2_queryAll", 3, 5), out.as_dict()
    stored = rows([out.partition / OPPORTUNITY.dataset.file])
    assert [(r["Amount"], r["IsDeleted"], r["IsClosed"]) for r in stored] == [
        (Decimal("1000.50"), False, True), (Decimal("2000.50"), False, False), (Decimal("3000.50"), True, False),
        (Decimal("4000.50"), False, False), (Decimal("5000.50"), False, False)], stored
    assert [j["object"] for j in fake.state.bulk_jobs.values()] == ["Opportunity"], fake.state.bulk_jobs
    results = [p for _, p in fake.state.requests if p.split("?")[0].endswith("/results")]
    assert len(results) == 3, f"three result pages of two records at most, saw {results}"


def test_a_single_currency_org_is_never_asked_for_currency_iso_code_and_the_column_is_null(fake, tmp_path):
    fake.state.multi_currency = False
    record = opportunity(1, START)
    del record["CurrencyIsoCode"]
    fake.state.records_of("Opportunity").append(record)
    out = extract_object(client_for(fake), SF, tmp_path / "lake", OPPORTUNITY, until=START + timedelta(hours=1))
    assert all("currencyisocode" not in q.lower() for q in fake.state.soql_seen), fake.state.soql_seen
    [row] = rows([out.partition / OPPORTUNITY.dataset.file])
    assert row["CurrencyIsoCode"] is None and row["Amount"] == Decimal("1000.50"), row
    assert lake_columns(out.partition / OPPORTUNITY.dataset.file) == declared_columns(OPPORTUNITY)
    manifest = json.loads((out.partition / "_manifest.json").read_text())
    assert manifest["fields_absent_in_org"] == ["CurrencyIsoCode"], manifest


def test_a_multi_currency_org_is_asked_for_currency_iso_code(fake, tmp_path):
    fake.state.records_of("Opportunity").append(opportunity(2, START))
    extract_object(client_for(fake), SF, tmp_path / "lake", OPPORTUNITY, until=START + timedelta(hours=1))
    queries = [q for q in fake.state.soql_seen if "COUNT()" not in q]
    assert queries and all("CurrencyIsoCode" in q for q in queries), queries


def test_a_server_error_on_an_object_query_is_retried_and_the_extraction_completes(fake, tmp_path):
    fake.state.records_of("Contact").append(contact(1, START))
    fake.state.fail("queryAll", 500, "UNKNOWN_EXCEPTION", "An unexpected error occurred", times=2)
    client = client_for(fake)
    out = extract_object(client, SF, tmp_path / "lake", CONTACT, until=START + timedelta(hours=1))
    assert (out.records, client.retries) == (1, 2), (out.as_dict(), client.retries)


def test_an_unreadable_field_of_an_object_names_the_object_and_the_field(fake, tmp_path, monkeypatch):
    import tests.fakes.salesforce as fake_module

    monkeypatch.setitem(fake_module.SCHEMA, "Contact", tuple(f for f in fake_module.SCHEMA["Contact"] if f != "Email"))
    with pytest.raises(FieldNotReadable, match="field Email is not readable on Contact"):
        extract_object(client_for(fake), SF, tmp_path / "lake", CONTACT, until=START + timedelta(hours=1))
    assert not (tmp_path / "lake" / CONTACT.dataset.name).exists(), "a failed extraction writes nothing"


def test_reconciliation_marks_a_contact_deleted_beyond_the_recycle_bin(fake, tmp_path):
    lake = tmp_path / "lake"
    records = fake.state.records_of("Contact")
    records += [contact(i, START + timedelta(minutes=i)) for i in range(4)]
    extract_object(client_for(fake), SF, lake, CONTACT, until=START + timedelta(hours=1))
    fake.state.hard_delete(records[2]["Id"], "Contact")
    out = reconcile_object(client_for(fake), SF, lake, CONTACT, now=START + timedelta(days=30))
    assert out.tombstones == 1 and out.partition is not None, out.as_dict()
    [tomb] = rows([out.partition / CONTACT.dataset.file])
    assert (tomb["Id"], tomb["IsDeleted"], tomb["_deleted_by"]) == ("0035e00000CON002AAA", True, "reconciliation")
    assert out.partition.parent.name == "source=reconciliation" and out.partition.parent.parent.name == \
        "salesforce_contact"


def test_every_object_has_an_airflow_asset_named_after_its_dataset():
    assert {f: a.name for f, a in SALESFORCE_OBJECTS.items()} == {
        o.folder: f"calltrail_lake_{o.dataset.name}" for o in BEYOND_TASK}


# --- landing files -------------------------------------------------------------------------------


@OBJECTS
def test_rest_json_lines_of_each_object_load_typed_with_every_column(tmp_path, obj):
    landing = tmp_path / "landing" / "salesforce" / obj.folder
    landing.mkdir(parents=True)
    record = {"attributes": {"type": obj.name, "url": f"/services/data/v59.0/sobjects/{obj.name}/x"},
              **BUILD[obj.name](1, START)}
    bad = {**BUILD[obj.name](2, START), **BAD[obj.name][0]}
    (landing / f"{obj.folder}.jsonl").write_text(json.dumps(record) + "\n" + json.dumps(bad) + "\n")
    report = ingest_object_files(landing, tmp_path / "lake", obj)
    [row] = rows(obj.dataset.files(tmp_path / "lake"))
    assert (row["Id"], row["SystemModstamp"], row["IsDeleted"]) == (record["Id"], datetime(2026, 3, 1, 9, 0), False)
    assert report.files[0]["rows_quarantined"] == 1
    assert [q["reason"] for q in quarantined(tmp_path / "lake")] == [BAD[obj.name][1]]
    partition = obj.dataset.files(tmp_path / "lake")[0]
    assert partition.parent.parent.name == "source=file", partition
    assert lake_columns(partition) == declared_columns(obj)


@OBJECTS
def test_data_loader_csv_of_each_object_with_upper_case_headers_loads_with_every_column(tmp_path, obj):
    landing = tmp_path / "landing"
    landing.mkdir()
    record = BUILD[obj.name](1, START)
    record.pop("CurrencyIsoCode", None)  # an export from a single-currency org
    headers = [k for k in record if record[k] is not None]
    lines = [",".join(f'"{h.upper()}"' for h in headers),
             ",".join(f'"{str(record[h]).lower() if isinstance(record[h], bool) else record[h]}"' for h in headers)]
    (landing / "export.csv").write_text("\n".join(lines) + "\n")
    ingest_object_files(landing, tmp_path / "lake", obj)
    [row] = rows(obj.dataset.files(tmp_path / "lake"))
    assert (row["Id"], row["SystemModstamp"]) == (record["Id"], datetime(2026, 3, 1, 9, 0)), row
    partition = obj.dataset.files(tmp_path / "lake")[0]
    assert lake_columns(partition) == declared_columns(obj)
    if obj is OPPORTUNITY:
        assert (row["CurrencyIsoCode"], row["Amount"]) == (None, Decimal("1000.50")), row


def test_the_ingestion_task_reads_each_objects_landing_folder_and_alerts_on_its_quarantine(tmp_path):
    from calltrail import settings as settings_module
    from calltrail.airflow.run_context import RunInfo
    from calltrail.tasks import ingest
    from tests.airflow_env import WRITTEN_WHOLE, calltrail_env

    s = settings_module.load(calltrail_env(tmp_path, CALLTRAIL_QUARANTINE_ALERT_ROWS="0", **WRITTEN_WHOLE))
    folder = s.landing_dir / "salesforce" / "opportunity_contact_role"
    folder.mkdir(parents=True)
    (folder / "roles.jsonl").write_text(json.dumps(contact_role(0, START)) + "\n"
                                        + json.dumps({**contact_role(1, START), "IsPrimary": "maybe"}) + "\n")
    result = ingest.ingest_salesforce_files(s, "OpportunityContactRole",
                                            alert_run=RunInfo("calltrail_ingest_salesforce", "manual__o", "x"))
    assert (result["files"][0]["rows_valid"], result["files"][0]["rows_quarantined"]) == (1, 1), result
    [row] = rows(sorted((s.lake_dir / "salesforce_opportunity_contact_role" / "source=file").glob(
        "*/opportunity_contact_roles.parquet")))
    assert (row["Id"], row["Role"], row["IsPrimary"]) == ("00K5e00000OCR000AAA", "Decision Maker", True), row
    alerts = [json.loads(line) for line in s.alerts_file.read_text().splitlines()]
    assert [a["check"] for a in alerts] == ["quarantined_rows_salesforce_opportunity_contact_role_file"], alerts


def test_an_object_the_org_holds_no_record_of_writes_nothing_and_sets_no_watermark(fake, tmp_path):
    out = extract_object(client_for(fake), SF, tmp_path / "lake", OPPORTUNITY, until=START)
    assert (out.records, out.partition, out.watermark) == (0, None, None), out.as_dict()
    assert not list((tmp_path / "lake").glob("salesforce_opportunity/*/*")), "no partition for an empty org"


@pytest.mark.parametrize(("obj", "field"), [(OPPORTUNITY, "CloseDate"), (OPPORTUNITY_CONTACT_ROLE, "OpportunityId"),
                                            (OPPORTUNITY_CONTACT_ROLE, "ContactId")],
                         ids=lambda v: getattr(v, "name", v))
def test_a_record_without_a_field_salesforce_requires_is_quarantined_and_the_others_load(tmp_path, obj, field):
    """Salesforce requires these fields: a record without one (from a file written by another tool)
    would silently lose its cut-off or its people, so it waits in quarantine with the reason."""
    landing = tmp_path / "landing"
    landing.mkdir()
    good, bad = BUILD[obj.name](1, START), {**BUILD[obj.name](2, START), field: None}
    (landing / "export.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    report = ingest_object_files(landing, tmp_path / "lake", obj)
    assert [r["Id"] for r in rows(obj.dataset.files(tmp_path / "lake"))] == [good["Id"]]
    assert report.files[0]["rows_quarantined"] == 1
    assert [q["reason"] for q in quarantined(tmp_path / "lake")] == [f"missing_{field}"]
