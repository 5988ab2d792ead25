"""A seeded generator of realistic call-tracking data, written into the landing folder.

Visitors arrive through every default channel, browse in sessions, and some phone in or fill in
a form. Each visitor follows one scenario (below); together the scenarios show every case of the
rules in ``docs/rules.md`` (its section "Each rule in the demo" maps each case to a scenario). The
first visitors take every scenario once, in the order of ``SCENARIOS``, so even a small demo shows them all;
the rest are drawn by weight. A few web rows are broken on purpose, and a tracking retry
delivers some events twice.

The rule values (the call window, the inactivity gap) and the Task field names come from the dbt
project's vars and from the settings (:meth:`RuleValues.of`): scenarios are placed relative to
them, and the recorded truth is what the rules give at those values.

Scenarios (``SCENARIOS``; W is the call window, G the inactivity gap, both 30 minutes by default):

- ``browse_only``: one or two sessions, no conversion (so no touchpoint);
- ``call_in_window``: a call less than W after the session start (``FT, LC``);
- ``call_at_the_window_edge``: a call exactly W after the session start: matched (inclusive);
- ``call_in_window_then_form``: a matched call, a form submit in a later session (``Post LC``);
- ``call_outside_window``: a call more than W after the start, 48 minutes in Marketo Measure's
  example: a task-only touchpoint, and the session a ``Web Visit`` (FT);
- ``call_next_day``: a click at 23:17 and a call at 13:05 the next day: outside the window;
- ``form_only``: a browsing session, then a session with a form submit, sometimes submitted twice
  (only the first makes a touchpoint);
- ``call_no_web``: a call from a BizibleId never seen on the web (task-only, ``FT, LC``);
- ``call_before_first_session``: a call, then the visitor's first session (which gets no touchpoint);
- ``two_calls_one_session``: two matched calls in one session: the first owns it, the second is
  a task-only touchpoint (or owns it when the first was deleted);
- ``two_calls_first_deleted``: the same, with the first call deleted: the second owns the session;
- ``call_and_form_same_second``: a form on the landing page submitted at the second of the call
  (the form submit carries the campaign URL and does not split the session): the call owns it;
- ``call_then_form_same_session``: the call owns the session; the later form makes no touchpoint;
- ``form_then_call_same_session``: the form owns the session; the matched call is task-only;
- ``call_outside_window_then_form``: a task-only call (``LC``) and a form submit in the first
  session after it, which owns that session (``FT, Post LC``);
- ``session_split_by_new_source``: within G of the last page view, a page view from another
  source starts a new session; the call is within W of it and more than W after the first start;
- ``direct_return_within_gap``: a direct page view within G does not split; the call is more than
  W after the session start (outside the window) and within W of the direct page view;
- ``gap_of_exactly_the_inactivity_limit``: the next page view exactly G later does not split;
- ``return_after_inactivity_gap``: the next page view more than G later starts a session, which
  the call matches;
- ``call_missing_bizible_id`` / ``call_malformed_bizible_id``: no touchpoint, listed for the vendor;
- ``call_upper_case_bizible_id``: upper case, hyphens and braces: normalised, then matched;
- ``call_gains_bizible_id_later``: the first version has no BizibleId, a later one has it.

Besides: calls with a blank Type, calls recognised by ``CallType`` only or by a ``Type`` with
"call" only, calls with and without the touchpoint-date field, deleted calls, e-mail and meeting
Tasks (with a BizibleId they become touchpoints too), web rows with an invalid BizibleId, a
timestamp without an offset or an unknown event type, and events delivered twice.

People and deals (:mod:`calltrail.demo.crm`, a random stream of its own, so the web events and
Tasks are what they were): about four visitors in ten are a Lead, a Lead converted to a Contact,
or a Contact (its calls name it as ``WhoId``, its forms carry its e-mail); some people come back
on a second device; a shared device now and then submits a colleague's e-mail. Opportunities are
placed around the Contacts' touchpoints: won, lost and open, in USD and EUR, some without an
Amount, with one or several contact roles or none (the Account's Contacts count), and three
that cannot be attributed (no people; no touchpoints; none before the close).

The generator records what it did in ``_demo/truth.json`` (aggregates: the scenarios, the Tasks,
the touchpoints by origin and position, the people and the unattributed opportunities with their
reason), ``_demo/truth_tasks.jsonl`` (one line per Task: its match status, touchpoint, position
over its person's journey and over the visitor's alone, person, candidate session start and
channel), ``_demo/truth_touchpoints.jsonl`` (per touchpoint, keyed as ``fct_touchpoints`` keys it:
visitor, person, origin, position), ``_demo/truth_people.jsonl`` (BizibleId -> person) and
``_demo/truth_attribution.jsonl`` (per opportunity, touchpoint and model: positions, credit,
attributed amount, currency), so tests check the pipeline against it rather than against itself.
The people's positions and credits are what :mod:`calltrail.demo.attribution` (the rules read in
Python, independently of the SQL) gives the records written; for an anonymous visitor, its
touchpoints must agree with the visitor rules below, or the generator refuses to write. Each call is placed by its scenario in a status
(matched, outside the window, no session); the truth then follows the rules over the sessions
and conversions the generator wrote (which conversion owns a session, the positions), and a
call whose status differs from the scenario's is a bug the generator refuses to write.

Output (landing folder):

- ``web_events/demo-web-events-NNNN.jsonl``: page views and form submits;
- ``salesforce/task/demo-tasks.jsonl``: Tasks as REST API records;
- ``salesforce/task/demo-task-updates.csv``: later versions, as a Data Loader export;
- ``salesforce/{lead,contact,opportunity,opportunity_contact_role}/demo-*.jsonl``: REST records
  with API field names (Leads' conversions and a deleted contact role as later versions).
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import json
import logging
import random
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO

from calltrail.dbt_project import project_var
from calltrail.demo import attribution
from calltrail.demo.crm import FILES as CRM_FILES
from calltrail.demo.crm import SHAPES, Crm, Person, Shape
from calltrail.settings import SalesforceSettings, Settings

log = logging.getLogger(__name__)

SITE = "https://www.acme-calls.example"
PAGES = ["/", "/pricing", "/product/call-tracking", "/product/attribution", "/blog/what-is-a-touchpoint",
         "/customers", "/about", "/demo"]
FORM_PAGE = "/contact"
EVENTS_PER_FILE = 1_000_000
TZ_OFFSETS = [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5)),
              timezone(timedelta(hours=5, minutes=30))]

# channel -> how the first page view of a session looks (query string, referrer).
CHANNELS: dict[str, list[tuple[str, str | None]]] = {
    "paid_search": [
        ("utm_source=google&utm_medium=cpc&utm_campaign=brand-2026&utm_term=call+tracking&gclid={click}",
         "https://www.google.com/"),
        ("utm_source=bing&utm_medium=cpc&utm_campaign=generic-2026&utm_term=call+attribution&msclkid={click}",
         "https://www.bing.com/"),
    ],
    "organic_search": [("", "https://www.google.com/"), ("", "https://duckduckgo.com/"), ("", "https://www.bing.com/")],
    "paid_social": [("utm_source=facebook&utm_medium=paid_social&utm_campaign=retargeting-q1&fbclid={click}",
                     "https://m.facebook.com/"),
                    ("utm_source=linkedin&utm_medium=paid_social&utm_campaign=abm-q1", "https://www.linkedin.com/")],
    "social": [("", "https://www.linkedin.com/feed/"), ("", "https://t.co/x1y2z3"), ("", "https://www.reddit.com/r/marketing/")],
    "email": [("utm_source=newsletter&utm_medium=email&utm_campaign=march-digest&utm_content=cta-button", None)],
    "display": [("utm_source=doubleclick&utm_medium=display&utm_campaign=awareness-banner", "https://news.example.org/")],
    "referral": [("", "https://www.g2.example/products/acme-calls/reviews"), ("", "https://partner-agency.example/tools")],
    "direct": [("", None)],
}
CHANNEL_WEIGHTS = {"paid_search": 25, "organic_search": 20, "paid_social": 10, "social": 8, "email": 10,
                   "display": 5, "referral": 8, "direct": 14}
# The marketing channel the shipped channel rules (dbt_project/seeds/channel_rules.csv) give each.
CHANNEL_NAMES = {"paid_search": "Paid Search", "organic_search": "Organic Search", "paid_social": "Paid Social",
                 "social": "Social", "email": "Email", "display": "Display", "referral": "Referral",
                 "direct": "Direct"}

# What a visitor does, with weights. Malformed BizibleIds stay rare (under 2 % of the calls with a
# BizibleId, where the format check warns) so that the demo passes every check.
SCENARIOS = {
    "browse_only": 50,
    "call_in_window": 28,
    "call_at_the_window_edge": 2,
    "call_in_window_then_form": 16,
    "call_outside_window": 14,
    "call_next_day": 6,
    "form_only": 20,
    "call_no_web": 6,
    "call_before_first_session": 6,
    "two_calls_one_session": 6,
    "two_calls_first_deleted": 2,
    "call_and_form_same_second": 4,
    "call_then_form_same_session": 2,
    "form_then_call_same_session": 2,
    "call_outside_window_then_form": 2,
    "session_split_by_new_source": 4,
    "direct_return_within_gap": 4,
    "gap_of_exactly_the_inactivity_limit": 2,
    "return_after_inactivity_gap": 2,
    "call_missing_bizible_id": 8,
    "call_malformed_bizible_id": 1,
    "call_upper_case_bizible_id": 4,
    "call_gains_bizible_id_later": 4,
}
# The scenarios in which the visitor never calls. Every other scenario has one call or two.
CALL_FREE_SCENARIOS = ("browse_only", "form_only")
# The demo's share of visitors who call (0.64): many, so that every case shows up in a small data set.
DEMO_CALL_SHARE = sum(w for k, w in SCENARIOS.items() if k not in CALL_FREE_SCENARIOS) / sum(SCENARIOS.values())
CALL_TYPES = ["Call", "Call", "Call", "Phone Call", "Inbound Call"]
VENDORS = ["CallTrackingMetrics", "CallRail", "Invoca"]
# The scenarios are placed relative to the call window and the inactivity gap; they hold for
# values in this range (minutes).
RULE_MINUTES_RANGE = (10, 720)


@dataclass(frozen=True)
class RuleValues:
    """The rule values the demo is placed around and labelled with."""

    call_window_minutes: int
    inactivity_minutes: int
    bizible_id_field: str
    touchpoint_date_field: str

    @classmethod
    def of(cls, salesforce: SalesforceSettings | None = None) -> RuleValues:
        """The dbt project's call window and inactivity gap, and the Task fields of ``salesforce``
        (the settings' defaults when none is given)."""
        sf = salesforce or SalesforceSettings()
        return cls(call_window_minutes=int(project_var("calltrail__call_window_minutes")),
                   inactivity_minutes=int(project_var("calltrail__session_inactivity_minutes")),
                   bizible_id_field=sf.bizible_id_field, touchpoint_date_field=sf.touchpoint_date_field)

    def check(self) -> None:
        lo, hi = RULE_MINUTES_RANGE
        for name in ("call_window_minutes", "inactivity_minutes"):
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise ValueError(f"the demo's scenarios are placed for a {name} of {lo} to {hi}, got {value}")

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.call_window_minutes)

    @property
    def gap(self) -> timedelta:
        return timedelta(minutes=self.inactivity_minutes)


@dataclass
class Truth:
    visitors: int = 0
    page_views: int = 0
    form_submits: int = 0
    web_rows_written: int = 0
    web_rows_bad: Counter[str] = field(default_factory=Counter)
    web_duplicate_rows: int = 0
    task_records_written: int = 0
    task_versions_in_updates: int = 0
    scenarios: Counter[str] = field(default_factory=Counter)
    tasks: Counter[str] = field(default_factory=Counter)
    touchpoints: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "visitors": self.visitors, "page_views": self.page_views, "form_submits": self.form_submits,
            "web_events_valid": self.page_views + self.form_submits,
            "web_rows_written": self.web_rows_written, "web_rows_bad": dict(sorted(self.web_rows_bad.items())),
            "web_duplicate_rows": self.web_duplicate_rows,
            "task_records_written": self.task_records_written,
            "task_versions_in_updates": self.task_versions_in_updates,
            "scenarios": dict(sorted(self.scenarios.items())), "tasks": dict(sorted(self.tasks.items())),
            "touchpoints": dict(sorted(self.touchpoints.items())),
        }


@dataclass
class _Session:
    start: datetime
    channel: str  # the CHANNELS key of its first page view
    first_event_id: str


@dataclass
class _Form:
    at: datetime
    event_id: str
    session: int  # index into the visitor's sessions
    email: str


@dataclass
class _Task:
    task_id: str
    at: datetime  # the call time: the touchpoint date, else CreatedDate
    scenario: str
    is_call: bool
    bizible_id_status: str  # valid, missing or invalid_format
    deleted: bool
    blank_type: bool
    placed: str | None  # the match status the scenario placed a call in
    who_id: str | None = None


@dataclass
class _Journey:
    """What the generator wrote for one visitor, as the rules see it."""

    sessions: list[_Session] = field(default_factory=list)
    forms: list[_Form] = field(default_factory=list)
    tasks: list[_Task] = field(default_factory=list)


_Order = tuple[datetime, int, str]


def _touchpoint_order(at: datetime, kind: str, key: str) -> _Order:
    """The journey order: time, a Task before a form submit, then the touchpoint id (an md5 hash)."""
    return at, 0 if kind == "task" else 1, hashlib.md5(f"{kind}|{key}".encode()).hexdigest()


def _position(first_touch: bool, lead_creation: bool) -> str:
    if first_touch:
        return "FT, LC" if lead_creation else "FT, Post LC"
    return "LC" if lead_creation else "Post LC"


def label(journey: _Journey, rules: RuleValues) -> tuple[dict[str, dict[str, Any]], Counter[str]]:
    """What docs/rules.md gives the visitor's Tasks (match status, touchpoint, position, candidate
    session) and the visitor's touchpoints counted by origin and position."""
    starts = [s.start for s in journey.sessions]
    labels: dict[str, dict[str, Any]] = {}
    in_session: dict[int, list[tuple[_Order, _Order, str, str]]] = {}
    conversions: list[tuple[_Order, str, int | None, str | None]] = []
    for t in journey.tasks:
        if t.deleted or t.bizible_id_status != "valid":
            labels[t.task_id] = {"status": None if t.deleted else t.bizible_id_status, "touchpoint": "none",
                                 "position": None, "session": None}
            continue
        candidate = bisect.bisect_right(starts, t.at) - 1  # the latest session started at or before the call
        if candidate < 0:
            status = "no_session"
        else:
            status = "matched" if t.at - starts[candidate] <= rules.window else "outside_window"
        if t.placed is not None and status != t.placed:
            raise RuntimeError(f"demo scenario {t.scenario} placed Task {t.task_id} {t.placed}, but the rules "
                               f"give {status}: the generator is wrong")
        labels[t.task_id] = {"status": status, "session": candidate if candidate >= 0 else None, "position": None}
        order = _touchpoint_order(t.at, "task", t.task_id)
        if status == "matched":
            in_session.setdefault(candidate, []).append(((t.at, 0, t.task_id), order, "task", t.task_id))
        else:
            labels[t.task_id]["touchpoint"] = "task_only"
            conversions.append((order, "task_only", None, t.task_id))
    first_forms: dict[int, _Form] = {}
    for f in journey.forms:  # only a session's first form submit can own it
        if f.session not in first_forms or (f.at, f.event_id) < (first_forms[f.session].at, first_forms[f.session].event_id):
            first_forms[f.session] = f
    for s, f in first_forms.items():
        in_session.setdefault(s, []).append(((f.at, 1, f.event_id), _touchpoint_order(f.at, "form", f.event_id),
                                             "form", f.event_id))
    for s, entries in in_session.items():
        entries.sort()  # the session's first conversion owns it; on a tie, the Task
        for rank, (_, order, kind, key) in enumerate(entries):
            if kind == "task":
                labels[key]["touchpoint"] = "session" if rank == 0 else "task_only_same_session"
                if rank > 0:
                    conversions.append((order, "task_only", None, key))
            if rank == 0:
                conversions.append((order, "task_in_session" if kind == "task" else "web_form", s,
                                    key if kind == "task" else None))
                if kind == "form":
                    labels[key] = {"touchpoint": "session", "session": s}
    counts: Counter[str] = Counter()
    if not conversions:
        return labels, counts
    conversions.sort()
    on_the_web = bool(starts) and starts[0] <= conversions[0][0][0]
    for n, (_, origin, session, task_id) in enumerate(conversions):
        first_touch = session == 0 if on_the_web else n == 0
        position = _position(first_touch, n == 0)
        counts[f"{origin}|{position}"] += 1
        if task_id is not None:
            labels[task_id]["position"] = position
    if on_the_web and not any(session == 0 for _, _, session, _ in conversions):
        counts["web_visit|FT"] += 1
    return labels, counts


def _touchpoint_truth(t: attribution.Touchpoint) -> dict[str, Any]:
    return {"touchpoint_id": t.touchpoint_id, "bizible_id": t.bizible_id, "person_id": t.person_id,
            "touchpoint_origin": t.origin, "touchpoint_position": t.position,
            "touchpoint_at": t.at.isoformat(timespec="milliseconds"), "source_id": t.source_id}


def scenario_weights(call_share: float = DEMO_CALL_SHARE) -> dict[str, float]:
    """SCENARIOS reweighted so that ``call_share`` of the visitors call; each group keeps its mix."""
    if not 0 <= call_share <= 1:
        raise ValueError(f"call_share must be between 0 and 1, got {call_share}")
    if call_share == DEMO_CALL_SHARE:
        return dict(SCENARIOS)  # the integer weights, so the demo's bytes do not depend on rounding
    calling = sum(w for k, w in SCENARIOS.items() if k not in CALL_FREE_SCENARIOS)
    free = sum(SCENARIOS.values()) - calling
    return {k: w * ((1 - call_share) / free if k in CALL_FREE_SCENARIOS else call_share / calling)
            for k, w in SCENARIOS.items()}


def _ms(value: datetime) -> datetime:
    """A time as a web event carries it: to the millisecond."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _sf_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class _Writer:
    """Streams events into numbered JSON-lines files and Tasks into their files."""

    def __init__(self, landing: Path) -> None:
        self.web_dir = landing / "web_events"
        self.task_dir = landing / "salesforce" / "task"
        self.truth_dir = landing / "_demo"
        for d in (self.web_dir, self.task_dir, self.truth_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._web: TextIO | None = None
        self._web_rows = 0
        self._web_files = 0
        self.tasks = (self.task_dir / "demo-tasks.jsonl").open("w")
        self.updates_fh = (self.task_dir / "demo-task-updates.csv").open("w", newline="")
        self.updates: csv.DictWriter | None = None
        self.truth_tasks = (self.truth_dir / "truth_tasks.jsonl").open("w")
        self.truth_touchpoints = (self.truth_dir / "truth_touchpoints.jsonl").open("w")

    def web(self, row: dict[str, Any]) -> None:
        if self._web is None or self._web_rows >= EVENTS_PER_FILE:
            if self._web:
                self._web.close()
            self._web_files += 1
            self._web = (self.web_dir / f"demo-web-events-{self._web_files:04d}.jsonl").open("w")
            self._web_rows = 0
        self._web.write(json.dumps(row, separators=(",", ":")) + "\n")
        self._web_rows += 1

    def task(self, record: dict[str, Any]) -> None:
        self.tasks.write(json.dumps({"attributes": {"type": "Task", "url": f"/services/data/v59.0/sobjects/Task/{record['Id']}"},
                                     **record}, separators=(",", ":")) + "\n")

    def task_update(self, record: dict[str, Any]) -> None:
        if self.updates is None:  # Data Loader writes API names in upper case
            self.updates = csv.DictWriter(self.updates_fh, fieldnames=[k.upper() for k in record],
                                          quoting=csv.QUOTE_ALL)
            self.updates.writeheader()
        self.updates.writerow({k.upper(): "" if v is None else str(v).lower() if isinstance(v, bool) else v
                               for k, v in record.items()})

    def close(self) -> None:
        for fh in (self._web, self.tasks, self.updates_fh, self.truth_tasks, self.truth_touchpoints):
            if fh:
                fh.close()


class Generator:
    def __init__(self, landing: Path, visitors: int, seed: int, start: datetime, days: int,
                 call_share: float = DEMO_CALL_SHARE, rules: RuleValues | None = None,
                 crm_shape: Shape = SHAPES["demo"], people_truth: bool = True) -> None:
        self.rng = random.Random(seed)
        self.weights = scenario_weights(call_share)
        # Every scenario that can occur at this call share is shown once first, in order.
        self.first_scenarios = [k for k, w in self.weights.items() if w > 0]
        self.call_share = call_share
        self.rules = rules or RuleValues.of()
        self.rules.check()
        self.landing = landing
        self.visitors = visitors
        self.start = start
        self.days = days
        self.truth = Truth()
        self.out = _Writer(landing)
        self.crm = Crm(landing, seed, start, days, crm_shape)
        # Without the people's truth, nothing of a person's visitors is kept but each Contact's
        # first conversion (where the opportunities go).
        self.people_truth = people_truth
        self._first_touch: dict[str, datetime] = {}
        self._person: Person | None = None
        self._form_person: Person | None = None
        # The people's visitors, kept for the end: each visitor's first session (all the rules need
        # of the sessions), conversions and form submits; their Task lines wait in a scratch file.
        self._people_sessions: list[attribution.Session] = []
        self._people_conversions: list[attribution.Conversion] = []
        self._people_forms: list[attribution.FormSubmit] = []
        self._people_tasks = (self.out.truth_dir / ".people_tasks.jsonl").open("w+")
        self._event_no = 0
        self._task_no = 0
        self._journey = _Journey()
        self._scenario = ""

    # -- helpers -------------------------------------------------------------------------------
    def _bizible_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def _event_id(self) -> str:
        self._event_no += 1
        return f"ev-{self._event_no:010d}"

    def _task_id(self) -> str:
        self._task_no += 1
        return f"00T{self._task_no:012d}AAA"

    def _iso(self, value: datetime) -> str:
        tz = self.rng.choice(TZ_OFFSETS)
        return value.astimezone(tz).isoformat(timespec="milliseconds")

    def _minutes(self, lo: float, hi: float) -> timedelta:
        return timedelta(minutes=self.rng.uniform(lo, hi))

    def _event(self, bid: str, kind: str, at: datetime, page: str, referrer: str | None, **extra: Any) -> str:
        event_id = self._event_id()
        self.out.web({"event_id": event_id, "bizible_id": bid, "event_type": kind,
                      "occurred_at": self._iso(at), "page_url": page, "referrer_url": referrer, **extra})
        self.truth.web_rows_written += 1
        if kind == "page_view":
            self.truth.page_views += 1
        else:
            self.truth.form_submits += 1
        return event_id

    def _page(self, bid: str, at: datetime, referrer: str | None = None) -> str:
        """A page view that brings no source (an internal click, or direct without a referrer)."""
        page = f"{SITE}{self.rng.choice(PAGES)}"
        self._event(bid, "page_view", at, page, referrer)
        return page

    def _form(self, bid: str, at: datetime, page: str, referrer: str | None) -> None:
        """A form submit in the visitor's latest session."""
        at = _ms(at)
        who = self._form_person
        email = self.crm.form_email(who) if who else f"visitor{self._event_no + 1}@example.com"
        event_id = self._event(bid, "form_submit", at, page, referrer, email=email, form_url=f"{SITE}{FORM_PAGE}")
        self._journey.forms.append(_Form(at, event_id, len(self._journey.sessions) - 1, email))

    def _session(self, bid: str, at: datetime, channel: str, *, pages: int | None = None,
                 form: bool = False) -> datetime:
        """Write one session; return the time of its last event. Internal clicks never split it."""
        at = _ms(at)
        query, referrer = self.rng.choice(CHANNELS[channel])
        query = query.replace("{click}", f"{self.rng.getrandbits(64):016x}")
        landing = self.rng.choice(PAGES)
        url = f"{SITE}{landing}" + (f"?{query}" if query else "")
        first_event = self._event(bid, "page_view", at, url, referrer)
        self._journey.sessions.append(_Session(at, channel, first_event))
        previous, t = url, at
        for _ in range((pages or self.rng.randint(1, 5)) - 1):
            t += timedelta(seconds=self.rng.randint(20, 300))
            previous = self._page(bid, t, previous)
        if form:
            t += timedelta(seconds=self.rng.randint(30, 240))
            self._event(bid, "page_view", t, f"{SITE}{FORM_PAGE}", previous)
            t += timedelta(seconds=self.rng.randint(30, 180))
            self._form(bid, t, f"{SITE}{FORM_PAGE}", previous)
        return t

    def _call(self, bid: str | None, at: datetime, placed: str, *, versions: str = "single",
              deleted: bool | None = None) -> None:
        """Write a call Task at call time ``at``. ``placed`` is the match status its scenario put it
        in (matched, outside_window, no_session; missing or invalid_format for a bad BizibleId).
        ``deleted``: None lets 2 % of single-version calls be deleted later."""
        rules = self.rules
        at = at.replace(microsecond=0)  # Salesforce times are to the second
        task_id = self._task_id()
        blank_type = self.rng.random() < 0.12
        has_tp_date = self.rng.random() < 0.85
        created = at + timedelta(seconds=self.rng.randint(5, 90)) if has_tp_date else at
        # Which field makes it a call: most vendors set TaskSubtype and CallType; some only
        # CallType; some only a Type with "call" in it (which is then never blank).
        how = self.rng.random()
        subtype, call_type = ("Call", "Inbound") if how < 0.8 else (None, "Inbound") if how < 0.9 else ("Task", None)
        blank_type = blank_type and call_type is not None
        record = {
            # An anonymous visitor's call names a Lead that is not in the data (an Id alone links nothing).
            "Id": task_id, "WhoId": self._person.who_id(at) if self._person else f"00Q{self._task_no:012d}AAA",
            "WhatId": None,
            "Subject": f"Inbound call via {self.rng.choice(VENDORS)}",
            "Type": None if blank_type else self.rng.choice(CALL_TYPES),
            "TaskSubtype": subtype, "CallType": call_type,
            "CallDurationInSeconds": self.rng.randint(20, 900), "CallObject": f"ctm-{self._task_no}",
            "CallDisposition": self.rng.choice(["Answered", "Voicemail", "Answered"]), "Status": "Completed",
            "ActivityDate": at.date().isoformat(), "CreatedDate": _sf_time(created),
            "LastModifiedDate": _sf_time(created), "SystemModstamp": _sf_time(created), "IsDeleted": False,
            rules.bizible_id_field: bid,
            rules.touchpoint_date_field: _sf_time(at) if has_tp_date else None,
        }
        if deleted is None:
            deleted = versions == "single" and self.rng.random() < 0.02
        if versions == "gains_id":  # the vendor writes the id in a later update
            self.out.task({**record, rules.bizible_id_field: None})
        else:
            self.out.task(record)
        self.truth.task_records_written += 1
        later = created + timedelta(hours=self.rng.randint(1, 48))
        if versions == "gains_id" or deleted:
            update = {**record, "LastModifiedDate": _sf_time(later), "SystemModstamp": _sf_time(later),
                      "IsDeleted": deleted}
            self.out.task_update(update)
            self.truth.task_versions_in_updates += 1
        status = placed if placed in ("missing", "invalid_format") else "valid"
        self._journey.tasks.append(_Task(task_id, at, self._scenario, True, status, deleted, blank_type,
                                         None if status != "valid" else placed, record["WhoId"]))

    def _other_task(self, bid: str | None, at: datetime) -> None:
        """An e-mail or meeting Task: not a call, so a missing BizibleId is not chased."""
        task_id = self._task_id()
        stamp = _sf_time(at)
        self.out.task({"Id": task_id, "WhoId": None, "WhatId": None, "Subject": "Follow-up e-mail",
                       "Type": self.rng.choice(["Email", "Meeting"]), "TaskSubtype": "Email", "CallType": None,
                       "CallDurationInSeconds": None, "CallObject": None, "CallDisposition": None,
                       "Status": "Completed", "ActivityDate": at.date().isoformat(), "CreatedDate": stamp,
                       "LastModifiedDate": stamp, "SystemModstamp": stamp, "IsDeleted": False,
                       self.rules.bizible_id_field: bid, self.rules.touchpoint_date_field: None})
        self.truth.task_records_written += 1
        self._journey.tasks.append(_Task(task_id, at, self._scenario, False, "valid" if bid else "missing",
                                         False, False, None))

    def _bad_web_row(self, n: int, bid: str, at: datetime) -> None:
        """Every 100th visitor has a broken row; the reasons take turns."""
        problems = {
            "timestamp_without_offset:occurred_at": {"occurred_at": at.strftime("%Y-%m-%dT%H:%M:%S")},
            "invalid_event_type": {"event_type": "scroll"},
            "missing_bizible_id": {"bizible_id": None},
            "invalid_bizible_id": {"bizible_id": f"{bid[:31]}g"},  # 32 characters, one not hex
        }
        reason = sorted(problems)[n // 100 % len(problems)]
        row = {"event_id": self._event_id(), "bizible_id": bid, "event_type": "page_view",
               "occurred_at": self._iso(at), "page_url": f"{SITE}/", "referrer_url": None, **problems[reason]}
        self.out.web(row)
        self.truth.web_rows_written += 1
        self.truth.web_rows_bad[reason] += 1

    def _record(self, n: int, bid: str, journey: _Journey) -> None:
        """The visitor's truth: per Task and in the aggregates. An anonymous visitor's is written at
        once; a person's waits for the end (their journey may span several visitors)."""
        labels, touchpoints = label(journey, self.rules)
        sessions = [attribution.Session(bid, s.first_event_id, s.start) for s in journey.sessions]
        conversions = [
            attribution.Conversion(bid, "task", t.task_id, t.at,
                                   sessions[labels[t.task_id]["session"]].session_id
                                   if labels[t.task_id]["touchpoint"] == "session" else None, t.who_id)
            for t in journey.tasks if labels[t.task_id]["touchpoint"] not in ("none", None)]
        conversions += [attribution.Conversion(bid, "form", f.event_id, f.at, sessions[f.session].session_id)
                        for f in journey.forms if f.event_id in labels]
        forms = [attribution.FormSubmit(bid, f.email, f.at) for f in journey.forms]
        counts = self.truth.tasks
        lines = []
        for t in journey.tasks:
            lab = labels[t.task_id]
            session = journey.sessions[lab["session"]] if lab["session"] is not None else None
            counts["call_tasks" if t.is_call else "other_tasks"] += 1
            if t.is_call:
                counts["deleted"] += t.deleted
                if not t.deleted:
                    counts[f"live_calls_{lab['status']}"] += 1
                    counts["live_calls_blank_type"] += t.blank_type
                    if t.bizible_id_status == "valid":
                        counts["live_calls_valid_bizible_id"] += 1
                        counts[f"live_calls_touchpoint_{lab['touchpoint']}"] += 1
            lines.append({
                "task_id": t.task_id, "visitor": n, "scenario": t.scenario, "is_call": t.is_call, "deleted": t.deleted,
                "blank_type": t.blank_type, "expected_match_status": lab["status"],
                "expected_touchpoint": lab["touchpoint"], "expected_position": lab["position"],
                "expected_visitor_position": lab["position"], "person_id": None,
                "expected_session_start": session.start.isoformat(timespec="milliseconds") if session else None,
                "expected_channel": CHANNEL_NAMES[session.channel] if lab["touchpoint"] == "session" else None,
                "call_time": _sf_time(t.at)})
        if self._person is None and self._form_person is None:
            # Anonymous: the oracle's journey must be the visitor's, as label() gives it.
            found = attribution.touchpoints(attribution.People([], []), sessions, conversions, {})
            seen = Counter(f"{t.origin}|{t.position}" for t in found)
            if seen != touchpoints:
                raise RuntimeError(f"visitor {n}: the attribution rules give touchpoints {dict(seen)}, the "
                                   f"visitor rules {dict(touchpoints)}: the generator is wrong")
            self.truth.touchpoints.update(touchpoints)
            self._write_truth(lines, found)
        elif not self.people_truth:
            self._write_truth(lines, [])
            contact = self._person.contact_id if self._person else None
            if contact and conversions:
                at = min(min(c.at for c in conversions), min((x.start for x in sessions), default=conversions[0].at))
                self._first_touch[contact] = min(at, self._first_touch.get(contact, at))
        else:
            self._people_sessions += sessions[:1]
            self._people_conversions += conversions
            self._people_forms += forms
            for line in lines:
                self._people_tasks.write(json.dumps(line) + "\n")

    def _write_truth(self, lines: list[dict[str, Any]], touchpoints: list[attribution.Touchpoint]) -> None:
        for line in lines:
            self.out.truth_tasks.write(json.dumps(line) + "\n")
        for t in touchpoints:
            self.out.truth_touchpoints.write(json.dumps(_touchpoint_truth(t)) + "\n")

    def _people(self) -> dict[str, Any]:
        """The people's journeys (every visitor one of them is), the opportunities placed around
        them, and what the attribution rules give them; written as truth."""
        if not self.people_truth:
            self._people_tasks.close()
            (self.out.truth_dir / ".people_tasks.jsonl").unlink()
            self.crm.finish(self._first_touch)
            return {**self.crm.counts(), "people_truth": False}
        sessions, conversions, forms = self._people_sessions, self._people_conversions, self._people_forms
        records = self.crm.oracle_inputs()
        people = attribution.People(records["leads"], records["contacts"])
        links = attribution.person_links(people, conversions, forms)
        first_touch: dict[str, datetime] = {}
        for t in attribution.touchpoints(people, sessions, conversions, links):
            if t.person_id in people.contacts:
                first_touch[t.person_id] = min(t.at, first_touch.get(t.person_id, t.at))
        self.crm.finish(first_touch)
        records = self.crm.oracle_inputs()
        result = attribution.attribute(sessions=sessions, conversions=conversions, forms=forms, **records)
        by_source = {t.source_id: t for t in result.touchpoints if t.kind == "task"}
        self._people_tasks.seek(0)
        for raw in self._people_tasks:
            line = json.loads(raw)
            t = by_source.get(line["task_id"])
            if t is not None:
                line["expected_position"], line["person_id"] = t.position, t.person_id
            self.out.truth_tasks.write(json.dumps(line) + "\n")
        self._people_tasks.close()
        (self.out.truth_dir / ".people_tasks.jsonl").unlink()
        self.truth.touchpoints.update(f"{t.origin}|{t.position}" for t in result.touchpoints)
        self._write_truth([], result.touchpoints)
        with (self.out.truth_dir / "truth_people.jsonl").open("w") as fh:
            for bid, person in sorted(result.links.items()):
                fh.write(json.dumps({"bizible_id": bid, "person_id": person}) + "\n")
        with (self.out.truth_dir / "truth_attribution.jsonl").open("w") as fh:
            for c in result.credits:
                fh.write(json.dumps({
                    "opportunity_id": c.opportunity_id, "touchpoint_id": c.touchpoint_id, "person_id": c.person_id,
                    "opportunity_positions": c.opportunity_positions, "model": c.model,
                    "credit": format(c.credit, "f"),
                    "attributed_amount": None if c.attributed_amount is None else format(c.attributed_amount, "f"),
                    "currency_iso_code": c.currency_iso_code}) + "\n")
        devices = Counter(result.links.values())
        return {
            "leads": len(records["leads"]), "contacts": len(records["contacts"]),
            "converted_leads": sum(1 for x in records["leads"] if x.converted_contact_id),
            "linked_bizible_ids": len(result.links), "people_with_touchpoints": len(
                {t.person_id for t in result.touchpoints if t.person_id}),
            "people_on_two_devices": sum(1 for k in devices.values() if k > 1),
            "opportunities": len(records["opportunities"]),
            "opportunities_attributed": len(result.journeys),
            "unattributed": dict(sorted(result.unattributed.items())),
            "credit_rows": len(result.credits),
        }

    # -- visitors ------------------------------------------------------------------------------
    def _channel(self, *, other_than: tuple[str, ...] = ()) -> str:
        channels = [c for c in CHANNEL_WEIGHTS if c not in other_than]
        return self.rng.choices(channels, weights=[CHANNEL_WEIGHTS[c] for c in channels])[0]

    def _after_first_within_second(self, first: datetime, second: datetime) -> datetime:
        """A call time more than W after ``first`` and at most W after ``second`` (> ``first``)."""
        w, d = self.rules.window, second - first
        return first + max(d, w) + min(d, w) * self.rng.uniform(0.1, 0.9)

    def visitor(self, n: int) -> None:
        if n < len(self.first_scenarios):
            scenario = self.first_scenarios[n]
        else:
            scenario = self.rng.choices(list(self.weights), weights=list(self.weights.values()))[0]
        self._scenario = scenario
        self._journey = _Journey()
        self.truth.scenarios[scenario] += 1
        bid = self._bizible_id()
        # Sessions start between 08:00 and 20:00 UTC on a random day of the period.
        day = self.start + timedelta(days=self.rng.randrange(self.days))
        t0 = day.replace(hour=self.rng.randint(8, 19), minute=self.rng.randrange(60), second=self.rng.randrange(60))
        # Who the visitor is (from the CRM's own random stream): the calls' WhoId, the forms' e-mail.
        self._person = self.crm.identity(t0)
        self._form_person = self._person
        if scenario in ("call_in_window_then_form", "call_outside_window_then_form"):
            self._form_person = self.crm.shared_device(self._person, t0)
        channel = self._channel()
        w, gap = self.rules.window, self.rules.gap
        minutes = self._minutes
        window_minutes = self.rules.call_window_minutes

        if scenario == "browse_only":
            end = self._session(bid, t0, channel)
            if self.rng.random() < 0.5:
                self._session(bid, end + timedelta(days=self.rng.randint(1, 5)), "direct")
        elif scenario in ("call_in_window", "call_in_window_then_form", "call_upper_case_bizible_id",
                          "call_gains_bizible_id_later"):
            self._session(bid, t0, channel, pages=self.rng.randint(1, 4))
            call_bid = bid
            if scenario == "call_upper_case_bizible_id":
                call_bid = f"{{{bid[:8]}-{bid[8:12]}-{bid[12:16]}-{bid[16:20]}-{bid[20:]}}}".upper()
            self._call(call_bid, t0 + minutes(1, window_minutes - 1.5), "matched",
                       versions="gains_id" if scenario == "call_gains_bizible_id_later" else "single")
            if scenario == "call_in_window_then_form":
                self._session(bid, t0 + timedelta(days=self.rng.randint(1, 6)), self._channel(), form=True)
        elif scenario == "call_at_the_window_edge":
            self._session(bid, t0, channel, pages=self.rng.randint(1, 3))
            self._call(bid, t0 + w, "matched", deleted=False)
        elif scenario == "call_outside_window":
            end = self._session(bid, t0, channel, pages=self.rng.randint(1, 3))
            # 48 minutes after the click: the documented 12:17 -> 13:05 case, and later ones.
            documented = timedelta(minutes=48) > w and self.rng.random() < 0.3
            call = t0 + (timedelta(minutes=48) if documented else w + minutes(2, 210))
            self._call(bid, max(call, end + timedelta(minutes=2)), "outside_window")
        elif scenario == "call_next_day":
            at = t0.replace(hour=23, minute=17, second=0)
            self._session(bid, at, channel, pages=1)
            self._call(bid, (at + timedelta(days=1)).replace(hour=13, minute=5), "outside_window")
        elif scenario == "form_only":
            end = self._session(bid, t0, channel)
            end = self._session(bid, end + timedelta(days=self.rng.randint(1, 4)), self._channel(), form=True)
            if self.rng.random() < 0.3:  # submitted twice: only the first makes a touchpoint
                self._form(bid, end + timedelta(seconds=self.rng.randint(20, 120)), f"{SITE}{FORM_PAGE}",
                           f"{SITE}{FORM_PAGE}")
        elif scenario == "call_no_web":
            self._call(bid, t0, "no_session")
        elif scenario == "call_before_first_session":
            self._call(bid, t0, "no_session")
            self._session(bid, t0 + timedelta(hours=self.rng.randint(2, 72)), channel)
        elif scenario in ("two_calls_one_session", "two_calls_first_deleted"):
            self._session(bid, t0, channel, pages=2)
            first = t0 + w * self.rng.uniform(0.05, 0.4)
            self._call(bid, first, "matched", deleted=True if scenario == "two_calls_first_deleted" else None)
            self._call(bid, first + w * self.rng.uniform(0.1, 0.5), "matched",
                       deleted=False if scenario == "two_calls_first_deleted" else None)
        elif scenario == "call_and_form_same_second":
            # A form on the landing page: its submit carries the page's campaign URL and referrer,
            # and does not split the session (form submits split only on inactivity).
            source = self.rng.choice(["paid_search", "paid_social", "email", "display"])
            query, referrer = self.rng.choice(CHANNELS[source])
            url = f"{SITE}{FORM_PAGE}?" + query.replace("{click}", f"{self.rng.getrandbits(64):016x}")
            first_event = self._event(bid, "page_view", t0, url, referrer)
            self._journey.sessions.append(_Session(t0, source, first_event))
            at = (t0 + minutes(1, 8)).replace(microsecond=0)
            self._form(bid, at, url, referrer)
            self._call(bid, at, "matched", deleted=False)
        elif scenario == "call_then_form_same_session":
            end = self._session(bid, t0, channel, pages=2)
            call = end + minutes(1, 4)
            self._call(bid, call, "matched", deleted=False)
            page = call + minutes(0.5, 1)
            self._event(bid, "page_view", page, f"{SITE}{FORM_PAGE}", f"{SITE}/")
            self._form(bid, page + minutes(0.5, 3), f"{SITE}{FORM_PAGE}", f"{SITE}/")
        elif scenario == "form_then_call_same_session":
            end = self._session(bid, t0, channel, pages=1, form=True)
            self._call(bid, end + minutes(1, 3), "matched", deleted=False)
        elif scenario == "call_outside_window_then_form":
            self._session(bid, t0, channel, pages=1)
            call = t0 + w + minutes(1, 5)
            self._call(bid, call, "outside_window", deleted=False)
            t, previous = t0, None
            while t < call:  # the visitor keeps browsing: the session goes on
                t += minutes(3, 8)
                previous = self._page(bid, t, previous or f"{SITE}/")
            page = t + minutes(0.5, 1)
            self._event(bid, "page_view", page, f"{SITE}{FORM_PAGE}", previous)
            self._form(bid, page + minutes(0.5, 3), f"{SITE}{FORM_PAGE}", previous)
        elif scenario == "session_split_by_new_source":
            end = self._session(bid, t0, channel, pages=2)
            second = end + gap * self.rng.uniform(0.1, 0.9)
            # Any other channel but direct brings a source with another signature.
            self._session(bid, second, self._channel(other_than=(channel, "direct")), pages=self.rng.randint(1, 3))
            self._call(bid, self._after_first_within_second(t0, second), "matched", deleted=False)
        elif scenario == "direct_return_within_gap":
            end = self._session(bid, t0, self._channel(other_than=("direct",)), pages=2)
            back = end + gap * self.rng.uniform(0.1, 0.9)
            self._page(bid, back)
            self._call(bid, self._after_first_within_second(t0, back), "outside_window", deleted=False)
        elif scenario in ("gap_of_exactly_the_inactivity_limit", "return_after_inactivity_gap"):
            self._session(bid, t0, channel, pages=1)
            exact = scenario == "gap_of_exactly_the_inactivity_limit"
            later = t0 + gap + (timedelta(0) if exact else timedelta(seconds=self.rng.randint(1, 600)))
            self._page(bid, later, f"{SITE}/")  # an internal referrer: it brings no source
            if not exact:
                self._journey.sessions.append(_Session(later, "direct", f"ev-{self._event_no:010d}"))
            self._call(bid, self._after_first_within_second(t0, later), "outside_window" if exact else "matched",
                       deleted=False)
        elif scenario == "call_missing_bizible_id":
            self._session(bid, t0, channel, pages=2)
            self._call(self.rng.choice([None, "", "   "]), t0 + minutes(1, 20), "missing")
        elif scenario == "call_malformed_bizible_id":
            self._session(bid, t0, channel, pages=2)
            self._call(self.rng.choice([bid[:20], bid + "zz", "n/a", "undefined"]), t0 + minutes(1, 20),
                       "invalid_format")
        if self.rng.random() < 0.08:
            self._other_task(None if self.rng.random() < 0.7 else bid, t0 + timedelta(days=1))
        if n % 100 == 99:
            self._bad_web_row(n, bid, t0)
        if n % 97 == 96:  # a tracking retry delivers the same event twice; the lake keeps the first copy
            self.truth.web_duplicate_rows += 1
            self.truth.web_rows_written += 1
            self.out.web({"event_id": f"ev-{self._event_no:010d}", "bizible_id": bid, "event_type": "page_view",
                          "occurred_at": self._iso(t0), "page_url": f"{SITE}/", "referrer_url": None})
        self._record(n, bid, self._journey)

    def run(self) -> Truth:
        try:
            for n in range(self.visitors):
                self.visitor(n)
                self.truth.visitors += 1
                if self.visitors >= 100_000 and (n + 1) % 100_000 == 0:
                    log.info("generated %d of %d visitors", n + 1, self.visitors)
            people = self._people()
        finally:
            self.out.close()
        r = self.rules
        truth = {**self.truth.as_dict(), "call_share": self.call_share, "people": people,
                 "rules": {"call_window_minutes": r.call_window_minutes, "inactivity_minutes": r.inactivity_minutes,
                           "bizible_id_field": r.bizible_id_field, "touchpoint_date_field": r.touchpoint_date_field}}
        if self.crm.shape != SHAPES["demo"]:
            truth["crm_shape"] = next(k for k, v in SHAPES.items() if v == self.crm.shape)
        (self.out.truth_dir / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
        return self.truth


DEMO_FILES = ("web_events/demo-web-events-*.jsonl", "salesforce/task/demo-tasks.jsonl",
              "salesforce/task/demo-task-updates.csv", *CRM_FILES, "_demo")


def clear(landing: Path) -> None:
    """Remove earlier demo output (and only that) from the landing folder."""
    for pattern in DEMO_FILES:
        for path in landing.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


# Above this many visitors the people's truth (the attribution oracle over every person's
# journeys: truth_people.jsonl, truth_attribution.jsonl, the people's touchpoints and positions) is
# not written unless asked for: it holds every person's journeys in memory (about 5 GB and 18 min
# at make bench's 2.3 million visitors).
PEOPLE_TRUTH_MAX_VISITORS = 250_000


def generate(landing: Path, *, visitors: int = Settings.demo_visitors, seed: int = 7,
             start: datetime = datetime(2026, 11, 1, tzinfo=UTC), days: int = 21,
             call_share: float = DEMO_CALL_SHARE, rules: RuleValues | None = None,
             crm_shape: str = "demo", people_truth: bool | None = None) -> Truth:
    """Write the demo data set for ``visitors`` visitors, ``call_share`` of whom call; the same
    arguments give the same bytes. ``rules``: the call window, the inactivity gap and the Task
    fields (by default the dbt project's vars and the settings' default fields). ``crm_shape``:
    how many people and deals (:data:`calltrail.demo.crm.SHAPES`). ``people_truth``: whether to
    work out and write the people's truth (default: up to :data:`PEOPLE_TRUTH_MAX_VISITORS`
    visitors); without it the people's Tasks carry their visitor's position and no person, and
    truth.json's ``people`` holds the record counts only."""
    if visitors < 1:
        raise ValueError("visitors must be at least 1")
    scenario_weights(call_share)  # checks it before anything is cleared
    rules = rules or RuleValues.of()
    rules.check()
    if crm_shape not in SHAPES:
        raise ValueError(f"crm_shape must be one of {', '.join(SHAPES)}, got {crm_shape!r}")
    if people_truth is None:
        people_truth = visitors <= PEOPLE_TRUTH_MAX_VISITORS
    clear(landing)
    return Generator(landing, visitors, seed, start, days, call_share, rules, SHAPES[crm_shape], people_truth).run()


def iter_truth_tasks(landing: Path) -> Iterator[dict[str, Any]]:
    with (landing / "_demo" / "truth_tasks.jsonl").open() as fh:
        for line in fh:
            yield json.loads(line)


def _truth_lines(landing: Path, name: str) -> Iterator[dict[str, Any]]:
    with (landing / "_demo" / name).open() as fh:
        for line in fh:
            yield json.loads(line)


def iter_truth_touchpoints(landing: Path) -> Iterator[dict[str, Any]]:
    """Every touchpoint the rules give the demo: its id (as fct_touchpoints keys it), visitor,
    person (None for an anonymous visitor), origin, position over the person's journey, time."""
    return _truth_lines(landing, "truth_touchpoints.jsonl")


def iter_truth_credits(landing: Path) -> Iterator[dict[str, Any]]:
    """One line per opportunity, touchpoint and model: positions, credit and attributed amount
    (decimal strings; the amount None when the opportunity has none), currency."""
    return _truth_lines(landing, "truth_attribution.jsonl")


def truth_links(landing: Path) -> dict[str, str]:
    """BizibleId -> person, for every BizibleId the evidence links."""
    return {x["bizible_id"]: x["person_id"] for x in _truth_lines(landing, "truth_people.jsonl")}
