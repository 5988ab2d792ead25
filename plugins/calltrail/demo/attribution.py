"""The identity and attribution rules of ``docs/rules.md`` (People; Opportunities and revenue), read
independently of the dbt models, in plain Python: the demo's truth and the invariant tests use it
as the oracle the marts are compared with.

Input is what the rules start from once calls are matched to sessions:

- people: :class:`Lead` (with its conversion) and :class:`Contact` (with its Account);
- per BizibleId its :class:`Session` s and its :class:`Conversion` s (a Task or a form submit that
  makes a touchpoint, the session it owns, if any, and for a Task its ``WhoId``);
- :class:`FormSubmit` s with the e-mail they carry (every valid form submit is evidence, also a
  second submit in a session, which makes no touchpoint);
- :class:`Opportunity` s and their :class:`ContactRole` s.

:func:`attribute` gives the person links, the touchpoints with their person and their positions
over the person's merged journey, the credits per opportunity, touchpoint and model, and the
opportunities left unattributed with their reason.

Where the rules leave a choice open, this reading takes:

- the order of a journey for FT/LC/Post LC: time, a Task before a form submit, then the touchpoint
  id (as ``fct_touchpoints`` orders a visitor's conversions); the order of an opportunity's journey
  is the rules' own (time, Task, Web Form, Web Visit, then the source record's id);
- the first session of a person: the earliest of the sessions of the BizibleIds linked to them
  (on a tie, the lowest session id);
- ``custom``: its positions are those with a weight above zero, its middle every other touchpoint.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Literal

POSITIONS = ("FT", "LC", "OC", "Closed")
MIDDLE = "middle"
MODELS = ("first_touch", "lead_creation", "u_shaped", "w_shaped", "full_path", "custom")
CREDIT_PLACES = 10
_SCALE = 10**CREDIT_PLACES
_KIND_ORDER = {"task": 0, "form": 1, "visit": 2}

Kind = Literal["task", "form", "visit"]
PeopleSource = Literal["account", "roles"]


@dataclass(frozen=True)
class Lead:
    id: str
    email: str | None
    created_at: datetime
    converted_contact_id: str | None = None  # set when IsConverted


@dataclass(frozen=True)
class Contact:
    id: str
    email: str | None
    account_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class Session:
    bizible_id: str
    first_event_id: str
    start: datetime

    @property
    def session_id(self) -> str:
        return f"{self.bizible_id}:{self.first_event_id}"


@dataclass(frozen=True)
class Conversion:
    """A Task or a form submit that makes a touchpoint. ``session_id``: the session it owns (None
    for a task-only touchpoint). ``who_id``: the Task's WhoId."""

    bizible_id: str
    kind: Literal["task", "form"]
    source_id: str  # the Task Id or the form submit's event id
    at: datetime
    session_id: str | None = None
    who_id: str | None = None


@dataclass(frozen=True)
class FormSubmit:
    bizible_id: str
    email: str | None
    at: datetime


@dataclass(frozen=True)
class Opportunity:
    id: str
    account_id: str | None
    amount: Decimal | None
    currency: str | None
    created_at: datetime
    close_date: date
    is_closed: bool
    is_won: bool


@dataclass(frozen=True)
class ContactRole:
    opportunity_id: str
    contact_id: str


@dataclass(frozen=True)
class Touchpoint:
    touchpoint_id: str
    bizible_id: str
    person_id: str | None
    at: datetime
    kind: Kind
    source_id: str  # Task Id, form event id, or the session's first event id
    position: str  # FT, LC, Post LC, FT, LC or FT, Post LC
    session_id: str | None = None  # the session it owns or is (None for a task-only touchpoint)

    @property
    def origin(self) -> str:
        """As fct_touchpoints names it: task_in_session, task_only, web_form or web_visit."""
        if self.kind == "task":
            return "task_in_session" if self.session_id else "task_only"
        return "web_form" if self.kind == "form" else "web_visit"

    @property
    def holds_lc(self) -> bool:
        return self.position.endswith("LC") and not self.position.endswith("Post LC")

    @property
    def journey_order(self) -> tuple[datetime, int, str]:
        return self.at, _KIND_ORDER[self.kind], self.source_id


@dataclass(frozen=True)
class Credit:
    opportunity_id: str
    touchpoint_id: str
    person_id: str
    opportunity_positions: str  # e.g. "FT, LC"; "" for a middle touchpoint
    model: str
    credit: Decimal
    attributed_amount: Decimal | None
    currency_iso_code: str


@dataclass
class Attribution:
    links: dict[str, str]  # BizibleId -> person
    touchpoints: list[Touchpoint]
    credits: list[Credit]
    unattributed: dict[str, str]  # opportunity -> reason
    journeys: dict[str, list[Touchpoint]] = field(default_factory=dict)  # opportunity -> journey


@dataclass(frozen=True)
class Model:
    shares: Mapping[str, Fraction]  # position -> share; only the model's positions
    middle: Fraction
    middle_range: tuple[str, str] | None  # strictly between these two positions; None: everywhere


def touchpoint_id(kind: Kind, key: str) -> str:
    """The key ``fct_touchpoints`` gives a touchpoint: md5 of ``task|<Task Id>``,
    ``form|<event id>`` or ``visit|<session id>``."""
    return hashlib.md5(f"{kind}|{key}".encode()).hexdigest()


def models(custom: Mapping[str, Fraction | int | str] | None = None) -> dict[str, Model]:
    """The six models. ``custom``: a weight per position and ``middle`` (in percent, summing to 100);
    the shipped seed holds the ``full_path`` weights."""
    pct = Fraction(1, 100)
    weights = {k: Fraction(v) for k, v in (custom or {"FT": "22.5", "LC": "22.5", "OC": "22.5",
                                                      "Closed": "22.5", MIDDLE: 10}).items()}
    if sum(weights.values()) != 100:
        raise ValueError(f"the custom weights must sum to 100, got {sum(weights.values())}")
    return {
        "first_touch": Model({"FT": Fraction(1)}, Fraction(0), None),
        "lead_creation": Model({"LC": Fraction(1)}, Fraction(0), None),
        "u_shaped": Model({"FT": 40 * pct, "LC": 40 * pct}, 20 * pct, ("FT", "LC")),
        "w_shaped": Model({"FT": 30 * pct, "LC": 30 * pct, "OC": 30 * pct}, 10 * pct, ("FT", "OC")),
        "full_path": Model({p: Fraction(45, 2) * pct for p in POSITIONS}, 10 * pct, None),
        "custom": Model({p: weights.get(p, Fraction(0)) * pct for p in POSITIONS if weights.get(p, 0) > 0},
                        weights.get(MIDDLE, Fraction(0)) * pct, None),
    }


# -- identity --------------------------------------------------------------------------------------

def _normal_email(email: str | None) -> str | None:
    return (email or "").strip().lower() or None


class People:
    """The live Leads and Contacts, and who a Lead has become."""

    def __init__(self, leads: Iterable[Lead], contacts: Iterable[Contact]) -> None:
        self.leads = {x.id: x for x in leads}
        self.contacts = {x.id: x for x in contacts}
        by_email: dict[str, tuple[int, datetime, str]] = {}
        for rank, records in ((0, self.contacts.values()), (1, self.leads.values())):
            for r in records:
                email = _normal_email(r.email)
                if email is not None:
                    key = (rank, r.created_at, r.id)
                    if email not in by_email or key < by_email[email]:
                        by_email[email] = key
        self._by_email = {e: k[2] for e, k in by_email.items()}
        self.by_account: dict[str, list[str]] = defaultdict(list)
        for c in self.contacts.values():
            if c.account_id is not None:
                self.by_account[c.account_id].append(c.id)

    def person(self, record_id: str | None) -> str | None:
        """The person a Lead or Contact Id stands for (a converted Lead: its Contact); None for an Id
        that is not a live Lead or Contact of the data."""
        if record_id in self.contacts:
            return record_id
        lead = self.leads.get(record_id or "")
        if lead is None:
            return None
        if lead.converted_contact_id in self.contacts:
            return lead.converted_contact_id
        return lead.id

    def by_email(self, email: str | None) -> str | None:
        e = _normal_email(email)
        return self.person(self._by_email.get(e)) if e else None


def person_links(people: People, conversions: Iterable[Conversion], forms: Iterable[FormSubmit]) -> dict[str, str]:
    """BizibleId -> person: the latest evidence wins (ties: the lowest person Id)."""
    best: dict[str, tuple[datetime, str]] = {}

    def evidence(bid: str, at: datetime, person: str | None) -> None:
        if person is None:
            return
        current = best.get(bid)
        if current is None or at > current[0] or (at == current[0] and person < current[1]):
            best[bid] = (at, person)

    for c in conversions:
        if c.kind == "task":
            evidence(c.bizible_id, c.at, people.person(c.who_id))
    for f in forms:
        evidence(f.bizible_id, f.at, people.by_email(f.email))
    return {bid: person for bid, (_, person) in best.items()}


def _journey_position(first_touch: bool, lead_creation: bool) -> str:
    if first_touch:
        return "FT, LC" if lead_creation else "FT, Post LC"
    return "LC" if lead_creation else "Post LC"


def touchpoints(people: People, sessions: Iterable[Session], conversions: Iterable[Conversion],
                links: Mapping[str, str]) -> list[Touchpoint]:
    """Every touchpoint with its person and its position over its owner's merged journey (the
    owner: the person, or the BizibleId of an anonymous visitor)."""
    sessions_by_owner: dict[tuple[str, str], list[Session]] = defaultdict(list)
    for s in sessions:
        person = links.get(s.bizible_id)
        sessions_by_owner[("person", person) if person else ("visitor", s.bizible_id)].append(s)
    conversions_by_owner: dict[tuple[str, str], list[Conversion]] = defaultdict(list)
    for c in conversions:
        person = people.person(c.who_id) if c.kind == "task" and c.session_id is None else None
        person = person or links.get(c.bizible_id)
        conversions_by_owner[("person", person) if person else ("visitor", c.bizible_id)].append(c)
    result = []
    for owner, owned in conversions_by_owner.items():
        person = owner[1] if owner[0] == "person" else None
        owned.sort(key=lambda c: (c.at, _KIND_ORDER[c.kind], touchpoint_id(c.kind, c.source_id)))
        first = min(sessions_by_owner.get(owner, []), key=lambda s: (s.start, s.session_id), default=None)
        on_the_web = first is not None and first.start <= owned[0].at
        for n, c in enumerate(owned):
            ft = (c.session_id == first.session_id) if on_the_web and first else n == 0
            result.append(Touchpoint(touchpoint_id(c.kind, c.source_id), c.bizible_id, person, c.at, c.kind,
                                     c.source_id, _journey_position(ft, n == 0), c.session_id))
        if on_the_web and first and not any(c.session_id == first.session_id for c in owned):
            result.append(Touchpoint(touchpoint_id("visit", first.session_id), first.bizible_id, person,
                                     first.start, "visit", first.first_event_id, "FT", first.session_id))
    return result


# -- attribution -----------------------------------------------------------------------------------

def opportunity_people(opportunity: Opportunity, roles: Mapping[str, set[str]], people: People,
                       source: PeopleSource = "account") -> set[str]:
    """The Contacts of its (live) contact roles (``roles``: opportunity -> Contact Ids); without
    any, the Contacts of its Account (unless ``source`` is ``roles``)."""
    role_contacts = roles.get(opportunity.id)
    if role_contacts:
        return role_contacts & people.contacts.keys()
    if source == "account" and opportunity.account_id is not None:
        return set(people.by_account.get(opportunity.account_id, ()))
    return set()


def cutoff(opportunity: Opportunity) -> datetime | None:
    """The end of CloseDate (UTC) for a closed opportunity; None (no cut-off) for an open one."""
    if not opportunity.is_closed:
        return None
    end = datetime.combine(opportunity.close_date + timedelta(days=1), time(0))
    return end.replace(tzinfo=opportunity.created_at.tzinfo)


def journey_positions(journey: list[Touchpoint], opportunity: Opportunity) -> dict[str, int]:
    """Position -> index into the journey (in journey order); a position without a touchpoint is absent."""
    held: dict[str, int] = {"FT": 0}
    lc = [i for i, t in enumerate(journey) if t.holds_lc]
    if lc:
        held["LC"] = lc[0]
    oc = [i for i, t in enumerate(journey) if t.at <= opportunity.created_at]
    if oc:
        held["OC"] = oc[-1]
    if opportunity.is_won:
        held["Closed"] = len(journey) - 1
    return held


def exact_credits(n: int, held: Mapping[str, int], model: Model) -> list[Fraction]:
    """Each touchpoint's share of the opportunity under ``model``, as exact fractions."""
    credits = [Fraction(0)] * n
    holders = {p: i for p, i in held.items() if p in model.shares}
    if not holders:
        credits[held["FT"]] = Fraction(1)
        return credits
    for p, i in holders.items():
        credits[i] += model.shares[p]
    left = sum((share for p, share in model.shares.items() if p not in holders), Fraction(0))
    if model.middle_range is None:
        lo, hi = -1, n
    else:
        a, b = model.middle_range
        lo, hi = (held[a], held[b]) if a in held and b in held else (0, 0)
    middle = [i for i in range(lo + 1, hi) if i not in holders.values()]
    if middle:
        for i in middle:
            credits[i] += model.middle / len(middle)
    else:
        left += model.middle
    distinct = sorted(set(holders.values()))
    for i in distinct:
        credits[i] += left / len(distinct)
    return credits


def rounded_credits(exact: list[Fraction]) -> list[Decimal]:
    """Half-even to 10 places; the remainder goes to the last touchpoint with a non-zero credit."""
    if sum(exact) != 1:
        raise ValueError(f"credits sum to {sum(exact)}, not 1")
    scaled = [round(c * _SCALE) for c in exact]
    last = max(i for i, c in enumerate(exact) if c != 0)
    scaled[last] += _SCALE - sum(scaled)
    return [Decimal(s).scaleb(-CREDIT_PLACES) for s in scaled]


def positions_label(held: Mapping[str, int], i: int) -> str:
    return ", ".join(p for p in POSITIONS if held.get(p) == i)


def attribute(*, leads: Iterable[Lead], contacts: Iterable[Contact], sessions: Iterable[Session],
              conversions: Iterable[Conversion], forms: Iterable[FormSubmit],
              opportunities: Iterable[Opportunity], roles: Iterable[ContactRole],
              custom: Mapping[str, Fraction | int | str] | None = None, people_source: PeopleSource = "account",
              default_currency: str = "USD") -> Attribution:
    people = People(leads, contacts)
    sessions, conversions = list(sessions), list(conversions)
    roles_by_opportunity: dict[str, set[str]] = defaultdict(set)
    for r in roles:
        roles_by_opportunity[r.opportunity_id].add(r.contact_id)
    links = person_links(people, conversions, forms)
    tps = touchpoints(people, sessions, conversions, links)
    by_person: dict[str, list[Touchpoint]] = defaultdict(list)
    for t in tps:
        if t.person_id is not None:
            by_person[t.person_id].append(t)
    all_models = models(custom)
    credits: list[Credit] = []
    unattributed: dict[str, str] = {}
    journeys: dict[str, list[Touchpoint]] = {}
    for opp in sorted(opportunities, key=lambda o: o.id):
        who = opportunity_people(opp, roles_by_opportunity, people, people_source)
        if not who:
            unattributed[opp.id] = "no_people"
            continue
        theirs = [t for p in who for t in by_person.get(p, [])]
        if not theirs:
            unattributed[opp.id] = "no_touchpoints"
            continue
        end = cutoff(opp)
        journey = sorted((t for t in theirs if end is None or t.at < end), key=lambda t: t.journey_order)
        if not journey:
            unattributed[opp.id] = "no_touchpoints_before_cutoff"
            continue
        journeys[opp.id] = journey
        held = journey_positions(journey, opp)
        currency = opp.currency or default_currency
        for name, model in all_models.items():
            for i, credit in enumerate(rounded_credits(exact_credits(len(journey), held, model))):
                amount = None
                if opp.amount is not None:
                    with localcontext() as ctx:
                        ctx.prec = 60
                        amount = opp.amount * credit
                t = journey[i]
                credits.append(Credit(opp.id, t.touchpoint_id, t.person_id or "", positions_label(held, i), name,
                                      credit, amount, currency))
    return Attribution(links, tps, credits, unattributed, journeys)
