"""A failed task alerts with its cause, and the run's summary tells it in one line (the failure
callback as Airflow calls it, alerts.jsonl, a loopback Slack webhook)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from calltrail import settings as settings_module
from calltrail import summary
from calltrail.airflow.notifiers import alert_task_failure
from calltrail.salesforce.client import SalesforceUnavailable
from tests.airflow_env import calltrail_env
from tests.fakes.alerting import SlackWebhookServer


@pytest.fixture
def slack(monkeypatch):
    with SlackWebhookServer() as server:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", server.connection())
        yield server


def failure_context(dag_id: str, task_id: str, exception: BaseException) -> dict:
    return {"exception": exception, "task_instance": SimpleNamespace(task_id=task_id),
            "dag_run": SimpleNamespace(dag_id=dag_id, run_id="manual__2026-03-01T10:00:00+00:00")}


def test_a_failed_ingestion_task_alerts_with_its_exception_and_the_cause_is_one_line(tmp_path, slack, monkeypatch):
    monkeypatch.setenv("CALLTRAIL_DATA_DIR", str(tmp_path / "data"))  # the callback reads its settings itself
    s = settings_module.load(calltrail_env(tmp_path))
    exc = SalesforceUnavailable("queryAll: cannot reach Salesforce after 5 attempts: connection refused\n"
                                "Traceback detail that does not belong on the console")
    alert_task_failure(failure_context("calltrail_ingest_salesforce", "extract_tasks_from_api", exc))

    alerts = summary.read_alerts(s)
    assert [(a["dag_id"], a["task_id"], a["layer"], a["severity"]) for a in alerts] == [
        ("calltrail_ingest_salesforce", "extract_tasks_from_api", "task", "error")]
    assert alerts[0]["observed"].splitlines()[0] == (
        "SalesforceUnavailable: queryAll: cannot reach Salesforce after 5 attempts: connection refused")
    assert summary.failure_causes(alerts, "calltrail_ingest_salesforce") == [
        "calltrail_ingest_salesforce / extract_tasks_from_api: SalesforceUnavailable: queryAll: cannot reach "
        "Salesforce after 5 attempts: connection refused"]
    assert summary.failure_causes(alerts, "calltrail_ingest_web_events") == []
    assert len(slack.posts) == 1 and "extract_tasks_from_api" in slack.texts[0], slack.texts
    assert "cannot reach Salesforce" in slack.texts[0]


def test_a_gate_failure_is_told_by_its_check_alerts():
    check_alert = {"dag_id": "calltrail_transform", "task_id": "audit", "layer": "staging",
                   "check": "call_bizible_id_population", "severity": "error",
                   "observed": "58.0% of call Tasks have a BizibleId"}
    warning = {**check_alert, "check": "match_rate", "severity": "warn", "layer": "trend"}
    assert summary.failure_causes([warning, check_alert], "calltrail_transform") == [
        "calltrail_transform / audit: check staging/call_bizible_id_population failed: "
        "58.0% of call Tasks have a BizibleId"]


def test_a_failed_run_never_says_every_check_passed(tmp_path):
    s = settings_module.load(calltrail_env(tmp_path))
    failed_quietly = summary.render_quality(s, [], failed=True, checks_ran=False)
    assert "every check passed" not in failed_quietly
    assert "FAILED" in failed_quietly and "checks did not run" in failed_quietly
    assert "every check passed: no alerts" in summary.render_quality(s, [])
    # the alerts file is named once it exists, and only then
    assert str(s.alerts_file) not in failed_quietly
    s.alerts_file.parent.mkdir(parents=True)
    s.alerts_file.write_text("{}\n")
    assert f"alerts      {s.alerts_file}" in summary.render_quality(s, [], failed=True, checks_ran=False)


def test_a_failed_run_says_what_consumers_see_now():
    assert summary.render_publication(None).startswith("nothing has been published yet")
    at = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    sentence = summary.render_publication(summary.Publication(at), now=at + timedelta(hours=3))
    assert sentence == ("the published touchpoints are those of the last good run, published at "
                        "2026-03-01 09:00:00 UTC (3.0 h ago)")


def test_a_dag_run_that_failed_without_a_task_alert_is_alerted_by_the_fallback(tmp_path, slack, monkeypatch):
    from calltrail.airflow.alerts import main

    monkeypatch.setenv("CALLTRAIL_DATA_DIR", str(tmp_path / "data"))
    main(["calltrail_transform", "airflow dags test calltrail_transform exited 1 and no task reported a cause"])
    s = settings_module.load(calltrail_env(tmp_path))
    alerts = [json.loads(line) for line in s.alerts_file.read_text().splitlines()]
    assert [(a["check"], a["severity"]) for a in alerts] == [("calltrail_transform", "error")]
    assert summary.failure_causes(alerts, "calltrail_transform")[0].startswith(
        "calltrail_transform / calltrail_transform: airflow dags test calltrail_transform exited 1")
    assert len(slack.posts) == 1


def test_a_long_cause_stays_one_console_line():
    observed = "SalesforceUnavailable: cannot reach https://org.example/services/data?q=" + "SELECT+Id%2C" * 80
    alert = {"dag_id": "calltrail_ingest_salesforce", "task_id": "extract_tasks_from_api", "layer": "task",
             "check": "extract_tasks_from_api", "severity": "error", "observed": observed + "\nsecond line"}
    [cause] = summary.failure_causes([alert], "calltrail_ingest_salesforce")
    assert len(cause) == summary.CAUSE_CHARS and cause.endswith("…") and "\n" not in cause, cause
    assert cause.startswith("calltrail_ingest_salesforce / extract_tasks_from_api: SalesforceUnavailable: ")


def test_a_failed_task_alert_is_titled_by_its_dag_and_task(tmp_path, slack, monkeypatch):
    monkeypatch.setenv("CALLTRAIL_DATA_DIR", str(tmp_path / "data"))
    alert_task_failure(failure_context("calltrail_ingest_web_events", "ingest_web_events",
                                       OSError("No space left on device")))
    assert slack.texts[0].splitlines()[0] == "*[calltrail ERROR] calltrail_ingest_web_events: task ingest_web_events failed*"
    assert "Observed: OSError: No space left on device" in slack.texts[0], slack.texts[0]
