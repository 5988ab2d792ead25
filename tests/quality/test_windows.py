"""Checks that stay sharp as history grows: six months of normal calls, then a week in which the
call-tracking vendor stops writing the BizibleId on most calls. The data goes through the real
ingestion, dbt build on DuckDB and Great Expectations audit."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from calltrail import settings as settings_module
from calltrail.airflow.run_context import RunInfo
from calltrail.quality.outcome import DataQualityError
from calltrail.settings import Settings
from calltrail.tasks import quality as gates
from tests.airflow_env import calltrail_env
from tests.quality.helpers import build

AS_OF = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)  # the audit's "now"
OUTAGE_START = AS_OF - timedelta(days=7)  # the last week: 2026-11-25 06:00 onwards
HISTORY_START = AS_OF - timedelta(days=190)
CALLS_PER_DAY = 20  # 140 a week, above the default minimum of 100 a window needs
SITE = "https://www.acme-calls.example"


def _sf(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def write_landing(landing: Path, *, outage: bool) -> dict[str, int]:
    """One web visit and, ten minutes later, one call per visitor, CALLS_PER_DAY a day from
    HISTORY_START to AS_OF. Every 20th call lacks the BizibleId (5 %, a normal account); with
    ``outage``, four of five calls from OUTAGE_START on lack it too. Returns what was written."""
    web, tasks = landing / "web_events", landing / "salesforce" / "task"
    web.mkdir(parents=True)
    tasks.mkdir(parents=True)
    counts = {"calls": 0, "missing": 0, "recent_calls": 0, "recent_missing": 0}
    with (web / "site-events.jsonl").open("w") as events, (tasks / "vendor-calls.jsonl").open("w") as calls:
        day, n = HISTORY_START.replace(hour=0, minute=0), 0
        while day < AS_OF:
            for i in range(CALLS_PER_DAY):
                n += 1
                bizible_id = f"{n:032x}"
                visit = day + timedelta(hours=8, minutes=30 * i)
                call_at = visit + timedelta(minutes=10)
                if call_at > AS_OF:
                    continue
                recent = call_at >= OUTAGE_START
                lacks = n % 20 == 0 or (outage and recent and i % 5 != 0)
                events.write(json.dumps({
                    "event_id": f"ev-{n:08d}", "bizible_id": bizible_id, "event_type": "page_view",
                    "occurred_at": visit.isoformat(timespec="milliseconds"),
                    "page_url": f"{SITE}/pricing?utm_source=google&utm_medium=cpc&utm_campaign=brand",
                    "referrer_url": "https://www.google.com/"}) + "\n")
                calls.write(json.dumps({
                    "attributes": {"type": "Task", "url": f"/services/data/v59.0/sobjects/Task/00T{n:012d}AAA"},
                    "Id": f"00T{n:012d}AAA", "WhoId": None, "WhatId": None, "Subject": "Inbound call via CallRail",
                    "Type": "Call", "TaskSubtype": "Call", "CallType": "Inbound", "CallDurationInSeconds": 120,
                    "CallObject": f"ctm-{n}", "CallDisposition": "Answered", "Status": "Completed",
                    "ActivityDate": call_at.date().isoformat(), "CreatedDate": _sf(call_at),
                    "LastModifiedDate": _sf(call_at), "SystemModstamp": _sf(call_at), "IsDeleted": False,
                    "bizible2__BizibleId__c": None if lacks else bizible_id,
                    "bizible2__Bizible_Touchpoint_Date__c": _sf(call_at)}) + "\n")
                counts["calls"] += 1
                counts["missing"] += lacks
                counts["recent_calls"] += recent
                counts["recent_missing"] += recent and lacks
            day += timedelta(days=1)
    return counts


@pytest.fixture(scope="module")
def histories(tmp_path_factory) -> dict[str, tuple[Path, dict[str, int]]]:
    """Two lakes and builds: six months of normal calls with a normal last week, and with an outage week."""
    out = {}
    for name in ("normal", "outage"):
        tmp = tmp_path_factory.mktemp(name)
        settings = settings_module.load(calltrail_env(tmp))
        written = write_landing(settings.landing_dir, outage=name == "outage")
        build(settings)
        out[name] = (tmp, written)
    return out


def settings_for(histories, name: str, tmp_path: Path, **env: str) -> tuple[Settings, dict[str, int]]:
    source, written = histories[name]
    shutil.copytree(source / "data", tmp_path / "data", ignore=shutil.ignore_patterns("airflow"))
    return settings_module.load(calltrail_env(tmp_path, **env)), written


def alerts_in(settings: Settings) -> list[dict]:
    if not settings.alerts_file.exists():
        return []
    return [json.loads(line) for line in settings.alerts_file.read_text().splitlines()]


def audit_the_weeks_before(settings: Settings) -> None:
    """Three daily runs before the outage week make the trend baseline (all pass, nothing alerts)."""
    for days_before in (3, 2, 1):
        summary = gates.audit(settings, RunInfo("calltrail_transform", f"day_{days_before}"),
                              as_of=OUTAGE_START - timedelta(days=days_before))
        assert summary["failed"] == [], f"a run in the normal history alerted: {summary['failed']}"


def judged(caplog, check: str) -> str:
    """The logged outcome of ``check`` (every outcome is logged, passed or not)."""
    lines = [r.getMessage() for r in caplog.records if f"/{check}: observed" in r.getMessage()]
    assert len(lines) == 1, f"expected one logged outcome of {check}, saw {lines}"
    return lines[0]


def test_a_week_of_calls_without_bizible_id_after_six_months_fails_the_run_and_the_alert_names_the_window(
        histories, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="calltrail.quality")
    s, written = settings_for(histories, "outage", tmp_path)
    share_all_time = written["missing"] / written["calls"]
    assert share_all_time < 0.10, "the fixture must keep the all-time share under the 10 % warning"
    assert share_all_time - 0.05 < 0.05, "an all-time trend figure must stay within the 5-point minimum change"
    audit_the_weeks_before(s)
    caplog.clear()

    with pytest.raises(DataQualityError, match="call_bizible_id_population_recent") as failure:
        gates.audit(s, RunInfo("calltrail_transform", "outage_week"), as_of=AS_OF)

    assert "the marts are not published" in str(failure.value)
    alerts = {a["check"]: a for a in alerts_in(s)}
    assert set(alerts) == {"call_bizible_id_population_recent", "trend_missing_bizible_id_share_7d"}, alerts
    window_alert = alerts["call_bizible_id_population_recent"]
    recent_share = 100 * written["recent_missing"] / written["recent_calls"]
    assert window_alert["severity"] == "error" and window_alert["layer"] == "staging"
    assert window_alert["observed"] == (
        f"in the last 7 days (since 2026-11-25 06:00 UTC): {recent_share:.4g}% of {written['recent_calls']} calls "
        f"lack a BizibleId ({written['recent_missing']})"), window_alert["observed"]
    trend_alert = alerts["trend_missing_bizible_id_share_7d"]
    assert trend_alert["severity"] == "warn"
    assert trend_alert["observed"].startswith("share of calls missing a (valid) BizibleId in the last 7 days "
                                              "(since 2026-11-25 06:00 UTC): ")
    # The all-time check, over six months, sees a few points more and passes: only the window catches it.
    all_time = judged(caplog, "call_bizible_id_population")
    assert all_time.startswith("[ok] ") and f"of {written['calls']:,} calls lack a BizibleId" in all_time, all_time


def test_the_same_six_months_with_a_normal_last_week_raise_no_alert(histories, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="calltrail.quality")
    s, written = settings_for(histories, "normal", tmp_path)
    audit_the_weeks_before(s)
    caplog.clear()

    summary = gates.audit(s, RunInfo("calltrail_transform", "normal_week"), as_of=AS_OF)

    assert (summary["errors"], summary["warnings"], summary["failed"]) == (0, 0, [])
    assert alerts_in(s) == []
    recent = judged(caplog, "call_bizible_id_population_recent")  # judged, not skipped for too few calls
    assert recent.startswith("[ok] staging/call_bizible_id_population_recent: observed in the last 7 days "
                             "(since 2026-11-25 06:00 UTC): ") and f"of {written['recent_calls']} calls" in recent, recent


def test_a_window_with_fewer_calls_than_the_minimum_is_reported_not_judged(histories, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="calltrail.quality")
    s, written = settings_for(histories, "outage", tmp_path, CALLTRAIL_DQ_WINDOW_MIN_ROWS="1000")
    assert written["recent_calls"] < 1000

    summary = gates.audit(s, RunInfo("calltrail_transform", "quiet_week"), as_of=AS_OF)

    assert summary["failed"] == [] and alerts_in(s) == []
    recent = judged(caplog, "call_bizible_id_population_recent")
    assert recent == (f"[ok] staging/call_bizible_id_population_recent: observed in the last 7 days (since "
                      f"2026-11-25 06:00 UTC): {written['recent_calls']} calls, fewer than the 1,000 needed to judge "
                      "(CALLTRAIL_DQ_WINDOW_MIN_ROWS): not judged; expected call Tasks carry a BizibleId, over the "
                      "recent window: judged over at least 1,000 rows"), recent


def test_the_window_is_configuration():
    s = settings_module.load({"CALLTRAIL_DQ_WINDOW_DAYS": "14", "CALLTRAIL_DQ_WINDOW_MIN_ROWS": "30"})
    assert (s.quality.window_days, s.quality.window_min_rows) == (14, 30)
    defaults = settings_module.load({})
    assert (defaults.quality.window_days, defaults.quality.window_min_rows) == (7, 100)
    with pytest.raises(settings_module.ConfigurationError, match="CALLTRAIL_DQ_WINDOW_DAYS=0 must be at least 1"):
        settings_module.load({"CALLTRAIL_DQ_WINDOW_DAYS": "0"})
