"""Attribution invariants over generated data: hypothesis draws a few hundred accounts (their
Contacts and Leads, the people's devices, visits, calls and form fills, their opportunities), all
of them go into ONE lake (web events and Tasks through the real ingestion, the four CRM objects
as lake Parquet files laid out as the contract says), dbt builds it once, and then for every
opportunity and model: credits are non-negative and sum to exactly 1, only journey touchpoints
get credit, attributed amounts sum to the Amount, and every row is what the rules give
(calltrail.demo.attribution, read independently of the SQL)."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calltrail import settings as settings_module
from calltrail.dbt_project import project_var
from calltrail.demo import attribution as rules
from calltrail.salesforce.files import ingest_task_files
from calltrail.transform.dbt import run_dbt
from calltrail.web.ingest import ingest_web_events
from tests.airflow_env import calltrail_env

ACCOUNTS = 300  # hypothesis examples, one account each, all in one data set
BASE = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SITE = "https://www.acme.example"
TEN_PLACES = Decimal("1E-10")

# One slot of a device's history, a day apart from the next (so every visit is its own session):
# a visit alone, a visit with a call 5 minutes in (matched: it owns the session), a visit with a
# form fill 2 minutes in (it owns the session), or a call without a visit that day (task-only).
SLOT_KINDS = ("visit", "visit_call", "visit_form", "call")
slots = st.lists(st.tuples(st.integers(0, 20), st.sampled_from(SLOT_KINDS), st.integers(0, 600),
                           st.sampled_from(["own", "own", "lead", "fake", "none"])), min_size=1, max_size=5)
person = st.fixed_dictionaries({
    "email": st.sampled_from(["own", "own", "own", "none"]),
    "converted_lead": st.booleans(),  # calls may name the Lead it was before the conversion
    "devices": st.lists(slots, min_size=1, max_size=2),
})
opportunity = st.fixed_dictionaries({
    "created_hours": st.integers(-48, 24 * 22),
    "state": st.sampled_from(["open", "won", "lost"]),
    "close_days": st.integers(0, 15),
    "amount_cents": st.one_of(st.none(), st.integers(0, 10**9)),
    "currency": st.sampled_from(["USD", "EUR", None]),
    "roles": st.one_of(st.none(), st.lists(st.integers(0, 3), max_size=4)),  # None: no roles (the Account's)
    "elsewhere": st.sampled_from([False, False, False, False, False, True]),  # an Account without Contacts
})
account = st.fixed_dictionaries({
    "contacts": st.lists(person, min_size=1, max_size=3),
    "lead_only": st.lists(person, max_size=1),  # a Lead never converted
    "opportunities": st.lists(opportunity, min_size=0, max_size=3),
})


def draw_accounts() -> list[dict]:
    """ACCOUNTS examples of ``account``, as hypothesis draws them (derandomised: the same every run)."""
    drawn: list[dict] = []

    @settings(max_examples=ACCOUNTS, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(account)
    def collect(example: dict) -> None:
        drawn.append(example)

    collect()
    return drawn


@dataclass
class DataSet:
    """What is written, and the same as the oracle takes it."""

    web: list[dict] = field(default_factory=list)
    tasks: list[dict] = field(default_factory=list)
    leads: list[dict] = field(default_factory=list)
    contacts: list[dict] = field(default_factory=list)
    opportunities: list[dict] = field(default_factory=list)
    roles: list[dict] = field(default_factory=list)
    sessions: list[rules.Session] = field(default_factory=list)
    conversions: list[rules.Conversion] = field(default_factory=list)
    forms: list[rules.FormSubmit] = field(default_factory=list)


def sf(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def sf_id(prefix: str, key: str) -> str:
    return prefix + hashlib.md5(key.encode()).hexdigest()[:12].upper() + "AAA"


def build(accounts: list[dict]) -> DataSet:
    d = DataSet()
    bid_field = settings_module.SalesforceSettings().bizible_id_field
    date_field = settings_module.SalesforceSettings().touchpoint_date_field
    for k, acc in enumerate(accounts):
        account_id = sf_id("001", f"a{k}")
        contact_ids = []
        for role, people in (("contact", acc["contacts"]), ("lead", acc["lead_only"])):
            for i, p in enumerate(people):
                email = f"p{k}-{role}{i}@example.com" if p["email"] == "own" else None
                created = BASE - timedelta(days=30 - i)
                lead_id = sf_id("00Q", f"l{k}-{role}{i}") if role == "lead" or p["converted_lead"] else None
                contact_id = sf_id("003", f"c{k}-{i}") if role == "contact" else None
                if contact_id:
                    contact_ids.append(contact_id)
                    d.contacts.append({"Id": contact_id, "Email": email, "AccountId": account_id,
                                       "CreatedDate": created})
                if lead_id:
                    d.leads.append({"Id": lead_id, "Email": email, "CreatedDate": created - timedelta(days=5),
                                    "IsConverted": contact_id is not None, "ConvertedContactId": contact_id,
                                    "ConvertedDate": created.date() if contact_id else None})
                for dev, device in enumerate(p["devices"]):
                    bid = hashlib.md5(f"{k}-{role}{i}-{dev}".encode()).hexdigest()
                    for s, (day, kind, minute, who) in enumerate(device):
                        at = BASE + timedelta(days=day, minutes=minute)
                        who_id = {"own": contact_id or lead_id, "lead": lead_id or contact_id,
                                  "fake": sf_id("00Q", f"nobody{k}"), "none": None}[who]
                        key = f"{k}-{role}{i}-{dev}-{s}"
                        session_id = None
                        if kind != "call":
                            if any(x[0] == day and x[1] != "call" for x in device[:s]):
                                continue  # one visit a day per device
                            event_id = f"e{key}"
                            d.web.append({"event_id": event_id, "bizible_id": bid, "event_type": "page_view",
                                          "occurred_at": at.isoformat(), "page_url": f"{SITE}/?utm_source=google&utm_medium=cpc",
                                          "referrer_url": "https://www.google.com/", "email": None, "form_url": None})
                            session = rules.Session(bid, event_id, at)
                            d.sessions.append(session)
                            session_id = session.session_id
                        elif any(x[0] == day and x[1] != "call" for x in device):
                            continue  # a call-only slot on a day the device visits would be matched
                        if kind == "visit_form":
                            form_at = at + timedelta(minutes=2)
                            d.web.append({"event_id": f"f{key}", "bizible_id": bid, "event_type": "form_submit",
                                          "occurred_at": form_at.isoformat(), "page_url": f"{SITE}/contact",
                                          "referrer_url": None, "email": email, "form_url": f"{SITE}/contact"})
                            d.conversions.append(rules.Conversion(bid, "form", f"f{key}", form_at, session_id))
                            d.forms.append(rules.FormSubmit(bid, email, form_at))
                        if kind in ("visit_call", "call"):
                            call_at = at + timedelta(minutes=5) if kind == "visit_call" else at
                            task_id = sf_id("00T", key)
                            d.tasks.append({"attributes": {"type": "Task"}, "Id": task_id, "WhoId": who_id,
                                            "Type": "Call", "TaskSubtype": "Call", "Subject": "Inbound call",
                                            "CreatedDate": sf(call_at), "SystemModstamp": sf(call_at),
                                            "IsDeleted": False, bid_field: bid, date_field: sf(call_at)})
                            d.conversions.append(rules.Conversion(bid, "task", task_id, call_at, session_id, who_id))
        for j, o in enumerate(acc["opportunities"]):
            opp_id = sf_id("006", f"o{k}-{j}")
            created = BASE + timedelta(hours=o["created_hours"])
            d.opportunities.append({
                "Id": opp_id, "Name": f"Deal {k}-{j}",
                "AccountId": sf_id("001", f"elsewhere{k}") if o["elsewhere"] else account_id,
                "Amount": None if o["amount_cents"] is None else Decimal(o["amount_cents"]) / 100,
                "CurrencyIsoCode": o["currency"], "StageName": o["state"], "CreatedDate": created,
                "CloseDate": (created + timedelta(days=o["close_days"])).date(), "IsClosed": o["state"] != "open",
                "IsWon": o["state"] == "won"})
            for r, n in enumerate(sorted(set(o["roles"] or [])) if not o["elsewhere"] else []):
                if n < len(contact_ids):
                    d.roles.append({"Id": sf_id("00K", f"r{k}-{j}-{r}"), "OpportunityId": opp_id,
                                    "ContactId": contact_ids[n], "Role": "Decision Maker", "IsPrimary": r == 0})
    return d


def oracle(d: DataSet) -> rules.Attribution:
    return rules.attribute(
        leads=[rules.Lead(x["Id"], x["Email"], x["CreatedDate"], x["ConvertedContactId"]) for x in d.leads],
        contacts=[rules.Contact(x["Id"], x["Email"], x["AccountId"], x["CreatedDate"]) for x in d.contacts],
        sessions=d.sessions, conversions=d.conversions, forms=d.forms,
        opportunities=[rules.Opportunity(x["Id"], x["AccountId"], x["Amount"], x["CurrencyIsoCode"], x["CreatedDate"],
                                         x["CloseDate"], x["IsClosed"], x["IsWon"]) for x in d.opportunities],
        roles=[rules.ContactRole(x["OpportunityId"], x["ContactId"]) for x in d.roles])


LAKE_TYPES = {"Amount": pa.decimal128(18, 2), "ConvertedDate": pa.date32(), "CloseDate": pa.date32()}


def write_lake_object(lake: Path, obj: str, file_name: str, rows: list[dict], columns: list[str]) -> None:
    """One lake partition of a CRM object, as the contract lays it out (source=file/file=<hash>/)."""
    loaded = datetime(2026, 4, 1)
    arrays = {}
    for c in columns:
        values = [r.get(c) for r in rows]
        if c in LAKE_TYPES:
            arrays[c] = pa.array(values, LAKE_TYPES[c])
        elif c in ("CreatedDate", "SystemModstamp"):
            arrays[c] = pa.array([v.astimezone(UTC).replace(tzinfo=None) if v else v for v in values], pa.timestamp("us"))
        elif c.startswith("Is"):
            arrays[c] = pa.array(values, pa.bool_())
        else:
            arrays[c] = pa.array(values, pa.string())
    arrays["_loaded_at"] = pa.array([loaded] * len(rows), pa.timestamp("us"))
    glob = project_var(f"calltrail__lake_salesforce_{obj}_glob")
    target = lake / glob.replace("*/*", "source=file/file=hypothesis")
    target.parent.mkdir(parents=True, exist_ok=True)
    assert target.name == file_name, glob
    pq.write_table(pa.table(arrays), target)


def write(d: DataSet, settings) -> None:
    settings.web_landing_dir.mkdir(parents=True)
    (settings.web_landing_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in d.web))
    settings.task_landing_dir.mkdir(parents=True)
    (settings.task_landing_dir / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in d.tasks))
    ingest_web_events(settings.web_landing_dir, settings.lake_dir)
    ingest_task_files(settings.task_landing_dir, settings.lake_dir, settings.salesforce)
    for rows in (d.leads, d.contacts, d.opportunities, d.roles):
        for r in rows:
            r.setdefault("SystemModstamp", r.get("CreatedDate") or BASE)
            r.setdefault("IsDeleted", False)
    common = ["Id", "SystemModstamp", "IsDeleted"]
    write_lake_object(settings.lake_dir, "lead", "leads.parquet", d.leads,
                      [*common, "Email", "CreatedDate", "IsConverted", "ConvertedContactId", "ConvertedDate"])
    write_lake_object(settings.lake_dir, "contact", "contacts.parquet", d.contacts,
                      [*common, "Email", "AccountId", "CreatedDate"])
    write_lake_object(settings.lake_dir, "opportunity", "opportunities.parquet", d.opportunities,
                      [*common, "Name", "AccountId", "Amount", "CurrencyIsoCode", "StageName", "CreatedDate",
                       "CloseDate", "IsClosed", "IsWon"])
    write_lake_object(settings.lake_dir, "opportunity_contact_role", "opportunity_contact_roles.parquet", d.roles,
                      [*common, "OpportunityId", "ContactId", "Role", "IsPrimary"])


@pytest.fixture(scope="session")
def generated(tmp_path_factory):
    """The drawn data set and the oracle's reading of it (no dbt)."""
    d = build(draw_accounts())
    return d, oracle(d)


@pytest.fixture(scope="session")
def built(tmp_path_factory, generated):
    """The data set in a lake, built once by dbt (the models up to the attribution marts)."""
    d, _ = generated
    settings = settings_module.load(calltrail_env(tmp_path_factory.mktemp("invariants")))
    write(d, settings)
    run_dbt(settings, ["build", "--select", "+fct_attribution +dq_opportunities_unattributed",
                       "--resource-type", "seed", "--resource-type", "model"], in_process=True)
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        credits = con.execute("select opportunity_id, touchpoint_id, person_id, opportunity_positions, model, credit, "
                              "attributed_amount, currency_iso_code from fct_attribution").fetchall()
        touchpoints = con.execute("select touchpoint_id, person_id, touchpoint_position from fct_touchpoints").fetchall()
    finally:
        con.close()
    return credits, touchpoints


def positions(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


def test_the_generated_data_set_holds_every_case_the_invariants_need(generated):
    d, expected = generated
    assert len(d.opportunities) >= 200 and len(expected.journeys) >= 50, (len(d.opportunities), len(expected.journeys))
    assert set(expected.unattributed.values()) == {"no_people", "no_touchpoints", "no_touchpoints_before_cutoff"}
    people_devices = defaultdict(set)
    for bid, p in expected.links.items():
        people_devices[p].add(bid)
    assert max(len(v) for v in people_devices.values()) > 1, "no person on two devices"
    assert any(len(j) > 3 for j in expected.journeys.values())
    assert any(o["Amount"] is None for o in d.opportunities) and any(not o["CurrencyIsoCode"] for o in d.opportunities)


def test_credits_are_non_negative_and_sum_to_exactly_one_per_opportunity_and_model(built):
    credits, _ = built
    sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for opp, _, _, _, model, credit, _, _ in credits:
        assert Decimal(str(credit)) >= 0, (opp, model, credit)
        sums[opp, model] += Decimal(str(credit))
    wrong = {k: v for k, v in sums.items() if v != 1}
    assert sums and not wrong, f"credit sums other than 1: {list(wrong.items())[:5]}"


def test_only_the_journeys_touchpoints_get_credit_and_every_one_gets_a_row_in_every_model(built, generated):
    credits, _ = built
    _, expected = generated
    seen = defaultdict(set)
    for opp, tp, _, _, model, _, _, _ in credits:
        seen[opp, model].add(tp)
    journeys = {(opp, m): {t.touchpoint_id for t in j} for opp, j in expected.journeys.items() for m in rules.MODELS}
    assert seen == journeys, [k for k in set(seen) | set(journeys) if seen.get(k) != journeys.get(k)][:5]


def test_attributed_amounts_sum_to_the_amount_per_opportunity_and_model(built, generated):
    credits, _ = built
    d, _ = generated
    amounts = {o["Id"]: o["Amount"] for o in d.opportunities}
    sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for opp, _, _, _, model, _, amount, _ in credits:
        assert (amount is None) == (amounts[opp] is None), (opp, model, amount)
        if amount is not None:
            sums[opp, model] += Decimal(str(amount))
    wrong = {k: (v, amounts[k[0]]) for k, v in sums.items() if v != amounts[k[0]]}
    assert not wrong, f"(opportunity, model): (sum, Amount) {list(wrong.items())[:5]}"


def test_every_credit_and_every_touchpoints_person_is_what_the_rules_give(built, generated):
    credits, touchpoints = built
    _, expected = generated
    seen = {(r[0], r[1], r[2], positions(r[3]), r[4], Decimal(str(r[5])).quantize(TEN_PLACES),
             None if r[6] is None else Decimal(str(r[6])), r[7]) for r in credits}
    want = {(c.opportunity_id, c.touchpoint_id, c.person_id, positions(c.opportunity_positions), c.model, c.credit,
             c.attributed_amount, c.currency_iso_code) for c in expected.credits}
    assert seen == want, (f"expected, not seen: {sorted(want - seen, key=str)[:5]}; "
                          f"seen, not expected: {sorted(seen - want, key=str)[:5]}")
    people = {r[0]: (r[1], r[2]) for r in touchpoints}
    want_people = {t.touchpoint_id: (t.person_id, t.position) for t in expected.touchpoints}
    assert people == want_people, [(k, people.get(k), want_people.get(k)) for k in set(people) | set(want_people)
                                   if people.get(k) != want_people.get(k)][:5]
