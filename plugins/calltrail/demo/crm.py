"""The demo's people and deals: Leads, Contacts (with Accounts), Opportunities and their contact
roles, written as Salesforce REST records (JSON lines, API field names) into the landing folder.

The generator asks :meth:`Crm.identity` who a visitor is before it writes the visitor's calls and
form submits: nobody (an anonymous visitor), a new person (a Lead, a Lead converted to a Contact
later, or a Contact), or the person of an earlier visitor (the same person on a second device).
A call then carries the person's Id as ``WhoId`` (a converted Lead's Contact once converted) and
a form submit the person's e-mail, sometimes in capitals or with spaces. A shared device now and
then submits a form with a colleague's e-mail (a new Lead): the latest evidence wins.

After the visitors, :meth:`Crm.finish` places the opportunities around the people's touchpoints:
won, lost and open ones in two currencies, some without an Amount, most with contact roles (one
or several Contacts, one role deleted later), some without (the Account's Contacts count), and
three that cannot be attributed (no people; people without touchpoints; every touchpoint after
the close). It has its own random stream, so the web events and Tasks stay as they were.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from calltrail.demo import attribution as rules

API = "/services/data/v59.0/sobjects"
CURRENCIES = ("USD", "EUR")
ROLES = ("Decision Maker", "Economic Buyer", "Technical Buyer", "Evaluator", "Influencer")
OPEN_STAGES = ("Prospecting", "Qualification", "Proposal/Price Quote", "Negotiation/Review")
COMPANIES = ("Northwind", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Tyrell",
             "Soylent", "Acme Dental", "Blue Sky Realty", "Pied Piper", "Wonka", "Cyberdyne")
FIRST = ("ana", "ben", "chloe", "dev", "emma", "farid", "grace", "hugo", "ines", "jon", "kim", "lena", "marco",
         "nina", "omar", "paula", "quinn", "ravi", "sofia", "tom")
LAST = ("smith", "garcia", "muller", "rossi", "kowalski", "nguyen", "okafor", "tanaka", "silva", "dubois")
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
# The file names it writes; the generator clears them before a new demo.
FILES = ("salesforce/lead/demo-leads.jsonl", "salesforce/lead/demo-lead-updates.jsonl",
         "salesforce/contact/demo-contacts.jsonl", "salesforce/opportunity/demo-opportunities.jsonl",
         "salesforce/opportunity_contact_role/demo-opportunity-contact-roles.jsonl",
         "salesforce/opportunity_contact_role/demo-opportunity-contact-role-updates.jsonl")


def salesforce_id(prefix: str, n: int) -> str:
    """An 18-character Salesforce Id: the 15-character case-sensitive Id and its checksum suffix."""
    short = f"{prefix}5J{n:010d}"
    suffix = "".join(_CHECKSUM[sum(1 << j for j, ch in enumerate(short[i:i + 5]) if ch.isupper())]
                     for i in range(0, 15, 5))
    return short + suffix


def sf_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


@dataclass
class Person:
    """A Lead or Contact as the generator uses it: the Ids a call names and the e-mail a form carries."""

    email: str
    lead_id: str | None = None
    contact_id: str | None = None
    converted_at: datetime | None = None  # a Lead converted to ``contact_id`` at this time
    devices: int = 1

    def who_id(self, at: datetime) -> str:
        """The WhoId of a call at ``at``: the Lead until it was converted, then its Contact."""
        if self.lead_id is not None and (self.converted_at is None or at < self.converted_at):
            return self.lead_id
        assert self.contact_id is not None
        return self.contact_id


@dataclass(frozen=True)
class Shape:
    """How many people and deals the visitors bring. ``people_scale`` scales the chance that a new
    visitor is a person (a new one or an earlier one's second device); ``colleague_share`` is the
    chance that a new Contact works at a recent Account (so it sets the Accounts' size, and with it
    the contact roles per opportunity); each touched Account gets ``deals_per_account``
    opportunities, one more in a fifth of them."""

    people_scale: float = 1.0
    colleague_share: float = 0.45
    deals_per_account: int = 1


# The demo's shape; and the benchmark's (make bench), whose 2.3 million visitors give about 300,000
# people, 100,000 opportunities and 300,000 contact roles rather than three times as many people.
SHAPES = {"demo": Shape(), "bench": Shape(people_scale=0.335, colleague_share=0.85, deals_per_account=4)}


@dataclass
class _Account:
    account_id: str
    name: str
    contacts: list[str] = field(default_factory=list)


class Crm:
    def __init__(self, landing: Path, seed: int, start: datetime, days: int, shape: Shape = SHAPES["demo"]) -> None:
        self.rng = random.Random(f"calltrail-demo-crm-{seed}")
        self.shape = shape
        self.landing, self.start, self.days = landing, start, days
        self.people: list[Person] = []
        self.leads: dict[str, dict[str, Any]] = {}
        self.lead_updates: list[dict[str, Any]] = []
        self.contacts: dict[str, dict[str, Any]] = {}
        self.accounts: list[_Account] = []
        self._n = {"00Q": 0, "003": 0, "001": 0, "006": 0, "00K": 0}
        self.opportunities: list[dict[str, Any]] = []
        self.roles: list[dict[str, Any]] = []
        self.role_updates: list[dict[str, Any]] = []

    def _id(self, prefix: str) -> str:
        self._n[prefix] += 1
        return salesforce_id(prefix, self._n[prefix])

    def _email(self, account: _Account | None) -> str:
        n = sum(self._n.values())
        domain = account.name.lower().replace(" ", "-") if account else self.rng.choice(["gmail", "outlook", "proton"])
        return f"{self.rng.choice(FIRST)}.{self.rng.choice(LAST)}{n}@{domain}.example"

    def _account(self) -> _Account:
        if self.accounts and self.rng.random() < self.shape.colleague_share:  # a colleague of a recent person
            return self.rng.choice(self.accounts[-8:])
        account = _Account(self._id("001"), f"{self.rng.choice(COMPANIES)} {len(self.accounts) + 1}")
        self.accounts.append(account)
        return account

    def _lead(self, email: str, created: datetime) -> str:
        lead_id = self._id("00Q")
        self.leads[lead_id] = {"Id": lead_id, "Email": email, "CreatedDate": sf_time(created), "IsConverted": False,
                               "ConvertedContactId": None, "ConvertedDate": None, "SystemModstamp": sf_time(created),
                               "IsDeleted": False}
        return lead_id

    def _contact(self, email: str | None, account: _Account, created: datetime) -> str:
        contact_id = self._id("003")
        self.contacts[contact_id] = {"Id": contact_id, "Email": email, "AccountId": account.account_id,
                                     "CreatedDate": sf_time(created), "SystemModstamp": sf_time(created),
                                     "IsDeleted": False}
        account.contacts.append(contact_id)
        return contact_id

    # -- people, asked for by the generator -------------------------------------------------
    def identity(self, first_seen: datetime) -> Person | None:
        """Who a new visitor is: nobody (most), a new person, or an earlier person's second device."""
        r = self.rng.random()
        second = [p for p in self.people[-15:] if p.devices == 1]
        if r < 0.08 * self.shape.people_scale and second:
            person = self.rng.choice(second)
            person.devices += 1
            return person
        if r >= 0.42 * self.shape.people_scale:
            return None
        kind = self.rng.choices(["lead", "converted", "contact"], weights=[4, 3, 3])[0]
        if kind == "contact":
            account = self._account()
            email = self._email(account)
            created = first_seen - timedelta(days=self.rng.uniform(1, 60))
            person = Person(email, contact_id=self._contact(email, account, created))
            if self.rng.random() < 0.3:  # a stale Lead with the same e-mail: the Contact wins
                self._lead(email, created + timedelta(days=self.rng.uniform(1, 20)))
        else:
            account = self._account() if kind == "converted" else None
            email = self._email(account)
            created = first_seen - timedelta(hours=self.rng.uniform(1, 240))
            person = Person(email, lead_id=self._lead(email, created))
            if account is not None:
                converted = (first_seen + timedelta(days=self.rng.uniform(0.5, 8))).replace(microsecond=0)
                person.converted_at = converted
                person.contact_id = self._contact(email, account, converted)
                self.lead_updates.append({**self.leads[person.lead_id], "IsConverted": True,
                                          "ConvertedContactId": person.contact_id,
                                          "ConvertedDate": converted.date().isoformat(),
                                          "SystemModstamp": sf_time(converted)})
        self.people.append(person)
        return person

    def shared_device(self, person: Person | None, at: datetime) -> Person | None:
        """Whose e-mail the forms of ``person``'s device carry: now and then a colleague's (a new
        Lead) on a shared device, else the person's own."""
        if person is None or self.rng.random() >= 0.3:
            return person
        email = self._email(None)
        return Person(email, lead_id=self._lead(email, at - timedelta(days=self.rng.uniform(1, 90))), devices=2)

    def form_email(self, person: Person) -> str:
        """The person's e-mail as typed into a form: mostly as stored, sometimes in capitals or padded."""
        how = self.rng.random()
        return person.email.upper() if how < 0.1 else f" {person.email} " if how < 0.2 else person.email

    # -- deals, after the visitors ---------------------------------------------------------
    def finish(self, first_touch: dict[str, datetime]) -> None:
        """Place the opportunities around the first touchpoints of each Account's Contacts
        (``first_touch``: Contact Id -> its first touchpoint), then write every file."""
        rng = self.rng
        for account in list(self.accounts):
            if rng.random() < 0.35:  # a colleague never seen on the web
                self._contact(self._email(account), account, self.start - timedelta(days=rng.uniform(1, 200)))
        touched = [a for a in self.accounts if any(c in first_touch for c in a.contacts)]
        for n, account in enumerate(touched):
            first = min(first_touch[c] for c in account.contacts if c in first_touch)
            if n == 0:  # closed before any of its people's touchpoints
                seen = [c for c in account.contacts if c in first_touch]
                self._opportunity(account, first - timedelta(days=20), first - timedelta(days=3), "lost", roles=seen)
            elif n == 1:  # its only contact role names a Contact never seen on the web
                offline = self._contact(self._email(account), account, first - timedelta(days=30))
                self._opportunity(account, first + timedelta(days=2), None, "open", roles=[offline])
            for _ in range(self.shape.deals_per_account + (0 if rng.random() < 0.8 else 1)):
                created = first + timedelta(days=rng.uniform(0.2, 10))
                outcome = rng.choices(["won", "lost", "open"], weights=[35, 25, 40])[0]
                close = created + timedelta(days=rng.uniform(1, 25))
                self._opportunity(account, created, close, outcome, roles=rng.random() < 0.8)
        # An Account nobody of the data works at: no people.
        nobody = _Account(self._id("001"), "Dormant Holdings")
        self._opportunity(nobody, self.start + timedelta(days=3), None, "open", roles=False)
        self._write()

    def _opportunity(self, account: _Account, created: datetime, close: datetime | None, outcome: str,
                     roles: bool | list[str]) -> None:
        rng = self.rng
        created = created.replace(microsecond=0)
        close = close or created + timedelta(days=rng.uniform(20, 60))
        opp_id = self._id("006")
        amount = None if rng.random() < 0.12 else Decimal(rng.randrange(50_000, 5_000_000)) / 100
        stage = {"won": "Closed Won", "lost": "Closed Lost"}.get(outcome) or rng.choice(OPEN_STAGES)
        modified = close.replace(hour=17, minute=0, second=0) if outcome != "open" else created
        self.opportunities.append({
            "Id": opp_id, "Name": f"{account.name} - {rng.choice(['Call Tracking', 'Attribution', 'Platform'])}",
            "AccountId": account.account_id, "Amount": float(amount) if amount is not None else None,
            "CurrencyIsoCode": rng.choices(CURRENCIES, weights=[3, 2])[0], "StageName": stage,
            "CreatedDate": sf_time(created), "CloseDate": close.date().isoformat(), "IsClosed": outcome != "open",
            "IsWon": outcome == "won", "SystemModstamp": sf_time(modified), "IsDeleted": False})
        if roles is False:
            return
        named = roles if isinstance(roles, list) else rng.sample(account.contacts, rng.randint(1, len(account.contacts)))
        for i, contact_id in enumerate(named):
            role_id = self._id("00K")
            role = {"Id": role_id, "OpportunityId": opp_id, "ContactId": contact_id, "Role": rng.choice(ROLES),
                    "IsPrimary": i == 0, "SystemModstamp": sf_time(created + timedelta(hours=1)), "IsDeleted": False}
            self.roles.append(role)
            if i > 0 and not self.role_updates:  # one role removed later: its Contact no longer counts
                self.role_updates.append({**role, "IsDeleted": True,
                                          "SystemModstamp": sf_time(created + timedelta(days=1))})

    def _write(self) -> None:
        def write(path: str, kind: str, records: list[dict[str, Any]]) -> None:
            target = self.landing / path
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("w") as fh:
                for r in records:
                    fh.write(json.dumps({"attributes": {"type": kind, "url": f"{API}/{kind}/{r['Id']}"}, **r},
                                        separators=(",", ":")) + "\n")

        write(FILES[0], "Lead", list(self.leads.values()))
        write(FILES[1], "Lead", self.lead_updates)
        write(FILES[2], "Contact", list(self.contacts.values()))
        write(FILES[3], "Opportunity", self.opportunities)
        write(FILES[4], "OpportunityContactRole", self.roles)
        write(FILES[5], "OpportunityContactRole", self.role_updates)

    def counts(self) -> dict[str, int]:
        """The live records written: people (Contacts, and Leads not converted), opportunities, contact roles."""
        leads = {**self.leads, **{u["Id"]: u for u in self.lead_updates}}
        deleted_roles = {u["Id"] for u in self.role_updates if u["IsDeleted"]}
        return {"leads": len(leads), "contacts": len(self.contacts),
                "converted_leads": sum(1 for r in leads.values() if r["IsConverted"]),
                "opportunities": len(self.opportunities),
                "contact_roles": sum(1 for r in self.roles if r["Id"] not in deleted_roles)}

    # -- what the rules read ---------------------------------------------------------------
    def oracle_inputs(self) -> dict[str, Any]:
        """The live records (each record's latest version) as the oracle takes them."""
        leads = {**self.leads, **{u["Id"]: u for u in self.lead_updates}}
        deleted_roles = {u["Id"] for u in self.role_updates if u["IsDeleted"]}
        return {
            "leads": [rules.Lead(r["Id"], r["Email"], _parse(r["CreatedDate"]),
                                 r["ConvertedContactId"] if r["IsConverted"] else None) for r in leads.values()],
            "contacts": [rules.Contact(r["Id"], r["Email"], r["AccountId"], _parse(r["CreatedDate"]))
                         for r in self.contacts.values()],
            "opportunities": [opportunity(r) for r in self.opportunities],
            "roles": [rules.ContactRole(r["OpportunityId"], r["ContactId"]) for r in self.roles
                      if r["Id"] not in deleted_roles],
        }


def _parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z")


def opportunity(record: dict[str, Any]) -> rules.Opportunity:
    """An Opportunity REST record as the oracle takes it (Amount read back from its JSON number)."""
    amount = record["Amount"]
    return rules.Opportunity(
        record["Id"], record["AccountId"], None if amount is None else Decimal(str(amount)).quantize(Decimal("0.01")),
        record["CurrencyIsoCode"], _parse(record["CreatedDate"]), datetime.fromisoformat(record["CloseDate"]).date(),
        bool(record["IsClosed"]), bool(record["IsWon"]))
