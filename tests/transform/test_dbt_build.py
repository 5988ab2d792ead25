"""`dbt build` (seeds, models, unit tests, data tests) on a small lake made by the real ingestion."""

from __future__ import annotations

import json

import duckdb
import pytest

from calltrail import settings as settings_module
from calltrail.salesforce.files import ingest_task_files
from calltrail.transform.dbt import run_dbt
from calltrail.web.ingest import ingest_web_events
from tests.airflow_env import calltrail_env

V1, V2, V3 = "11111111111111111111111111111111", "22222222222222222222222222222222", "33333333333333333333333333333333"
SITE = "https://www.acme.example"


def event(n: int, bid: str, at: str, url: str, referrer: str | None = None, kind: str = "page_view",
          email: str | None = None) -> dict:
    return {"event_id": f"e{n}", "bizible_id": bid, "event_type": kind, "occurred_at": at, "page_url": url,
            "referrer_url": referrer, "form_url": url if kind == "form_submit" else None, "email": email}


def task(task_id: str, bid: str | None, at: str, task_type: str | None = "Call", subtype: str = "Call",
         who: str | None = None) -> dict:
    return {"attributes": {"type": "Task"}, "Id": task_id, "Type": task_type, "TaskSubtype": subtype,
            "Subject": f"Subject of {task_id}", "CreatedDate": at, "SystemModstamp": at, "IsDeleted": False,
            "bizible2__BizibleId__c": bid, "bizible2__Bizible_Touchpoint_Date__c": at, "WhoId": who}


# The Salesforce objects beyond Task, written as the lake contract declares them
# (models/staging/_salesforce__sources.yml): the ingestion of these objects is not part of this test.
LAKE_OBJECTS = {
    "salesforce_contact": ("contacts.parquet", """
        select 'C1' as "Id", 'ann@acme.example' as "Email", 'A1' as "AccountId",
               timestamp '2026-01-05 09:00:00' as "CreatedDate"
    """),
    "salesforce_lead": ("leads.parquet", """
        select 'L1' as "Id", 'ann@acme.example' as "Email", timestamp '2026-01-01 09:00:00' as "CreatedDate",
               true as "IsConverted", 'C1' as "ConvertedContactId", date '2026-01-05' as "ConvertedDate"
    """),
    "salesforce_opportunity": ("opportunities.parquet", """
        select * from (values
            ('O1', 'Won in EUR', 'A1', 1000.00::decimal(18, 2), 'EUR', 'Closed Won',
             timestamp '2026-03-01 12:00:00', date '2026-03-02', true, true),
            ('O2', 'Open, nobody', 'A2', 500.00::decimal(18, 2), null, 'Prospecting',
             timestamp '2026-03-01 12:00:00', date '2026-04-30', false, false))
        as o("Id", "Name", "AccountId", "Amount", "CurrencyIsoCode", "StageName", "CreatedDate", "CloseDate",
             "IsClosed", "IsWon")"""),
    "salesforce_opportunity_contact_role": ("opportunity_contact_roles.parquet", """
        select 'R1' as "Id", 'O1' as "OpportunityId", 'C1' as "ContactId", 'Decision Maker' as "Role",
               true as "IsPrimary"
    """),
}


def write_lake_objects(lake_dir) -> None:
    con = duckdb.connect()
    for dataset, (file_name, rows) in LAKE_OBJECTS.items():
        folder = lake_dir / dataset / "source=file" / "file=test"
        folder.mkdir(parents=True)
        con.execute(f"""copy (select *, timestamp '2026-03-03 00:00:00' as "SystemModstamp", false as "IsDeleted",
                                     timestamp '2026-03-03 00:00:00' as "_loaded_at" from ({rows}))
                        to '{folder / file_name}' (format parquet)""")
    con.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dbt")
    settings = settings_module.load(calltrail_env(tmp))
    web = [
        # V1, the seed's example: a paid search visit that ends in a call, a form fill the next day.
        event(1, V1, "2026-03-01T11:00:00+01:00", f"{SITE}/?utm_source=google&utm_medium=cpc&utm_campaign=brand&gclid=abc",
              "https://www.google.com/"),
        event(2, V1, "2026-03-01T10:04:00Z", f"{SITE}/pricing", f"{SITE}/"),
        event(3, V1, "2026-03-02T09:00:00Z", f"{SITE}/contact?utm_source=newsletter&utm_medium=email"),
        event(4, V1, "2026-03-02T09:05:00Z", f"{SITE}/contact", f"{SITE}/contact", kind="form_submit",
              email=" Ann@Acme.Example "),
        # V2: clicked at 12:17, phoned at 13:05.
        event(5, V2, "2026-03-01T12:17:00Z", f"{SITE}/?utm_source=bing&utm_medium=cpc&msclkid=x1", "https://www.bing.com/"),
    ]
    landing = settings.web_landing_dir
    landing.mkdir(parents=True)
    (landing / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in web))
    # Task 1 is about Lead L1, since converted into Contact C1: V1 is C1 (and C1 is on the won O1).
    tasks = [task("00T000000000001AAA", V1.upper(), "2026-03-01T10:10:00.000+0000", who="L1"),
             task("00T000000000002AAA", V2, "2026-03-01T13:05:00.000+0000", task_type=" "),
             task("00T000000000003AAA", None, "2026-03-01T14:00:00.000+0000"),
             task("00T000000000004AAA", None, "2026-03-01T15:00:00.000+0000", task_type="Email", subtype="Email"),
             task("00T000000000005AAA", V3, "2026-03-01T16:00:00.000+0000")]
    settings.task_landing_dir.mkdir(parents=True)
    (settings.task_landing_dir / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks))
    ingest_web_events(settings.web_landing_dir, settings.lake_dir)
    ingest_task_files(settings.task_landing_dir, settings.lake_dir, settings.salesforce)
    write_lake_objects(settings.lake_dir)
    run_dbt(settings, ["build"], in_process=True)
    first = touchpoints(settings)
    # The rebuild: every model and data test again. The unit tests read no lake data and passed in
    # the first build; running them twice took about a third of this module's time.
    run_dbt(settings, ["build", "--exclude-resource-type", "unit_test"], in_process=True)
    return settings, first


def touchpoints(settings) -> list[dict]:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    cur = con.execute("select * from fct_touchpoints order by bizible_id, touchpoint_at")
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    con.close()
    return rows


def pick(rows, *keys):
    return [tuple(r[k] for k in keys) for r in rows]


def test_seed_example_and_the_48_minute_call_end_to_end_in_sql(built):
    settings, _ = built
    rows = touchpoints(settings)
    assert pick(rows, "bizible_id", "touchpoint_origin", "touchpoint_type", "medium", "marketing_channel",
                "marketing_subchannel", "touchpoint_source", "touchpoint_position") == [
        (V1, "task_in_session", "Call", "Call", "Paid Search", "Google", "google", "FT, LC"),
        (V1, "web_form", "Web Form", "email", "Email", None, "newsletter", "Post LC"),
        (V2, "web_visit", "Web Visit", "cpc", "Paid Search", "Bing", "bing", "FT"),
        (V2, "task_only", "Web Visit", None, "Other", None, "CRM Activity", "LC"),
        (V3, "task_only", "Call", "Call", "Other", None, "CRM Activity", "FT, LC"),
    ]
    call = rows[0]
    assert call["landing_page"] == f"{SITE}/?gclid=abc" and call["campaign"] == "brand"
    assert call["seconds_after_session_start"] == 600


def test_calls_missing_a_bizible_id_are_listed_but_emails_are_not(built):
    settings, _ = built
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    assert con.execute("select task_id, reason from dq_calls_missing_bizible_id").fetchall() == [
        ("00T000000000003AAA", "missing")]
    rates = con.execute("select calls, calls_matched_to_session, calls_task_only, calls_outside_window, "
                        "calls_without_session from rpt_call_match_rates").fetchone()
    con.close()
    assert rates == (4, 1, 2, 1, 1)


def test_rebuilding_gives_the_same_touchpoints_with_the_same_ids(built):
    settings, first = built
    assert touchpoints(settings) == first


def string_compressions(settings, table: str) -> set[str]:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    found = {r[0] for r in con.execute(
        f"select distinct compression from pragma_storage_info('{table}') where segment_type = 'VARCHAR'").fetchall()}
    con.close()
    return found


def test_only_the_models_with_the_hooks_write_plain_strings(built):
    # int_calls_matched_to_sessions and int_conversions set disabled_compression_methods before
    # they are written and reset it after; the models built after them compress strings again.
    settings, _ = built
    for table in ("int_calls_matched_to_sessions", "int_conversions"):
        assert not {"FSST", "DICT_FSST"} & string_compressions(settings, table), table
    for table in ("stg_salesforce__tasks", "int_sessions", "fct_touchpoints", "rpt_touchpoints_by_channel"):
        assert "DICT_FSST" in string_compressions(settings, table), table


def query(settings, sql: str) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    rows = con.execute(sql).fetchall()
    con.close()
    return rows


def test_the_visitor_of_a_converted_leads_call_is_its_contact(built):
    # The call names Lead L1 (converted into C1) and the form's e-mail is C1's and L1's: V1 is C1.
    settings, _ = built
    rows = query(settings, "select bizible_id, person_id, touchpoint_position from fct_touchpoints "
                           "order by bizible_id, touchpoint_at")
    assert rows == [(V1, "C1", "FT, LC"), (V1, "C1", "Post LC"), (V2, None, "FT"), (V2, None, "LC"),
                    (V3, None, "FT, LC")], rows
    people = query(settings, "select person_id, person_type, converted_lead_ids, linked_bizible_ids from dim_people")
    assert people == [("C1", "contact", "L1", 1)], people


def test_a_won_opportunity_is_attributed_to_its_contacts_touchpoints(built):
    # O1 (created 12:00 on 1 March, won, closed 2 March): the call (10:10, FT, LC and OC) and the
    # form fill (2 March 09:05, Closed). Full path: 67.5 + half of the unused middle 10 = 72.5 for
    # the call, 22.5 + 5 = 27.5 for the form; U-shaped: nothing between FT and LC, so all to the call.
    settings, _ = built
    rows = query(settings, """
        select model, touchpoints.touchpoint_type, opportunity_positions, credit, attributed_amount, currency_iso_code
        from fct_attribution inner join fct_touchpoints as touchpoints using (touchpoint_id)
        where model in ('full_path', 'u_shaped') order by model, touchpoints.touchpoint_at""")
    assert [(m, t, p, float(c), float(a), cur) for m, t, p, c, a, cur in rows] == [
        ("full_path", "Call", "FT, LC, OC", 0.725, 725.0, "EUR"),
        ("full_path", "Web Form", "Closed", 0.275, 275.0, "EUR"),
        ("u_shaped", "Call", "FT, LC, OC", 1.0, 1000.0, "EUR"),
        ("u_shaped", "Web Form", "Closed", 0.0, 0.0, "EUR"),
    ], rows
    sums = query(settings, "select model, sum(credit), sum(attributed_amount) from fct_attribution group by model")
    assert {(m, str(c), str(a)) for m, c, a in sums} == {
        (m, "1.0000000000", "1000.000000000000") for m in
        ("first_touch", "lead_creation", "u_shaped", "w_shaped", "full_path", "custom")}, sums


def test_an_opportunity_without_people_is_listed_unattributed(built):
    settings, _ = built
    rows = query(settings, "select opportunity_id, currency_iso_code, reason from dq_opportunities_unattributed")
    assert rows == [("O2", "USD", "no_people")], rows


def test_revenue_by_channel_for_one_model(built):
    settings, _ = built
    rows = query(settings, """
        select marketing_channel, calls, touchpoints, opportunities_touched, attributed_pipeline, attributed_won_revenue
        from rpt_revenue_by_channel where grouped_by = 'channel' and model = 'full_path' and currency_iso_code = 'EUR'
        order by marketing_channel""")
    assert [(ch, calls, tps, opps, float(p), float(w)) for ch, calls, tps, opps, p, w in rows] == [
        ("Email", 0, 1, 1, 275.0, 275.0), ("Paid Search", 1, 1, 1, 725.0, 725.0)], rows
