"""The data-quality gates on a real lake and DuckDB warehouse built by ingestion and dbt from the
demo data, with alerts delivered to a loopback Slack webhook server and a loopback SMTP server."""

from __future__ import annotations

import csv
import json
import logging
import re
import shutil
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from calltrail import settings as settings_module
from calltrail.airflow.run_context import RunInfo
from calltrail.quality.outcome import DataQualityError
from calltrail.salesforce.objects import OPPORTUNITY, OPPORTUNITY_CONTACT_ROLE
from calltrail.settings import ConfigurationError
from calltrail.tasks import publish
from calltrail.tasks import quality as gates
from tests.airflow_env import calltrail_env
from tests.fakes.alerting import SlackWebhookServer, SmtpServer, dead_webhook_connection
from tests.quality.helpers import build, rebuild, task_ids, write_object_updates, write_task_updates

# The demo's visitors arrive from 2026-11-01 for 21 days: a 21-day window ending here holds them all.
DEMO_END = datetime(2026, 11, 22, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory):
    """A lake and a dbt build of 400 demo visitors (copied by each test that changes data)."""
    tmp = tmp_path_factory.mktemp("gates")
    build(settings_module.load(calltrail_env(tmp)), visitors=400)
    return tmp / "data"


@pytest.fixture
def channels(monkeypatch):
    with SlackWebhookServer() as slack, SmtpServer() as smtp:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection())
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_ALERTS", smtp.connection())
        yield slack, smtp


def copy_of(demo_build, tmp_path, **env):
    shutil.copytree(demo_build, tmp_path / "data", ignore=shutil.ignore_patterns("airflow"))
    return settings_module.load(calltrail_env(tmp_path, CALLTRAIL_ALERT_EMAILS="marketing-ops@example.com", **env))


def alerts_in(settings):
    if not settings.alerts_file.exists():
        return []
    return [json.loads(line) for line in settings.alerts_file.read_text().splitlines()]


def test_a_healthy_build_passes_every_check_sends_nothing_and_hands_off_the_missing_ids(demo_build, tmp_path,
                                                                                        channels):
    slack, smtp = channels
    s = copy_of(demo_build, tmp_path)
    summary = gates.audit(s, RunInfo("calltrail_transform", "healthy"))
    assert (summary["errors"], summary["warnings"], summary["failed"]) == (0, 0, [])
    assert summary["checks"] >= 20
    assert slack.posts == [] and smtp.messages == [] and alerts_in(s) == []
    with s.missing_bizible_id_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    listed = task_ids(s, "select task_id from main.dq_calls_missing_bizible_id order by 1")
    assert sorted(r["task_id"] for r in rows) == listed and len(listed) > 0
    assert {r["reason"] for r in rows} <= {"missing", "invalid_format"}
    assert (s.data_docs_dir / "index.html").exists()


def test_forty_percent_of_calls_without_bizible_id_fail_with_one_alert_per_channel_naming_the_task_ids(
        demo_build, tmp_path, channels):
    slack, smtp = channels
    s = copy_of(demo_build, tmp_path)
    calls = task_ids(s, "select task_id from main.stg_salesforce__tasks where is_call and bizible_id is not null "
                        "order by task_id")
    blanked = calls[: int(len(calls) * 0.42)]
    already_missing = task_ids(s, "select task_id from main.stg_salesforce__tasks where is_call "
                                  "and bizible_id_status = 'missing'")
    write_task_updates(s, blanked, "vendor-stopped.csv", bizible2__BizibleId__c="''")
    rebuild(s)
    with pytest.raises(DataQualityError, match="call_bizible_id_population") as failure:
        gates.audit(s, RunInfo("calltrail_transform", "vendor_broke"))
    assert "the marts are not published" in str(failure.value)
    alerts = alerts_in(s)
    assert [a["check"] for a in alerts] == ["call_bizible_id_population"]
    alert = alerts[0]
    assert alert["severity"] == "error" and alert["layer"] == "staging"
    assert len(alert["record_ids"]) == 10 and set(alert["record_ids"]) <= set(blanked) | set(already_missing)
    assert set(alert["record_ids"]) & set(blanked)
    assert alert["run_id"] == "vendor_broke" and alert["data_docs"].endswith("index.html")
    assert len(slack.posts) == 1 and len(smtp.messages) == 1
    for text in (slack.texts[0], smtp.bodies()[0]):
        assert "call_bizible_id_population" in text and "staging" in text and "vendor_broke" in text
        assert all(task_id in text for task_id in alert["record_ids"])
        assert alert["observed"].split(" (")[0] in text and "index.html" in text
    assert smtp.keeper.envelopes[0][1] == ["marketing-ops@example.com"]
    assert "call_bizible_id_population" in smtp.messages[0]["Subject"]


def test_the_data_docs_name_the_failed_expectation(demo_build, tmp_path):
    s = copy_of(demo_build, tmp_path, CALLTRAIL_DQ_CALL_TASK_TYPE_POPULATION_WARN="0.99")
    summary = gates.audit(s, RunInfo("calltrail_transform", "docs_run"))
    assert summary["warnings"] == 1 and summary["errors"] == 0
    pages = list((s.data_docs_dir / "validations").rglob("*.html"))
    staging = [p.read_text() for p in pages if "/staging/call_tasks/docs_run/" in p.as_posix()]
    assert len(staging) == 1
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script).*?</\1>", " ", staging[0], flags=re.S)))
    assert "Status: Failed" in text and "Unsuccessful Expectations 1" in text
    column = text.index(" task_type_clean Status Expectation Observed Value ")  # the failed column's section
    assert "values must not be null, at least 99 % of the time" in text[column:]
    assert "docs_run" in (s.data_docs_dir / "index.html").read_text()


def test_a_sudden_drop_in_match_rate_raises_the_trend_alert(demo_build, tmp_path, channels):
    slack, _ = channels
    s = copy_of(demo_build, tmp_path, CALLTRAIL_DQ_WINDOW_DAYS="21")  # the trend figures cover the demo's calls
    for n in range(3):  # three healthy runs make the baseline
        assert gates.audit(s, RunInfo("calltrail_transform", f"healthy_{n}"), as_of=DEMO_END)["failed"] == []
    matched = task_ids(s, "select task_id from main.int_calls_matched_to_sessions where match_status = 'matched'")
    late = "coalesce(bizible2__Bizible_Touchpoint_Date__c, CreatedDate) + interval 3 hour"
    write_task_updates(s, matched, "calls-logged-late.csv", bizible2__Bizible_Touchpoint_Date__c=late)
    rebuild(s)
    summary = gates.audit(s, RunInfo("calltrail_transform", "after_drop"), as_of=DEMO_END)
    assert summary["errors"] == 0  # absolute thresholds hold: the trend warns, the run goes on
    assert [a["check"] for a in alerts_in(s)] == ["trend_match_rate_21d"]
    assert len(slack.posts) == 1 and "trend_match_rate_21d" in slack.texts[0]
    assert "in the last 21 days (since 2026-11-01 00:00 UTC)" in alerts_in(s)[0]["observed"]
    con = duckdb.connect(str(s.warehouse), read_only=True)
    runs = con.execute("select run_id, passed from quality.run_metrics where metric = 'match_rate_21d' "
                       "order by measured_at").fetchall()
    con.close()
    assert runs == [("healthy_0", True), ("healthy_1", True), ("healthy_2", True), ("after_drop", True)]


def _age_lake(settings, hours: float) -> None:
    """Make every row of the lake look as if it had arrived ``hours`` ago."""
    at = (datetime.now(UTC) - timedelta(hours=hours)).replace(tzinfo=None)
    con = duckdb.connect()
    for f in settings.lake_dir.rglob("*.parquet"):
        tmp = f.with_suffix(".old")
        f.rename(tmp)
        con.execute(f"copy (select * replace (cast('{at.isoformat(sep=' ')}' as timestamp) as _loaded_at) "
                    f"from read_parquet('{tmp}')) to '{f}' (format parquet)")
        tmp.unlink()
    con.close()


def test_stale_sources_trigger_freshness_alerts_and_an_error_stops_the_run(demo_build, tmp_path, channels):
    slack, smtp = channels
    s = copy_of(demo_build, tmp_path)
    _age_lake(s, hours=30)  # web events: error after 24 h; Salesforce Tasks: warn after 24 h
    with pytest.raises(DataQualityError, match="freshness_web_events"):
        gates.check_source_freshness(s, RunInfo("calltrail_transform", "stale"))
    by_check = {a["check"]: a for a in alerts_in(s)}
    assert set(by_check) == {"freshness_web_events", "freshness_salesforce_task"}
    assert by_check["freshness_web_events"]["severity"] == "error"
    assert by_check["freshness_salesforce_task"]["severity"] == "warn"
    assert "30.0 h" in by_check["freshness_web_events"]["observed"]
    assert len(slack.posts) == 2 and len(smtp.messages) == 2


def test_fresh_sources_pass_freshness(demo_build, tmp_path):
    s = copy_of(demo_build, tmp_path)
    summary = gates.check_source_freshness(s, RunInfo("calltrail_transform", "fresh"))
    assert summary["checks"] == 2 and summary["failed"] == []


def test_a_dead_webhook_turns_neither_a_green_run_red_nor_a_red_one_green(demo_build, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", dead_webhook_connection())
    warn_only = copy_of(demo_build, tmp_path / "warn", CALLTRAIL_DQ_CALL_TASK_TYPE_POPULATION_WARN="0.99")
    summary = gates.audit(warn_only, RunInfo("calltrail_transform", "dead_green"))
    assert summary["warnings"] == 1 and summary["errors"] == 0
    assert [a["check"] for a in alerts_in(warn_only)] == ["call_task_type_population"]
    assert "could not be sent to slack" in caplog.text

    failing = copy_of(demo_build, tmp_path / "error", CALLTRAIL_DQ_CALL_TASK_TYPE_POPULATION_WARN="0.99",
                      CALLTRAIL_DQ_CALL_TASK_TYPE_POPULATION_ERROR="0.99")
    with pytest.raises(DataQualityError, match="call_task_type_population"):
        gates.audit(failing, RunInfo("calltrail_transform", "dead_red"))
    assert [a["severity"] for a in alerts_in(failing)] == ["error"]


def test_publish_copies_the_marts_and_a_second_publish_replaces_them(demo_build, tmp_path):
    s = copy_of(demo_build, tmp_path)
    publish.publish(s)
    publish.publish(s)
    con = duckdb.connect(str(s.warehouse), read_only=True)
    try:
        published = {r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'published'").fetchall()}
        same = con.execute("select count(*) from (select * from main.fct_touchpoints except "
                           "select * from published.fct_touchpoints)").fetchone()[0]
        n = con.execute("select count(*) from published.fct_touchpoints").fetchone()[0]
    finally:
        con.close()
    assert published == {"fct_touchpoints", "dq_calls_missing_bizible_id", "rpt_touchpoints_by_channel",
                         "rpt_call_match_rates", "dim_people", "fct_attribution", "rpt_revenue_by_channel",
                         "dq_opportunities_unattributed"}
    assert same == 0 and n > 100


def test_thresholds_are_configuration_and_contradictions_are_refused():
    s = settings_module.load({"CALLTRAIL_DQ_CALL_BIZIBLE_ID_POPULATION_WARN": "0.5",
                              "CALLTRAIL_DQ_CALL_BIZIBLE_ID_POPULATION_ERROR": "0.4"})
    assert s.quality.thresholds["call_bizible_id_population"].warn == 0.5
    with pytest.raises(ConfigurationError, match="ERROR=0.95 is above"):
        settings_module.load({"CALLTRAIL_DQ_CALL_BIZIBLE_ID_POPULATION_ERROR": "0.95"})
    with pytest.raises(ConfigurationError, match="between 0 and 1"):
        settings_module.load({"CALLTRAIL_DQ_CALL_BIZIBLE_ID_POPULATION_WARN": "90"})


def test_a_failed_dbt_task_alerts_once_and_the_gates_own_failures_are_not_alerted_twice(tmp_path, channels,
                                                                                         monkeypatch):
    from types import SimpleNamespace

    from calltrail.airflow.notifiers import alert_task_failure

    slack, _ = channels
    s = settings_module.load(calltrail_env(tmp_path))
    run = SimpleNamespace(dag_id="calltrail_transform", run_id="manual__dbt_failed")
    dbt_failure = {"exception": RuntimeError("dbt test failed:\nunique_fct_touchpoints_touchpoint_id: 3 rows"),
                   "task_instance": SimpleNamespace(task_id="dbt.fct_touchpoints.test"), "dag_run": run}
    gate_failure = {**dbt_failure, "exception": DataQualityError("already alerted"),
                    "task_instance": SimpleNamespace(task_id="audit")}
    monkeypatch.setenv("CALLTRAIL_DATA_DIR", str(tmp_path / "data"))  # the callback reads its settings itself
    alert_task_failure(dbt_failure)
    alert_task_failure(gate_failure)
    alerts = alerts_in(s)
    assert [(a["check"], a["layer"], a["severity"]) for a in alerts] == [("dbt.fct_touchpoints.test", "dbt", "error")]
    assert "unique_fct_touchpoints_touchpoint_id: 3 rows" in alerts[0]["observed"]
    assert len(slack.posts) == 1 and "manual__dbt_failed" in slack.texts[0]


def test_task_types_outside_the_list_are_published_and_only_warned_about_by_name_and_count(demo_build, tmp_path,
                                                                                          channels):
    slack, _ = channels
    s = copy_of(demo_build, tmp_path)
    with_touchpoint = task_ids(s, "select task_id from main.fct_touchpoints where task_id is not null order by task_id")
    other, demo_request = with_touchpoint[:5], with_touchpoint[5:8]
    write_task_updates(s, other, "type-other.csv", Type="'Other'")  # Salesforce's standard picklist value
    write_task_updates(s, demo_request, "type-demo-request.csv", Type="' Demo Request '")  # the org's own
    rebuild(s)

    summary = gates.audit(s, RunInfo("calltrail_transform", "org_types"))
    assert summary["errors"] == 0 and summary["warnings"] == 1, summary["failed"]
    [alert] = alerts_in(s)
    assert (alert["check"], alert["severity"], alert["layer"]) == ("touchpoint_type_known", "warn", "marts")
    assert "'Demo Request' (3)" in alert["observed"] and "Other" not in alert["observed"], alert["observed"]
    assert "published as they are" in alert["observed"]
    assert len(slack.posts) == 1 and "'Demo Request' (3)" in slack.texts[0]

    publish.publish(s)
    con = duckdb.connect(str(s.warehouse), read_only=True)
    try:
        published = dict(con.execute("select task_id, touchpoint_type from published.fct_touchpoints "
                                     "where task_id is not null").fetchall())
    finally:
        con.close()
    assert [published[t] for t in other] == ["Other"] * 5
    assert [published[t] for t in demo_request] == ["Demo Request"] * 3  # Task.Type trimmed

    # Whatever the list says, an unexpected Type never fails the run: with only "Call" expected,
    # Other is named too, and it is still a warning.
    narrow = settings_module.load(calltrail_env(tmp_path, CALLTRAIL_DQ_TASK_TYPES="Call"))
    summary = gates.audit(narrow, RunInfo("calltrail_transform", "narrow_list"))
    assert summary["errors"] == 0 and summary["warnings"] == 1, summary["failed"]
    last = alerts_in(narrow)[-1]
    assert last["check"] == "touchpoint_type_known" and last["severity"] == "warn"
    assert "'Other' (5)" in last["observed"] and "'Demo Request' (3)" in last["observed"], last["observed"]


def test_an_empty_task_source_is_reported_as_no_rows_loaded_yet(demo_build, tmp_path):
    """A connected org whose extraction found no Tasks yet: the lake holds an empty Task partition."""
    s = copy_of(demo_build, tmp_path)
    files = sorted(s.lake_dir.glob("salesforce_task/*/*/tasks.parquet"))
    empty = tmp_path / "empty.parquet"
    con = duckdb.connect()
    con.execute(f"copy (select * from read_parquet('{files[0]}') limit 0) to '{empty}' (format parquet)")
    con.close()
    for f in files:
        shutil.rmtree(f.parent)
    files[0].parent.mkdir(parents=True)
    empty.rename(files[0])
    with pytest.raises(DataQualityError):
        gates.check_source_freshness(s, RunInfo("calltrail_transform", "empty"))
    by_check = {a["check"]: a for a in alerts_in(s)}
    observed = by_check["freshness_salesforce_task"]["observed"]
    assert observed.startswith("no rows loaded yet"), observed
    assert "0001" not in observed and "days ago" not in observed, observed
    assert "freshness_web_events" not in by_check, "the web events are fresh"


@pytest.mark.parametrize("in_process", [True, False], ids=["in_process", "dbt_process"])
def test_a_task_source_without_any_file_is_an_error_not_left_out(demo_build, tmp_path, in_process, caplog):
    """Web events only, no Task extracted yet: dbt's sources.json leaves out a source it could not
    measure (no file matches its glob), so the check must not pass on the web events alone."""
    s = copy_of(demo_build, tmp_path)
    shutil.rmtree(s.lake_dir / "salesforce_task")
    caplog.set_level(logging.DEBUG, logger="calltrail.transform.dbt")  # dbt's own output, line by line
    with pytest.raises(DataQualityError, match="freshness_salesforce_task"):
        gates.check_source_freshness(s, RunInfo("calltrail_transform", "no_task_files"), in_process=in_process)
    assert "PASS freshness of lake.web_events" in caplog.text, caplog.text[-3000:]
    assert "Deprecat" not in caplog.text, "dbt warned of a deprecated use (--output) in every run's log"
    by_check = {a["check"]: a for a in alerts_in(s)}
    assert set(by_check) == {"freshness_salesforce_task"}, "the web events are fresh"
    task = by_check["freshness_salesforce_task"]
    assert task["severity"] == "error"
    assert task["expected"] == ("rows of source salesforce_task loaded within 24 hours (warn) "
                                "and 72 hours (error)"), task["expected"]
    if in_process:  # dbt's own result is at hand: its reason
        assert task["observed"] == "no rows loaded yet: the lake has no files of source salesforce_task"
    else:
        assert task["observed"].startswith("freshness could not be measured"), task["observed"]


def test_publish_records_its_time_so_a_failed_run_can_say_how_old_the_marts_are(demo_build, tmp_path):
    from calltrail import summary

    s = copy_of(demo_build, tmp_path)
    assert summary.last_publication(s) is None, "nothing published yet"
    before = datetime.now(UTC).replace(microsecond=0)
    publish.publish(s)
    first = summary.last_publication(s)
    publish.publish(s)
    after = datetime.now(UTC)
    second = summary.last_publication(s)
    assert first is not None and second is not None
    assert before <= first.at <= second.at <= after, (before, first, second, after)
    con = duckdb.connect(str(s.warehouse), read_only=True)
    try:
        rows = con.execute("select models from calltrail_meta.publications").fetchall()
    finally:
        con.close()
    assert len(rows) == 2 and "fct_touchpoints" in rows[0][0]
    assert "published at" in summary.render_publication(second)


def test_opportunities_with_an_amount_and_no_people_fail_the_audit_and_are_named(demo_build, tmp_path, channels):
    """Every contact role deleted and every opportunity moved to an Account without Contacts: no
    opportunity has people, far below the error threshold (50 %)."""
    s = copy_of(demo_build, tmp_path)
    with_amount = task_ids(s, "select opportunity_id from main.stg_salesforce__opportunities where amount is not null")
    assert len(with_amount) > 20 and not alerts_in(s)
    write_object_updates(s, OPPORTUNITY_CONTACT_ROLE, None, "roles-removed.csv", IsDeleted="true")
    write_object_updates(s, OPPORTUNITY, None, "unknown-account.csv", AccountId="'001000000000000AAA'")
    rebuild(s)
    with pytest.raises(DataQualityError, match="opportunity_people_population"):
        gates.audit(s, RunInfo("calltrail_transform", "roles_gone"))
    alerts = alerts_in(s)
    assert "opportunity_people_population" in [a["check"] for a in alerts], alerts
    assert {a["check"] for a in alerts} <= {"opportunity_people_population", "opportunity_people_population_recent"}
    alert = next(a for a in alerts if a["check"] == "opportunity_people_population")
    assert alert["severity"] == "error" and alert["layer"] == "marts"
    assert alert["record_ids"] and set(alert["record_ids"]) <= set(with_amount)
    assert "have no people" in alert["observed"], alert["observed"]


def test_a_touchpoint_of_a_linked_visitor_without_its_person_and_credits_not_summing_to_one_fail_the_audit(
        demo_build, tmp_path, channels):
    """A defect in the models (here written into the built tables, which the audit reads before
    publishing): the checks stop the marts from being published."""
    s = copy_of(demo_build, tmp_path)
    con = duckdb.connect(str(s.warehouse))
    try:
        lost = [r[0] for r in con.execute(
            "select touchpoint_id from main.fct_touchpoints where person_id is not null order by 1 limit 3").fetchall()]
        con.execute("update main.fct_touchpoints set person_id = null where touchpoint_id in (select unnest(?))", [lost])
        halved = con.execute("select min(opportunity_id) from main.fct_attribution").fetchone()[0]
        con.execute("update main.fct_attribution set credit = credit / 2 where opportunity_id = ? and model = 'w_shaped'",
                    [halved])
    finally:
        con.close()
    assert len(lost) == 3 and halved
    with pytest.raises(DataQualityError) as failure:
        gates.audit(s, RunInfo("calltrail_transform", "models_broke"))
    assert "touchpoint_person_present" in str(failure.value) and "attribution_credits_sum_to_one" in str(failure.value)
    alerts = {a["check"]: a for a in alerts_in(s)}
    assert set(alerts) == {"touchpoint_person_present", "attribution_credits_sum_to_one"}, sorted(alerts)
    assert set(alerts["touchpoint_person_present"]["record_ids"]) == set(lost)
    assert alerts["attribution_credits_sum_to_one"]["record_ids"] == [f"{halved} w_shaped"]


def test_publish_refuses_a_build_written_after_the_audit_and_publishes_the_audited_one(demo_build, tmp_path):
    """Another run's build (or one run by hand) between this run's audit and its publish: the
    marts in the build schema are then not the ones the audit checked. Publish used to copy them."""
    from calltrail import summary
    from calltrail.transform.dbt import BuildChangedSinceAudit

    s = copy_of(demo_build, tmp_path)
    audited = gates.audit(s, RunInfo("calltrail_transform", "audited"), as_of=DEMO_END)["build"]
    assert re.fullmatch(r"[0-9a-f-]{36}", audited or ""), audited
    publish.publish(s, audited_build=audited)  # nothing written since: published
    first = summary.last_publication(s)
    assert first is not None

    rebuild(s)  # a build after the audit
    with pytest.raises(BuildChangedSinceAudit) as refused:
        publish.publish(s, audited_build=audited)
    assert str(refused.value).startswith("publish refused: the build schema holds build "), refused.value
    assert f"not the build {audited} this run's audit checked: a dbt command wrote models after the audit. " \
           "Nothing was published: consumers keep the previous marts." in str(refused.value), refused.value
    assert summary.last_publication(s) == first, "nothing published"

    newer = gates.audit(s, RunInfo("calltrail_transform", "newer"), as_of=DEMO_END)["build"]
    assert newer != audited
    publish.publish(s, audited_build=newer)  # its own audit checked it
    assert summary.last_publication(s).at >= first.at
