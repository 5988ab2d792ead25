"""Late-arriving data, in steps: what the incremental tests load into the lake one step at a time.

Each step is a landing file of web events and one of Task versions, ingested by calltrail's own
ingestion, so each becomes a lake batch of its own. The cases (docs/incremental.md):

- LATE: an event that arrives a day late and joins two sessions into one (and so moves a matched
  call outside the window);
- GAINS: a Task without a BizibleId that gains one a week later;
- DELETED: a Task that is deleted (its visitor's only Task: nothing of it may stay);
- EARLY: a call whose session arrives after it;
- MOVED: a Task whose BizibleId is corrected to another visitor's;
- then the CRM alone changes (no web event, no Task): a new Lead whose e-mail an anonymous
  visitor's form named (ANON: its journey becomes the Lead's), and a new amount of the won
  opportunity O1.
A visitor that nothing touches after the first step (STILL) proves that a step rebuilds only the
visitors it changes. NEIGHBOUR, untouched too, shares what Spark partitions by with what step 2
rebuilds: LATE's visitor bucket (the first hex digit of the BizibleId), and through its Contact
C18 and C18's open opportunity O21 the buckets of C1's journey and of O1 (the first hex digit of
the MD5 of the key). On Spark its rows are kept, not rebuilt, when those buckets are rewritten.
"""

from __future__ import annotations

import json
from pathlib import Path

from calltrail.salesforce.files import ingest_task_files
from calltrail.web.ingest import ingest_web_events
from tests.transform.engine_compare import MODELS

# What a warehouse built step by step and one built in one go must hold alike: every intermediate
# model and mart but int_session_events and int_opportunity_journeys (the events and journeys of
# what a run rebuilds) and int_increment (how the warehouse was built).
COMPARED = [m for m in MODELS if m not in ("int_session_events", "int_opportunity_journeys", "int_increment")]

LATE, GAINS, DELETED, EARLY, MOVED_FROM, MOVED_TO, STILL, ANON = (c * 32 for c in "12345678")
NEIGHBOUR = "1" + "a" * 31
SITE = "https://www.acme.example"


def event(n: int, bid: str, at: str, url: str = f"{SITE}/", referrer: str | None = None,
          kind: str = "page_view", email: str | None = None) -> dict:
    return {"event_id": f"e{n}", "bizible_id": bid, "event_type": kind, "occurred_at": at, "page_url": url,
            "referrer_url": referrer, "form_url": url if kind == "form_submit" else None, "email": email}


def task(task_id: str, bid: str | None, at: str, modstamp: str, *, deleted: bool = False,
         who: str | None = None) -> dict:
    return {"attributes": {"type": "Task"}, "Id": task_id, "Type": "Call", "TaskSubtype": "Call",
            "Subject": f"Call {task_id}", "CreatedDate": at, "SystemModstamp": modstamp, "IsDeleted": deleted,
            "bizible2__BizibleId__c": bid, "bizible2__Bizible_Touchpoint_Date__c": at, "WhoId": who}


T_LATE, T_GAINS, T_DELETED, T_EARLY, T_MOVED, T_STILL, T_NEIGHBOUR = (f"00T00000000000{n}AAA" for n in range(1, 8))

STEPS: list[tuple[list[dict], list[dict]]] = [
    # 1: the first run (a full one)
    ([event(1, LATE, "2026-03-01T10:00:00Z", f"{SITE}/?utm_source=google&utm_medium=cpc&gclid=g1",
            "https://www.google.com/"),
      event(2, LATE, "2026-03-01T10:50:00Z"),  # 50 minutes later: a second session
      event(3, GAINS, "2026-03-02T09:00:00Z", f"{SITE}/?utm_source=newsletter&utm_medium=email"),
      event(4, DELETED, "2026-03-02T12:00:00Z", f"{SITE}/pricing", "https://www.bing.com/"),
      event(5, MOVED_FROM, "2026-03-03T08:00:00Z"),  # 40 minutes before the call: outside the window
      event(6, MOVED_TO, "2026-03-03T08:30:00Z", f"{SITE}/?utm_source=linkedin&utm_medium=paid_social"),
      event(7, STILL, "2026-03-03T15:00:00Z"),
      event(8, STILL, "2026-03-03T15:10:00Z", f"{SITE}/contact", kind="form_submit", email="ann@acme.example"),
      event(11, ANON, "2026-03-05T09:00:00Z", f"{SITE}/?utm_source=partner&utm_medium=referral"),
      event(12, ANON, "2026-03-05T09:03:00Z", f"{SITE}/contact", kind="form_submit", email="bob@beta.example"),
      event(13, NEIGHBOUR, "2026-03-02T14:00:00Z", f"{SITE}/?utm_source=google&utm_medium=cpc&gclid=g3",
            "https://www.google.com/"),
      event(14, NEIGHBOUR, "2026-03-02T14:05:00Z", f"{SITE}/contact", kind="form_submit", email="cleo@gamma.example")],
     # LATE is Contact C1 (its Task's WhoId), on the won opportunity O1 of write_lake_objects;
     # STILL's form names C1's e-mail, so C1's journey merges two visitors
     [task(T_LATE, LATE, "2026-03-01T10:55:00.000+0000", "2026-03-01T10:55:00.000+0000", who="C1"),
      task(T_GAINS, None, "2026-03-02T09:10:00.000+0000", "2026-03-02T09:10:00.000+0000"),
      task(T_DELETED, DELETED, "2026-03-02T12:05:00.000+0000", "2026-03-02T12:05:00.000+0000"),
      task(T_EARLY, EARLY, "2026-03-04T10:20:00.000+0000", "2026-03-04T10:20:00.000+0000"),
      task(T_MOVED, MOVED_FROM, "2026-03-03T08:40:00.000+0000", "2026-03-03T08:40:00.000+0000"),
      task(T_STILL, STILL, "2026-03-03T15:05:00.000+0000", "2026-03-03T15:05:00.000+0000"),
      task(T_NEIGHBOUR, NEIGHBOUR, "2026-03-02T14:10:00.000+0000", "2026-03-02T14:10:00.000+0000", who="C18")]),
    # 2: a day late, the event that joins LATE's two sessions (its call is now 55 minutes after the
    #    start); the session of EARLY's call, which came first
    ([event(9, LATE, "2026-03-01T10:25:00Z"),
      event(10, EARLY, "2026-03-04T10:05:00Z", f"{SITE}/?utm_source=google&utm_medium=cpc&gclid=g2",
            "https://www.google.com/")],
     []),
    # 3: a week later, GAINS's Task gets its BizibleId
    ([], [task(T_GAINS, GAINS, "2026-03-02T09:10:00.000+0000", "2026-03-09T09:00:00.000+0000")]),
    # 4: DELETED's Task is deleted; MOVED's BizibleId is corrected to MOVED_TO
    ([], [task(T_DELETED, DELETED, "2026-03-02T12:05:00.000+0000", "2026-03-10T09:00:00.000+0000", deleted=True),
          task(T_MOVED, MOVED_TO, "2026-03-03T08:40:00.000+0000", "2026-03-10T09:00:00.000+0000")]),
    # 5: the CRM alone: Lead L2 (bob@beta.example, ANON's form), O1's amount 1000 -> 1200 (CRM_CHANGES)
    ([], []),
]

# The CRM's records beside write_lake_objects' in the first step (NEIGHBOUR's), and its changes by
# step (0-based), written as the lake contract declares the objects
# (models/staging/_salesforce__sources.yml), each a lake batch of its own.
CRM_CHANGES = {0: {
    "salesforce_contact": ("contacts.parquet", """
        select 'C18' as "Id", 'cleo@gamma.example' as "Email", 'A3' as "AccountId",
               timestamp '2026-01-10 09:00:00' as "CreatedDate" """),
    "salesforce_opportunity": ("opportunities.parquet", """
        select 'O21' as "Id", 'Open in EUR' as "Name", 'A3' as "AccountId", 300.00::decimal(18, 2) as "Amount",
               'EUR' as "CurrencyIsoCode", 'Prospecting' as "StageName", timestamp '2026-03-06 12:00:00' as "CreatedDate",
               date '2026-04-30' as "CloseDate", false as "IsClosed", false as "IsWon" """),
    "salesforce_opportunity_contact_role": ("opportunity_contact_roles.parquet", """
        select 'R2' as "Id", 'O21' as "OpportunityId", 'C18' as "ContactId", 'Decision Maker' as "Role",
               true as "IsPrimary" """),
}, 4: {
    "salesforce_lead": ("leads.parquet", """
        select 'L2' as "Id", 'bob@beta.example' as "Email", timestamp '2026-03-10 12:00:00' as "CreatedDate",
               false as "IsConverted", cast(null as varchar) as "ConvertedContactId",
               cast(null as date) as "ConvertedDate" """),
    "salesforce_opportunity": ("opportunities.parquet", """
        select 'O1' as "Id", 'Won in EUR' as "Name", 'A1' as "AccountId", 1200.00::decimal(18, 2) as "Amount",
               'EUR' as "CurrencyIsoCode", 'Closed Won' as "StageName", timestamp '2026-03-01 12:00:00' as "CreatedDate",
               date '2026-03-02' as "CloseDate", true as "IsClosed", true as "IsWon" """),
}}

# What each step after the first must rebuild, and nothing else: the visitors; the journeys (a
# visitor's own, its person's: C1 is LATE's by its Task's WhoId, ANON's becomes Lead L2's); the
# opportunities (O1 is C1's, and its amount changes in step 5).
REBUILT = [None, {LATE, EARLY}, {GAINS}, {DELETED, MOVED_FROM, MOVED_TO}, set()]
REBUILT_JOURNEYS = [None, {LATE, "C1", EARLY}, {GAINS}, {DELETED, MOVED_FROM, MOVED_TO}, {ANON, "L2"}]
REBUILT_OPPORTUNITIES = [None, {"O1"}, set(), set(), {"O1"}]
# The Tasks whose latest version each step rebuilds (stg_salesforce__tasks): those it loads a version of.
REBUILT_TASKS = [None, set(), {T_GAINS}, {T_DELETED, T_MOVED}, set()]


def load_step(settings, number: int) -> None:
    """Write step ``number``'s landing files (0-based) and ingest them into the lake; the first
    step also writes the people and the opportunities (tests/transform/test_dbt_build.py)."""
    from tests.transform.test_dbt_build import write_lake_objects

    if number == 0:
        write_lake_objects(settings.lake_dir)
    if number in CRM_CHANGES:
        write_crm_changes(settings.lake_dir, number, CRM_CHANGES[number])
    events, tasks = STEPS[number]
    for folder, rows in ((settings.web_landing_dir, events), (settings.task_landing_dir, tasks)):
        folder.mkdir(parents=True, exist_ok=True)
        if rows:
            Path(folder / f"step{number + 1}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ingest_web_events(settings.web_landing_dir, settings.lake_dir)
    ingest_task_files(settings.task_landing_dir, settings.lake_dir, settings.salesforce)


def write_crm_changes(lake_dir, number: int, objects: dict) -> None:
    """CRM records, one lake partition per object: the first step's stamped as write_lake_objects
    stamps its own, later ones a week after step 4."""
    import duckdb

    stamp = "2026-03-03 00:00:00" if number == 0 else "2026-03-17 00:00:00"
    con = duckdb.connect()
    for dataset, (file_name, rows) in objects.items():
        folder = lake_dir / dataset / "source=file" / f"file=step{number + 1}"
        folder.mkdir(parents=True)
        con.execute(f"""copy (select *, timestamp '{stamp}' as "SystemModstamp", false as "IsDeleted",
                                     timestamp '{stamp}' as "_loaded_at" from ({rows}))
                        to '{folder / file_name}' (format parquet)""")
    con.close()


def build_in_one_go(settings, *, in_process: bool = True) -> None:
    """The seeds and models of ``settings``'s warehouse rebuilt from scratch (``--full-refresh``),
    what the step-by-step builds are compared with; their data tests run in those builds.
    ``in_process=False``: in a dbt process, which may run beside an in-process build (another
    warehouse and dbt target folder)."""
    from calltrail.transform.dbt import run_dbt

    run_dbt(settings, ["build", "--full-refresh", "--exclude-resource-type", "test", "--exclude-resource-type",
                       "unit_test"], in_process=in_process)
