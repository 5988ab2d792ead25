"""The demo's people and opportunities: the Salesforce records it writes, and a recorded truth
that agrees with them (links from the evidence in the files, credits that add up)."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from calltrail.demo.generate import generate

FIELDS = {
    "lead": {"Id", "Email", "CreatedDate", "IsConverted", "ConvertedContactId", "ConvertedDate", "SystemModstamp",
             "IsDeleted"},
    "contact": {"Id", "Email", "AccountId", "CreatedDate", "SystemModstamp", "IsDeleted"},
    "opportunity": {"Id", "Name", "AccountId", "Amount", "CurrencyIsoCode", "StageName", "CreatedDate", "CloseDate",
                    "IsClosed", "IsWon", "SystemModstamp", "IsDeleted"},
    "opportunity_contact_role": {"Id", "OpportunityId", "ContactId", "Role", "IsPrimary", "SystemModstamp",
                                 "IsDeleted"},
}
PREFIX = {"lead": "00Q", "contact": "003", "opportunity": "006", "opportunity_contact_role": "00K"}


def jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def records(landing: Path, folder: str) -> list[dict]:
    """Every version written into a landing folder, in file order."""
    return [r for f in sorted((landing / "salesforce" / folder).glob("*.jsonl")) for r in jsonl(f)]


def latest(landing: Path, folder: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in records(landing, folder):
        if r["Id"] not in out or r["SystemModstamp"] >= out[r["Id"]]["SystemModstamp"]:
            out[r["Id"]] = r
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    landing = tmp_path_factory.mktemp("people")
    generate(landing, visitors=400)
    truth = json.loads((landing / "_demo" / "truth.json").read_text())
    return landing, truth


def test_the_records_carry_api_names_and_18_character_ids_with_their_prefixes(demo):
    landing, _ = demo
    for folder, fields in FIELDS.items():
        rows = records(landing, folder)
        assert rows, f"no {folder} records"
        for r in rows:
            assert set(r) - {"attributes"} == fields, (folder, sorted(set(r) ^ fields))
            assert re.fullmatch(rf"{PREFIX[folder]}[0-9A-Za-z]{{15}}", r["Id"]), r["Id"]
    for r in records(landing, "contact"):
        assert re.fullmatch(r"001[0-9A-Za-z]{15}", r["AccountId"]), r
    for r in records(landing, "opportunity"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", r["CloseDate"]) and r["CurrencyIsoCode"] in ("USD", "EUR"), r


def test_the_demo_has_every_kind_of_person_and_opportunity(demo):
    landing, truth = demo
    people = truth["people"]
    leads = latest(landing, "lead")
    assert people["converted_leads"] == sum(r["IsConverted"] for r in leads.values()) > 0
    assert people["people_on_two_devices"] > 0
    opps = latest(landing, "opportunity")
    assert {(r["IsClosed"], r["IsWon"]) for r in opps.values()} == {(True, True), (True, False), (False, False)}
    assert {r["CurrencyIsoCode"] for r in opps.values()} == {"USD", "EUR"}
    assert any(r["Amount"] is None for r in opps.values()), "no opportunity without an Amount"
    roles = latest(landing, "opportunity_contact_role")
    live = Counter(r["OpportunityId"] for r in roles.values() if not r["IsDeleted"])
    assert max(live.values()) > 1, "no opportunity with several contacts"
    assert any(r["IsDeleted"] for r in roles.values()), "no contact role deleted"
    credited = {json.loads(x)["opportunity_id"] for x in (landing / "_demo" / "truth_attribution.jsonl").open()}
    assert credited - set(live), "no opportunity attributed through its Account's contacts (without roles)"
    assert set(people["unattributed"].values()) == {"no_people", "no_touchpoints", "no_touchpoints_before_cutoff"}
    assert len(credited) + len(people["unattributed"]) == len(opps) == people["opportunities"]


def test_every_link_is_the_latest_evidence_the_files_hold(demo):
    """A BizibleId's person is the one its latest call (WhoId) or form submit (e-mail) names; a
    converted Lead stands for its Contact; a Contact wins an e-mail over a Lead."""
    landing, _ = demo
    leads, contacts = latest(landing, "lead"), latest(landing, "contact")

    def person(record_id: str | None) -> str | None:
        if record_id in contacts:
            return record_id
        lead = leads.get(record_id or "")
        return (lead["ConvertedContactId"] if lead["IsConverted"] else lead["Id"]) if lead else None

    by_email: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for rank, rows in ((0, contacts), (1, leads)):
        for r in rows.values():
            by_email[r["Email"].lower()].append((rank, r["CreatedDate"], r["Id"]))
    evidence: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for f in sorted((landing / "web_events").glob("*.jsonl")):
        for e in jsonl(f):
            if e["event_type"] == "form_submit" and e["email"].strip().lower() in by_email:
                utc = datetime.fromisoformat(e["occurred_at"]).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
                evidence[e["bizible_id"]].append((utc, person(min(by_email[e["email"].strip().lower()])[2])))
    touchpoint_tasks = {t["task_id"]: t for t in map(json.loads, (landing / "_demo" / "truth_tasks.jsonl").open())
                        if t["expected_touchpoint"] not in ("none", None) and not t["deleted"]}
    bizible_ids = {t["Id"]: t["bizible2__BizibleId__c"] for t in jsonl(landing / "salesforce" / "task" / "demo-tasks.jsonl")}
    with (landing / "salesforce" / "task" / "demo-task-updates.csv").open() as fh:
        bizible_ids.update({t["ID"]: t["BIZIBLE2__BIZIBLEID__C"] for t in csv.DictReader(fh)})  # a later version
    for t in jsonl(landing / "salesforce" / "task" / "demo-tasks.jsonl"):
        if t["Id"] in touchpoint_tasks and person(t["WhoId"]):
            call = touchpoint_tasks[t["Id"]]["call_time"]
            bid = bizible_ids[t["Id"]].strip("{}").replace("-", "").lower()
            evidence[bid].append((f"{call[:10]}T{call[11:19]}.000", person(t["WhoId"])))
    links = {x["bizible_id"]: x["person_id"] for x in map(json.loads, (landing / "_demo" / "truth_people.jsonl").open())}
    expected = {bid: min(p for at, p in ev if at == max(ev)[0]) for bid, ev in evidence.items()}
    assert links == expected, {b: (links.get(b), expected.get(b)) for b in set(links) | set(expected)
                               if links.get(b) != expected.get(b)}
    assert not any(p in leads and leads[p]["IsConverted"] for p in links.values()), "a converted Lead kept its links"


def test_a_journey_over_several_devices_or_people_is_the_only_one_whose_positions_change(demo):
    landing, _ = demo
    touchpoints = list(map(json.loads, (landing / "_demo" / "truth_touchpoints.jsonl").open()))
    owners: dict[str, set] = defaultdict(set)  # visitor -> the people (or nobody) its touchpoints belong to
    visitors: dict[str, set] = defaultdict(set)  # person -> the visitors their touchpoints come from
    for t in touchpoints:
        owners[t["bizible_id"]].add(t["person_id"])
        if t["person_id"]:
            visitors[t["person_id"]].add(t["bizible_id"])
    by_source = {t["source_id"]: t for t in touchpoints}
    changed = [t for t in map(json.loads, (landing / "_demo" / "truth_tasks.jsonl").open())
               if t["expected_position"] != t["expected_visitor_position"]]
    assert changed, "no person's journey spans two devices"
    for t in changed:
        tp = by_source[t["task_id"]]
        assert len(visitors[tp["person_id"]]) > 1 or len(owners[tp["bizible_id"]]) > 1, t
    per_owner = Counter((t["person_id"] or t["bizible_id"]) for t in touchpoints if t["touchpoint_position"][:2] == "FT")
    assert set(per_owner.values()) == {1}, "an owner with two first touches"


def test_credits_sum_to_one_and_amounts_to_the_amount_per_opportunity_and_model(demo):
    landing, _ = demo
    opps = latest(landing, "opportunity")
    sums: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for c in map(json.loads, (landing / "_demo" / "truth_attribution.jsonl").open()):
        credit = Decimal(c["credit"])
        assert credit >= 0 and credit == credit.quantize(Decimal("1E-10")), c
        sums[c["opportunity_id"], c["model"]][0] += credit
        if c["attributed_amount"] is not None:
            sums[c["opportunity_id"], c["model"]][1] += Decimal(c["attributed_amount"])
        assert c["currency_iso_code"] == opps[c["opportunity_id"]]["CurrencyIsoCode"]
    assert {m for _, m in sums} == {"first_touch", "lead_creation", "u_shaped", "w_shaped", "full_path", "custom"}
    for (opp, model), (credit, amount) in sums.items():
        expected = opps[opp]["Amount"]
        assert credit == 1, (opp, model, credit)
        assert amount == (Decimal(str(expected)) if expected is not None else 0), (opp, model, amount, expected)
