"""A seeded generator of realistic call-tracking data, written into the landing folder.

Visitors arrive through every default channel, browse in sessions, and some phone in: inside
the 30-minute window, outside it, before their first visit, or without ever being seen on the web.
Call-tracking Tasks come with blank Types, missing or malformed BizibleIds, later updates and
deletions; a few web rows are broken on purpose. The generator records what it did in
``_demo/truth.json`` (aggregates) and ``_demo/truth_tasks.jsonl`` (one line per Task) so tests can
check the pipeline's numbers against it rather than against itself.

Output (landing folder):

- ``web_events/demo-web-events-NNNN.jsonl``: page views and form submits;
- ``salesforce/task/demo-tasks.jsonl``: Tasks as REST API records;
- ``salesforce/task/demo-task-updates.csv``: later versions, as a Data Loader export.
"""

from __future__ import annotations

import csv
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
from calltrail.settings import Settings

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

SCENARIOS = {  # what a visitor does, with weights
    "browse_only": 26,
    "call_in_window": 24,
    "call_in_window_then_form": 8,
    "call_outside_window": 9,
    "call_next_day": 3,
    "form_only": 10,
    "call_no_web": 4,
    "call_before_first_session": 3,
    "two_calls_one_session": 3,
    "call_missing_bizible_id": 4,
    "call_malformed_bizible_id": 2,
    "call_upper_case_bizible_id": 2,
    "call_gains_bizible_id_later": 2,
}
# The scenarios in which the visitor never calls. Every other scenario has one call or two.
CALL_FREE_SCENARIOS = ("browse_only", "form_only")
# The demo's share of visitors who call (0.64): many, so that every case shows up in a small data set.
DEMO_CALL_SHARE = sum(w for k, w in SCENARIOS.items() if k not in CALL_FREE_SCENARIOS) / sum(SCENARIOS.values())
CALL_TYPES = ["Call", "Call", "Call", "Phone Call", "Inbound Call"]
VENDORS = ["CallTrackingMetrics", "CallRail", "Invoca"]


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "visitors": self.visitors, "page_views": self.page_views, "form_submits": self.form_submits,
            "web_events_valid": self.page_views + self.form_submits,
            "web_rows_written": self.web_rows_written, "web_rows_bad": dict(sorted(self.web_rows_bad.items())),
            "web_duplicate_rows": self.web_duplicate_rows,
            "task_records_written": self.task_records_written,
            "task_versions_in_updates": self.task_versions_in_updates,
            "scenarios": dict(sorted(self.scenarios.items())), "tasks": dict(sorted(self.tasks.items())),
        }


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
        for fh in (self._web, self.tasks, self.updates_fh, self.truth_tasks):
            if fh:
                fh.close()


class Generator:
    def __init__(self, landing: Path, visitors: int, seed: int, start: datetime, days: int,
                 call_share: float = DEMO_CALL_SHARE) -> None:
        self.rng = random.Random(seed)
        self.weights = scenario_weights(call_share)
        self.call_share = call_share
        self.landing = landing
        self.visitors = visitors
        self.start = start
        self.days = days
        self.truth = Truth()
        self.out = _Writer(landing)
        self._event_no = 0
        self._task_no = 0

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

    def _event(self, bid: str, kind: str, at: datetime, page: str, referrer: str | None, **extra: Any) -> None:
        self.out.web({"event_id": self._event_id(), "bizible_id": bid, "event_type": kind,
                      "occurred_at": self._iso(at), "page_url": page, "referrer_url": referrer, **extra})
        self.truth.web_rows_written += 1
        if kind == "page_view":
            self.truth.page_views += 1
        else:
            self.truth.form_submits += 1

    def _session(self, bid: str, at: datetime, channel: str, *, pages: int | None = None,
                 form: bool = False) -> datetime:
        """Write one session; return the time of its last event. Internal clicks never split it."""
        query, referrer = self.rng.choice(CHANNELS[channel])
        query = query.replace("{click}", f"{self.rng.getrandbits(64):016x}")
        landing = self.rng.choice(PAGES)
        url = f"{SITE}{landing}" + (f"?{query}" if query else "")
        self._event(bid, "page_view", at, url, referrer)
        previous, t = url, at
        for _ in range((pages or self.rng.randint(1, 5)) - 1):
            t += timedelta(seconds=self.rng.randint(20, 300))
            page = f"{SITE}{self.rng.choice(PAGES)}"
            self._event(bid, "page_view", t, page, previous)
            previous = page
        if form:
            t += timedelta(seconds=self.rng.randint(30, 240))
            self._event(bid, "page_view", t, f"{SITE}{FORM_PAGE}", previous)
            t += timedelta(seconds=self.rng.randint(30, 180))
            self._event(bid, "form_submit", t, f"{SITE}{FORM_PAGE}", previous,
                        email=f"visitor{self._event_no}@example.com", form_url=f"{SITE}{FORM_PAGE}")
        return t

    def _call(self, bid: str | None, at: datetime, expected: str, scenario: str, *,
              kind: str = "session", versions: str = "single") -> None:
        """Write a call Task. ``expected`` is the match status the rules must give it."""
        task_id = self._task_id()
        blank_type = self.rng.random() < 0.12
        has_tp_date = self.rng.random() < 0.85
        created = at + timedelta(seconds=self.rng.randint(5, 90)) if has_tp_date else at
        record = {
            "Id": task_id, "WhoId": f"00Q{self._task_no:012d}AAA", "WhatId": None,
            "Subject": f"Inbound call via {self.rng.choice(VENDORS)}",
            "Type": None if blank_type else self.rng.choice(CALL_TYPES),
            "TaskSubtype": "Call", "CallType": "Inbound",
            "CallDurationInSeconds": self.rng.randint(20, 900), "CallObject": f"ctm-{self._task_no}",
            "CallDisposition": self.rng.choice(["Answered", "Voicemail", "Answered"]), "Status": "Completed",
            "ActivityDate": at.date().isoformat(), "CreatedDate": _sf_time(created),
            "LastModifiedDate": _sf_time(created), "SystemModstamp": _sf_time(created), "IsDeleted": False,
            "bizible2__BizibleId__c": bid,
            "bizible2__Bizible_Touchpoint_Date__c": _sf_time(at) if has_tp_date else None,
        }
        deleted = versions == "single" and self.rng.random() < 0.02
        if versions == "gains_id":  # the vendor writes the id in a later update
            self.out.task({**record, "bizible2__BizibleId__c": None})
            self.truth.task_records_written += 1
        else:
            self.out.task(record)
            self.truth.task_records_written += 1
        later = created + timedelta(hours=self.rng.randint(1, 48))
        if versions == "gains_id" or deleted:
            update = {**record, "LastModifiedDate": _sf_time(later), "SystemModstamp": _sf_time(later),
                      "IsDeleted": deleted}
            self.out.task_update(update)
            self.truth.task_versions_in_updates += 1
        self.truth.tasks["call_tasks"] += 1
        self.truth.tasks["deleted"] += deleted
        if not deleted:
            self.truth.tasks[f"live_calls_{expected}"] += 1
            self.truth.tasks["live_calls_blank_type"] += blank_type
            if expected in project_var("calltrail__match_statuses"):
                self.truth.tasks["live_calls_valid_bizible_id"] += 1
                self.truth.tasks[f"live_calls_touchpoint_{kind if expected == 'matched' else 'task_only'}"] += 1
        self.out.truth_tasks.write(json.dumps({
            "task_id": task_id, "scenario": scenario, "deleted": deleted, "blank_type": blank_type,
            "expected_match_status": expected, "expected_touchpoint": kind if expected == "matched" else (
                "task_only" if expected in ("outside_window", "no_session") else "none"),
            "call_time": _sf_time(at)}) + "\n")

    def _other_task(self, bid: str | None, at: datetime) -> None:
        """An e-mail or meeting Task: not a call, so a missing BizibleId is not chased."""
        task_id = self._task_id()
        stamp = _sf_time(at)
        self.out.task({"Id": task_id, "WhoId": None, "WhatId": None, "Subject": "Follow-up e-mail",
                       "Type": self.rng.choice(["Email", "Meeting"]), "TaskSubtype": "Email", "CallType": None,
                       "CallDurationInSeconds": None, "CallObject": None, "CallDisposition": None,
                       "Status": "Completed", "ActivityDate": at.date().isoformat(), "CreatedDate": stamp,
                       "LastModifiedDate": stamp, "SystemModstamp": stamp, "IsDeleted": False,
                       "bizible2__BizibleId__c": bid, "bizible2__Bizible_Touchpoint_Date__c": None})
        self.truth.task_records_written += 1
        self.truth.tasks["other_tasks"] += 1

    def _bad_web_rows(self, bid: str, at: datetime) -> None:
        problems = {
            "timestamp_without_offset:occurred_at": {"occurred_at": at.strftime("%Y-%m-%dT%H:%M:%S")},
            "invalid_event_type": {"event_type": "scroll"},
            "missing_bizible_id": {"bizible_id": None},
        }
        reason = self.rng.choice(sorted(problems))
        row = {"event_id": self._event_id(), "bizible_id": bid, "event_type": "page_view",
               "occurred_at": self._iso(at), "page_url": f"{SITE}/", "referrer_url": None, **problems[reason]}
        self.out.web(row)
        self.truth.web_rows_written += 1
        self.truth.web_rows_bad[reason] += 1

    # -- visitors ------------------------------------------------------------------------------
    def _channel(self) -> str:
        return self.rng.choices(list(CHANNEL_WEIGHTS), weights=list(CHANNEL_WEIGHTS.values()))[0]

    def visitor(self, n: int) -> None:
        scenario = self.rng.choices(list(self.weights), weights=list(self.weights.values()))[0]
        self.truth.scenarios[scenario] += 1
        bid = self._bizible_id()
        # Sessions start between 08:00 and 20:00 UTC on a random day of the period.
        day = self.start + timedelta(days=self.rng.randrange(self.days))
        t0 = day.replace(hour=self.rng.randint(8, 19), minute=self.rng.randrange(60), second=self.rng.randrange(60))
        channel = self._channel()

        def minutes(lo: float, hi: float) -> timedelta:
            return timedelta(minutes=self.rng.uniform(lo, hi))

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
            self._call(call_bid, t0 + minutes(1, 28.5), "matched", scenario,
                       versions="gains_id" if scenario == "call_gains_bizible_id_later" else "single")
            if scenario == "call_in_window_then_form":
                self._session(bid, t0 + timedelta(days=self.rng.randint(1, 6)), self._channel(), form=True)
        elif scenario == "call_outside_window":
            end = self._session(bid, t0, channel, pages=self.rng.randint(1, 3))
            # 48 minutes after the click: the documented 12:17 -> 13:05 case, and later ones.
            call = t0 + (timedelta(minutes=48) if self.rng.random() < 0.3 else minutes(32, 240))
            self._call(bid, max(call, end + timedelta(minutes=2)), "outside_window", scenario)
        elif scenario == "call_next_day":
            at = t0.replace(hour=23, minute=17, second=0)
            self._session(bid, at, channel, pages=1)
            self._call(bid, (at + timedelta(days=1)).replace(hour=13, minute=5), "outside_window", scenario)
        elif scenario == "form_only":
            end = self._session(bid, t0, channel)
            self._session(bid, end + timedelta(days=self.rng.randint(1, 4)), self._channel(), form=True)
        elif scenario == "call_no_web":
            self._call(bid, t0, "no_session", scenario)
        elif scenario == "call_before_first_session":
            self._call(bid, t0, "no_session", scenario)
            self._session(bid, t0 + timedelta(hours=self.rng.randint(2, 72)), channel)
        elif scenario == "two_calls_one_session":
            self._session(bid, t0, channel, pages=2)
            first = t0 + minutes(2, 12)
            self._call(bid, first, "matched", scenario)
            self._call(bid, first + minutes(3, 14), "matched", scenario, kind="task_only_same_session")
        elif scenario == "call_missing_bizible_id":
            self._session(bid, t0, channel, pages=2)
            self._call(self.rng.choice([None, "", "   "]), t0 + minutes(1, 20), "missing", scenario)
        elif scenario == "call_malformed_bizible_id":
            self._session(bid, t0, channel, pages=2)
            self._call(self.rng.choice([bid[:20], bid + "zz", "n/a", "undefined"]), t0 + minutes(1, 20),
                       "invalid_format", scenario)
        if self.rng.random() < 0.08:
            self._other_task(None if self.rng.random() < 0.7 else bid, t0 + timedelta(days=1))
        if n % 150 == 149:
            self._bad_web_rows(bid, t0)
        if n % 97 == 96:  # a tracking retry delivers the same event twice
            self.truth.web_duplicate_rows += 1
            self.truth.web_rows_written += 1
            self.out.web({"event_id": f"ev-{self._event_no:010d}", "bizible_id": bid, "event_type": "page_view",
                          "occurred_at": self._iso(t0), "page_url": f"{SITE}/", "referrer_url": None})

    def run(self) -> Truth:
        try:
            for n in range(self.visitors):
                self.visitor(n)
                self.truth.visitors += 1
                if self.visitors >= 100_000 and (n + 1) % 100_000 == 0:
                    log.info("generated %d of %d visitors", n + 1, self.visitors)
        finally:
            self.out.close()
        truth = {**self.truth.as_dict(), "call_share": self.call_share}
        (self.out.truth_dir / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
        return self.truth


DEMO_FILES = ("web_events/demo-web-events-*.jsonl", "salesforce/task/demo-tasks.jsonl",
              "salesforce/task/demo-task-updates.csv", "_demo")


def clear(landing: Path) -> None:
    """Remove earlier demo output (and only that) from the landing folder."""
    for pattern in DEMO_FILES:
        for path in landing.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def generate(landing: Path, *, visitors: int = Settings.demo_visitors, seed: int = 7,
             start: datetime = datetime(2026, 11, 1, tzinfo=UTC), days: int = 21,
             call_share: float = DEMO_CALL_SHARE) -> Truth:
    """Write the demo data set for ``visitors`` visitors, ``call_share`` of whom call; the same
    arguments give the same bytes."""
    if visitors < 1:
        raise ValueError("visitors must be at least 1")
    scenario_weights(call_share)  # checks it before anything is cleared
    clear(landing)
    return Generator(landing, visitors, seed, start, days, call_share).run()


def iter_truth_tasks(landing: Path) -> Iterator[dict[str, Any]]:
    with (landing / "_demo" / "truth_tasks.jsonl").open() as fh:
        for line in fh:
            yield json.loads(line)
