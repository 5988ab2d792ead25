"""Quarantined rows are news: this run's rows by source file in the summary, and an alert above
the threshold (real landing files, real ingestion, a loopback Slack webhook)."""

from __future__ import annotations

import json
import time

import pytest

from calltrail import settings as settings_module
from calltrail import summary
from calltrail.airflow.run_context import RunInfo
from calltrail.settings import ConfigurationError
from calltrail.tasks import ingest
from tests.airflow_env import WRITTEN_WHOLE, calltrail_env
from tests.fakes.alerting import SlackWebhookServer
from tests.web.test_ingest import GOOD, write

RUN = RunInfo("calltrail_ingest_web_events", "manual__quarantine", "ingest_web_events")


def bad_rows(n: int, prefix: str) -> list[dict[str, object]]:
    """``n`` events whose time has no offset (rejected: calltrail does not guess a time zone)."""
    return [{**GOOD[0], "event_id": f"{prefix}-{i}", "occurred_at": "2026-03-01T12:17:00"} for i in range(n)]


@pytest.fixture
def slack(monkeypatch):
    with SlackWebhookServer() as server:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", server.connection())
        yield server


def alerts_in(settings):
    if not settings.alerts_file.exists():
        return []
    return [json.loads(line) for line in settings.alerts_file.read_text().splitlines()]


def test_more_quarantined_rows_than_the_threshold_alert_once_naming_each_source_file(tmp_path, slack):
    s = settings_module.load(calltrail_env(tmp_path, CALLTRAIL_QUARANTINE_ALERT_ROWS="3", **WRITTEN_WHOLE))
    write(s.web_landing_dir / "tracker-export-0301.csv", [GOOD[0], *bad_rows(3, "a")])
    write(s.web_landing_dir / "tracker-export-0302.jsonl", [GOOD[1], *bad_rows(1, "b")])
    ingest.ingest_web_events(s, alert_run=RUN)
    alerts = alerts_in(s)
    assert [(a["check"], a["layer"], a["severity"]) for a in alerts] == [
        ("quarantined_rows_web_events", "ingestion", "warn")], alerts
    observed = alerts[0]["observed"]
    assert "4 row(s) of web_events quarantined in this run" in observed, observed
    assert "tracker-export-0301.csv: 3 (timestamp_without_offset:occurred_at 3)" in observed, observed
    assert "tracker-export-0302.jsonl: 1 (timestamp_without_offset:occurred_at 1)" in observed, observed
    assert alerts[0]["task_id"] == "ingest_web_events"
    assert len(slack.posts) == 1 and "tracker-export-0301.csv" in slack.texts[0], slack.texts


def test_quarantined_rows_up_to_the_threshold_load_without_an_alert(tmp_path, slack):
    s = settings_module.load(calltrail_env(tmp_path, CALLTRAIL_QUARANTINE_ALERT_ROWS="4", **WRITTEN_WHOLE))
    write(s.web_landing_dir / "tracker-export-0301.csv", [GOOD[0], *bad_rows(4, "a")])
    result = ingest.ingest_web_events(s, alert_run=RUN)
    assert result["rows_quarantined"] == 4 and result["rows_valid"] == 1
    assert alerts_in(s) == [] and slack.posts == []


def test_quarantined_task_rows_alert_too(tmp_path, slack):
    s = settings_module.load(calltrail_env(tmp_path, CALLTRAIL_QUARANTINE_ALERT_ROWS="0", **WRITTEN_WHOLE))
    s.task_landing_dir.mkdir(parents=True)
    (s.task_landing_dir / "dataloader-0301.csv").write_text(
        "Id,Subject,SystemModstamp,CreatedDate\n"
        ",Call,2026-03-01T09:10:00.000+0000,2026-03-01T09:10:00.000+0000\n")
    ingest.ingest_task_files(s, alert_run=RunInfo("calltrail_ingest_salesforce", "manual__q", "ingest_task_files"))
    alerts = alerts_in(s)
    assert [a["check"] for a in alerts] == ["quarantined_rows_salesforce_task_file"], alerts
    assert "dataloader-0301.csv: 1 (missing_Id 1)" in alerts[0]["observed"], alerts[0]["observed"]


def test_the_run_summary_reports_this_runs_quarantined_rows_by_source_file(tmp_path):
    s = settings_module.load(calltrail_env(tmp_path, **WRITTEN_WHOLE))
    write(s.web_landing_dir / "yesterday.csv", [GOOD[0], *bad_rows(2, "old")])
    ingest.ingest_web_events(s)
    time.sleep(0.05)
    started = time.time()
    write(s.web_landing_dir / "today.jsonl", [GOOD[1], *bad_rows(5, "new")])
    ingest.ingest_web_events(s)

    this_run = summary.quarantined_since(s.lake_dir, started)
    assert {d: {f: dict(r) for f, r in files.items()} for d, files in this_run.items()} == {
        "web_events": {"today.jsonl": {"timestamp_without_offset:occurred_at": 5}}}
    text = summary.render(s, summary.summarise(s.lake_dir), this_run=this_run)
    block = text.split("quarantined in this run, by source file:")[1].split("where things are")[0]
    assert "today.jsonl" in block and "yesterday.csv" not in block, block
    assert "5  today.jsonl  (timestamp_without_offset:occurred_at 5)" in block, block
    assert "7  timestamp_without_offset:occurred_at" in text, "the lake totals still count every run"


def test_a_run_without_quarantined_rows_says_none(tmp_path):
    s = settings_module.load(calltrail_env(tmp_path, **WRITTEN_WHOLE))
    text = summary.render(s, summary.summarise(s.lake_dir), this_run={})
    assert "quarantined in this run, by source file:\n    none" in text, text


def test_the_quarantine_alert_threshold_is_a_setting_with_a_default():
    assert settings_module.load({}).quarantine_alert_rows == 100
    assert settings_module.load({"CALLTRAIL_QUARANTINE_ALERT_ROWS": "0"}).quarantine_alert_rows == 0
    with pytest.raises(ConfigurationError, match="CALLTRAIL_QUARANTINE_ALERT_ROWS"):
        settings_module.load({"CALLTRAIL_QUARANTINE_ALERT_ROWS": "-1"})
