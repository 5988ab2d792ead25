"""Trend comparisons: when a metric's move against recent runs is an alert; and, on a real lake, dbt
build on DuckDB and audit, the trend over each run's new rows."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from calltrail import settings as settings_module
from calltrail.airflow.run_context import RunInfo
from calltrail.quality.trends import compare
from calltrail.quality.window import Window
from calltrail.settings import Settings, TrendSettings
from calltrail.tasks import quality as gates
from tests.airflow_env import calltrail_env
from tests.quality.helpers import build

T = TrendSettings(factor=2.0, min_change=0.05, runs=7, min_runs=3)
W = Window(days=7, until=datetime(2026, 12, 2, 6, 0), min_rows=50)


def severities(current, history, t=T, window=W):
    return {o.check: o.severity for o in compare(current, history, t, window)}


def test_no_comparison_before_enough_runs_are_recorded():
    assert severities({"match_rate_7d": 0.1}, {"match_rate_7d": [0.6, 0.6]}) == {}


def test_a_drop_beyond_the_factor_warns_and_a_steady_value_does_not():
    history = {"match_rate_7d": [0.62, 0.60, 0.65, 0.61]}
    assert severities({"match_rate_7d": 0.25}, history) == {"trend_match_rate_7d": "warn"}
    assert severities({"match_rate_7d": 0.45}, history) == {"trend_match_rate_7d": "ok"}


def test_small_shares_need_an_absolute_change_too():
    history = {"missing_bizible_id_share_7d": [0.01, 0.012, 0.011]}
    assert severities({"missing_bizible_id_share_7d": 0.03}, history) == {"trend_missing_bizible_id_share_7d": "ok"}
    assert severities({"missing_bizible_id_share_7d": 0.40}, history) == {
        "trend_missing_bizible_id_share_7d": "warn"}


def test_row_counts_alert_on_a_collapse_and_on_a_flood():
    history = {"web_events_7d": [10_000, 10_400, 10_900]}
    assert severities({"web_events_7d": 3_000}, history) == {"trend_web_events_7d": "warn"}
    assert severities({"web_events_7d": 30_000}, history) == {"trend_web_events_7d": "warn"}
    assert severities({"web_events_7d": 11_500}, history) == {"trend_web_events_7d": "ok"}


def test_severity_is_configuration():
    t = TrendSettings(factor=2.0, min_change=0.05, runs=7, min_runs=3, severity="error")
    assert severities({"match_rate_7d": 0.1}, {"match_rate_7d": [0.6, 0.6, 0.6]}, t) == {"trend_match_rate_7d": "error"}


def test_the_alert_names_the_window_and_a_changed_window_starts_a_new_baseline():
    history = {"calls_7d": [500, 520, 510]}
    [outcome] = compare({"calls_7d": 40}, history, T, W)
    assert outcome.observed == "call Tasks in the last 7 days (since 2026-11-25 06:00 UTC): 40 in this run", outcome
    fortnight = Window(days=14, until=W.until, min_rows=50)
    assert severities({"calls_14d": 40}, history, window=fortnight) == {}  # no 14-day history yet


# --- Over each run's new rows: a real lake, dbt build on DuckDB and audit --------------------------

AS_OF = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)  # the audits' "now" for the window
HISTORY_DAYS = 30
CALLS_PER_DAY = 300  # 2,100 calls in the 7-day window: a batch of 120 barely moves it
BATCH = 120  # above the default minimum of 100 rows a share needs
SITE = "https://www.acme-calls.example"


def _sf(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def write_calls(landing: Path, name: str, calls: list[tuple[int, datetime, bool]]) -> None:
    """Landing files ``name`` with one call Task per (number, call time, lacks the BizibleId), each
    ten minutes after a web visit with its BizibleId (so a call that keeps its id is matched)."""
    web, tasks = landing / "web_events", landing / "salesforce" / "task"
    web.mkdir(parents=True, exist_ok=True)
    tasks.mkdir(parents=True, exist_ok=True)
    with (web / f"{name}.jsonl").open("w") as events, (tasks / f"{name}.jsonl").open("w") as out:
        for n, call_at, lacks in calls:
            bizible_id = f"{n:032x}"
            events.write(json.dumps({
                "event_id": f"ev-{n:08d}", "bizible_id": bizible_id, "event_type": "page_view",
                "occurred_at": (call_at - timedelta(minutes=10)).isoformat(timespec="milliseconds"),
                "page_url": f"{SITE}/pricing?utm_source=google&utm_medium=cpc&utm_campaign=brand",
                "referrer_url": "https://www.google.com/"}) + "\n")
            out.write(json.dumps({
                "attributes": {"type": "Task", "url": f"/services/data/v59.0/sobjects/Task/00T{n:012d}AAA"},
                "Id": f"00T{n:012d}AAA", "WhoId": None, "WhatId": None, "Subject": "Inbound call via CallRail",
                "Type": "Call", "TaskSubtype": "Call", "CallType": "Inbound", "CallDurationInSeconds": 120,
                "CallObject": f"ctm-{n}", "CallDisposition": "Answered", "Status": "Completed",
                "ActivityDate": call_at.date().isoformat(), "CreatedDate": _sf(call_at),
                "LastModifiedDate": _sf(call_at), "SystemModstamp": _sf(call_at), "IsDeleted": False,
                "bizible2__BizibleId__c": None if lacks else bizible_id,
                "bizible2__Bizible_Touchpoint_Date__c": _sf(call_at)}) + "\n")


def batch(number: int, lacks: Callable[[int], bool]) -> list[tuple[int, datetime, bool]]:
    """BATCH new calls in the hours before AS_OF; the i-th lacks the BizibleId when ``lacks(i)``."""
    start = AS_OF - timedelta(hours=6 - number)
    first = 10_000_000 * number
    return [(first + i, start + timedelta(seconds=20 * i), lacks(i)) for i in range(BATCH)]


@pytest.fixture(scope="module")
def month_of_calls(tmp_path_factory) -> Path:
    """A lake and build with HISTORY_DAYS of CALLS_PER_DAY calls, every 20th without the BizibleId."""
    tmp = tmp_path_factory.mktemp("new_rows")
    settings = settings_module.load(calltrail_env(tmp))
    start = (AS_OF - timedelta(days=HISTORY_DAYS)).replace(hour=0)
    calls = [(d * CALLS_PER_DAY + i + 1, start + timedelta(days=d, minutes=4 * i + 10), (d * CALLS_PER_DAY + i) % 20 == 0)
             for d in range(HISTORY_DAYS) for i in range(CALLS_PER_DAY)]
    write_calls(settings.landing_dir, "history", [c for c in calls if c[1] <= AS_OF - timedelta(hours=6)])
    build(settings)
    return tmp / "data"


@pytest.fixture(scope="module")
def normal_batches(month_of_calls, tmp_path_factory) -> Path:
    """A copy of the lake, audited once (the first run: no new rows to measure), then three runs that
    each bring a normal batch (one of 20 calls without the BizibleId): the new-rows baseline."""
    tmp = tmp_path_factory.mktemp("normal_batches")
    shutil.copytree(month_of_calls, tmp / "data", ignore=shutil.ignore_patterns("airflow"))
    s = settings_module.load(calltrail_env(tmp))
    assert gates.audit(s, RunInfo("calltrail_transform", "run_0"), as_of=AS_OF)["failed"] == []
    for number in (1, 2, 3):
        write_calls(s.landing_dir, f"batch-{number}", batch(number, lambda i: i % 20 == 0))
        build(s)
        summary = gates.audit(s, RunInfo("calltrail_transform", f"run_{number}"), as_of=AS_OF)
        assert summary["failed"] == [], f"a normal batch alerted: {summary['failed']}"
    return tmp / "data"


def runs_with_normal_batches(normal_batches: Path, tmp_path: Path) -> Settings:
    """This test's own copy of the runs after the three normal batches."""
    shutil.copytree(normal_batches, tmp_path / "data")
    return settings_module.load(calltrail_env(tmp_path))


def recorded(s: Settings, run_id: str) -> dict[str, float | None]:
    con = duckdb.connect(str(s.warehouse), read_only=True)
    try:
        return dict(con.execute("select metric, value from quality.run_metrics where run_id = ?", [run_id]).fetchall())
    finally:
        con.close()


def measured_at(s: Settings, run_id: str) -> datetime:
    con = duckdb.connect(str(s.warehouse), read_only=True)
    try:
        return con.execute("select max(measured_at) from quality.run_metrics where run_id = ?", [run_id]).fetchone()[0]
    finally:
        con.close()


def alerts_in(s: Settings) -> list[dict]:
    return [json.loads(line) for line in s.alerts_file.read_text().splitlines()] if s.alerts_file.exists() else []


def logged(caplog, check: str) -> str:
    lines = [r.getMessage() for r in caplog.records if f"/{check}: observed" in r.getMessage()]
    assert len(lines) == 1, f"expected one logged outcome of {check}, saw {lines}"
    return lines[0]


def test_a_small_batch_of_calls_without_bizible_id_raises_the_new_rows_alert_before_the_week_moves(
        normal_batches, tmp_path, caplog):
    s = runs_with_normal_batches(normal_batches, tmp_path)
    assert "missing_bizible_id_share_new" not in recorded(s, "run_0"), "the first run has no previous run"
    caplog.set_level(logging.INFO, logger="calltrail.quality")
    write_calls(s.landing_dir, "batch-bad", batch(4, lambda i: i % 5 != 0))  # 96 of 120 lack the BizibleId
    build(s)
    caplog.clear()  # only this run's outcomes

    summary = gates.audit(s, RunInfo("calltrail_transform", "bad_batch"), as_of=AS_OF)

    assert summary["errors"] == 0  # every threshold holds, over all time and over the week: the trend warns
    alerts = alerts_in(s)
    assert [a["check"] for a in alerts] == ["trend_missing_bizible_id_share_new"], alerts
    previous = measured_at(s, "run_3")
    assert alerts[0]["observed"] == (f"calls loaded since the previous run at {previous:%Y-%m-%d %H:%M} UTC: "
                                     f"80.0% of {BATCH} lack a (valid) BizibleId"), alerts[0]["observed"]
    assert alerts[0]["severity"] == "warn" and alerts[0]["run_id"] == "bad_batch"
    # The week's share moved by less than the 5-point minimum change: its trend and threshold stay quiet.
    week_before, week_now = recorded(s, "run_3")["missing_bizible_id_share_7d"], recorded(
        s, "bad_batch")["missing_bizible_id_share_7d"]
    assert 0 < week_now - week_before < 0.05, (week_before, week_now)
    assert logged(caplog, "trend_missing_bizible_id_share_7d").startswith("[ok] ")
    assert logged(caplog, "call_bizible_id_population_recent").startswith("[ok] ")
    # 24 calls of the batch keep a valid BizibleId: too few for the new-rows match rate, recorded unknown.
    figures = recorded(s, "bad_batch")
    assert figures["match_rate_new"] is None and figures["calls_new"] == BATCH


def test_runs_with_normal_new_rows_and_a_quiet_run_raise_no_alert(normal_batches, tmp_path, caplog):
    s = runs_with_normal_batches(normal_batches, tmp_path)
    caplog.set_level(logging.INFO, logger="calltrail.quality")
    write_calls(s.landing_dir, "batch-4", batch(4, lambda i: i % 12 == 0))  # 10 of 120: within the normal spread
    build(s)
    caplog.clear()  # only this run's outcomes

    summary = gates.audit(s, RunInfo("calltrail_transform", "normal_batch"), as_of=AS_OF)

    assert (summary["errors"], summary["warnings"], summary["failed"]) == (0, 0, [])
    assert alerts_in(s) == []
    judged = logged(caplog, "trend_missing_bizible_id_share_new")  # judged against three runs, not skipped
    assert judged.startswith(f"[ok] trend/trend_missing_bizible_id_share_new: observed calls loaded since the "
                             f"previous run at {measured_at(s, 'run_3'):%Y-%m-%d %H:%M} UTC: 8.3% of {BATCH} "
                             "lack a (valid) BizibleId"), judged
    assert logged(caplog, "trend_match_rate_new").startswith("[ok] ")

    caplog.clear()
    quiet = gates.audit(s, RunInfo("calltrail_transform", "quiet_hour"), as_of=AS_OF)  # nothing new loaded

    assert quiet["failed"] == [] and alerts_in(s) == []
    figures = recorded(s, "quiet_hour")
    assert figures["calls_new"] == 0 and figures["missing_bizible_id_share_new"] is None, figures
    assert not [r for r in caplog.records if "trend_missing_bizible_id_share_new: observed" in r.getMessage()]


def test_the_quarantined_rows_recorded_for_a_run_are_those_written_since_the_previous_run(tmp_path):
    """For the report page's trend line: the lines of the quarantine files written after the
    previous recorded run; on a first run, every quarantined row in the lake."""
    import os

    from calltrail.quality.trends import QUARANTINED_ROWS_NEW, PreviousRun, quarantined_rows_since

    previous_at = datetime(2026, 12, 1, 10, 0)
    old = tmp_path / "quarantine" / "web_events" / "old.csv.aaaa.jsonl"
    new = tmp_path / "quarantine" / "salesforce" / "task" / "source=file" / "new.csv.bbbb.jsonl"
    for path, lines, at in ((old, 3, previous_at - timedelta(hours=1)), (new, 2, previous_at + timedelta(minutes=5))):
        path.parent.mkdir(parents=True)
        path.write_text("".join(json.dumps({"reason": "bad", "n": i}) + "\n" for i in range(lines)))
        stamp = at.replace(tzinfo=UTC).timestamp()
        os.utime(path, (stamp, stamp))
    previous = PreviousRun(run_id="run_1", measured_at=previous_at, loaded_through=previous_at)

    assert quarantined_rows_since(tmp_path, previous) == {QUARANTINED_ROWS_NEW: 2.0}
    assert quarantined_rows_since(tmp_path, None) == {QUARANTINED_ROWS_NEW: 5.0}
