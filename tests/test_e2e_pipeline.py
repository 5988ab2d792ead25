"""End to end on a real Airflow (``airflow dags test``, SQLite metadata in a temporary home):
ingestion, dbt (one build, a task per model), Great Expectations, checked against the demo generator's truth."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from calltrail import settings as settings_module
from calltrail import summary as run_summary
from calltrail.demo.generate import iter_truth_tasks
from tests.airflow_env import BIN, WRITTEN_WHOLE, airflow_env, calltrail_env, run
from tests.fakes.alerting import SlackWebhookServer, SmtpServer
from tests.fakes.salesforce import FakeSalesforce, FakeSalesforceServer
from tests.quality.helpers import task_ids, write_task_updates
from tests.salesforce.test_extract import task


def lake_fingerprint(lake: Path) -> dict[str, str]:
    """Content hash of every Parquet file in the lake (manifests carry run times, so they are left out)."""
    return {p.relative_to(lake).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(lake.rglob("*.parquet"))}


def fct_rows(warehouse: Path, schema: str = "published") -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(f"select * from {schema}.fct_touchpoints order by touchpoint_id").fetchall()
    finally:
        con.close()


def test_make_run_says_it_uses_demo_data_when_no_salesforce_connection_is_configured(demo_run):
    _, _, first, _ = demo_run
    assert "no Salesforce connection 'salesforce_default' configured" in first.stdout
    assert "using demo data" in first.stdout
    assert "calltrail_ingest_web_events succeeded" in first.stdout
    assert "calltrail_ingest_salesforce succeeded" in first.stdout
    assert "calltrail_transform succeeded" in first.stdout


def test_make_run_shows_each_task_of_the_transformation_dag_as_it_ends_with_done_of_total(demo_run):
    tmp, _, first, _ = demo_run
    con = sqlite3.connect(tmp / "data" / "airflow" / "airflow.db")
    try:  # the tasks of the run, as Airflow recorded them
        tasks = sorted(r[0] for r in con.execute(
            "select task_id from task_instance where dag_id = 'calltrail_transform' and state = 'success'"))
    finally:
        con.close()
    out = first.stdout
    section = out[out.index("running calltrail_transform"):out.index("calltrail_transform succeeded")]
    lines = [m.groups() for m in re.finditer(r"^ +\[ *(\d+)/(\d+)\] (\S+) +[\d.]+ s +\((\d+) s\)$", section, re.M)]
    assert len(tasks) > 30 and [int(done) for done, *_ in lines] == list(range(1, len(tasks) + 1)), section
    assert {total for _, total, _, _ in lines} == {str(len(tasks))}
    assert sorted(task for _, _, task, _ in lines) == tasks, section
    elapsed = [int(e) for *_, e in lines]
    assert elapsed == sorted(elapsed), section


def test_the_summary_names_task_only_touchpoints_groups_the_call_types_and_explains_blank_types(demo_run):
    tmp, _, first, _ = demo_run
    con = duckdb.connect(str(tmp / "data" / "warehouse" / "calltrail.duckdb"), read_only=True)
    try:
        task_only_other = con.execute("select count(*) from published.fct_touchpoints "
                                      "where touchpoint_origin = 'task_only' and marketing_channel = 'Other'").fetchone()[0]
        call_types = dict(con.execute(
            "select touchpoint_type, count(*) from published.fct_touchpoints as t "
            "join main.stg_salesforce__tasks as s using (task_id) where s.is_call group by 1").fetchall())
    finally:
        con.close()
    blank = call_types.pop("Web Visit", 0)
    assert task_only_other and blank and len(call_types) >= 3, (task_only_other, blank, call_types)
    out = first.stdout
    assert re.search(rf"^    Other .*\({task_only_other:,} task-only: Tasks without a web session", out, re.M), out
    calls = re.search(r"^    calls +([\d,]+)$", out, re.M)
    assert calls and int(calls.group(1).replace(",", "")) == sum(call_types.values()), out
    for call_type, n in call_types.items():
        assert re.search(rf"^      {call_type} +{n:,}$", out, re.M), (call_type, out)
    assert re.search(rf"^    Web Visit .*\({blank:,} of them calls whose Task has no Type", out, re.M), out


def test_the_lake_holds_what_the_generator_wrote(demo_run):
    tmp, _, first, truth = demo_run
    summary = run_summary.summarise(tmp / "data" / "lake")
    assert summary.web_events == truth["web_events_valid"]
    assert dict(summary.quarantined["web_events"]) == truth["web_rows_bad"]
    assert summary.tasks == truth["tasks"]["call_tasks"] + truth["tasks"]["other_tasks"]
    assert summary.task_versions == truth["task_records_written"] + truth["task_versions_in_updates"]
    assert summary.deleted_tasks == truth["tasks"]["deleted"]
    assert re.search(rf"web events\s+{truth['web_events_valid']:,}\s", first.stdout), first.stdout


def test_the_summary_names_rows_quarantine_reasons_and_locations(demo_run):
    tmp, _, first, truth = demo_run
    for reason in truth["web_rows_bad"]:
        assert reason in first.stdout
    assert str(tmp / "data" / "lake") in first.stdout
    assert str(tmp / "data" / "lake" / "quarantine") in first.stdout


def test_the_summary_numbers_are_the_generators_truth(demo_run):
    tmp, env, first, truth = demo_run
    t = truth["tasks"]
    marts = run_summary.summarise_marts(settings_module.load(env))
    assert marts.calls == t["call_tasks"] - t["deleted"]
    assert marts.valid_calls == t["live_calls_valid_bizible_id"]
    assert marts.matched_to_session == t["live_calls_touchpoint_session"]
    assert marts.task_only == t["live_calls_touchpoint_task_only"] + t["live_calls_touchpoint_task_only_same_session"]
    assert (marts.missing_bizible_id, marts.invalid_bizible_id) == (t["live_calls_missing"], t["live_calls_invalid_format"])
    assert (marts.within_window, marts.outside_window, marts.without_session) == (
        t["live_calls_matched"], t["live_calls_outside_window"], t["live_calls_no_session"])
    assert re.search(rf"matched to a web session\s+{marts.matched_to_session}\s", first.stdout), first.stdout
    assert re.search(rf"missing BizibleId\s+{marts.missing_bizible_id + marts.invalid_bizible_id}\s", first.stdout)
    assert "touchpoints by channel" in first.stdout and "dbt docs" in first.stdout


ORIGIN = {"session": "task_in_session", "task_only": "task_only", "task_only_same_session": "task_only",
          "none": None}


def test_every_task_of_every_scenario_gets_the_truths_status_touchpoint_position_and_session(demo_run):
    """Each Task (calls and e-mails): the match status, the touchpoint it makes (owning its session,
    task-only, or none), its position, the start of its candidate session and, when it owns the
    session, the session's channel."""
    tmp, _, _, truth = demo_run
    con = duckdb.connect(str(tmp / "data" / "warehouse" / "calltrail.duckdb"), read_only=True)
    try:
        matched = {r[0]: r[1:] for r in con.execute(
            "select task_id, match_status, session_start_at from int_calls_matched_to_sessions").fetchall()}
        status = dict(con.execute("select task_id, bizible_id_status from stg_salesforce__tasks").fetchall())
        touchpoints = {r[0]: r[1:] for r in con.execute(
            "select task_id, touchpoint_origin, touchpoint_position, marketing_channel "
            "from published.fct_touchpoints where task_id is not null").fetchall()}
        by_origin = dict(con.execute(
            "select touchpoint_origin || '|' || touchpoint_position, count(*) from published.fct_touchpoints "
            "group by 1").fetchall())
    finally:
        con.close()
    wrong: dict[str, list] = {}
    tasks = list(iter_truth_tasks(tmp / "data" / "landing"))
    for t in tasks:
        if t["deleted"]:
            expected = (None, None, None, None, None, None)
        else:
            tp = ORIGIN[t["expected_touchpoint"]]
            start = t["expected_session_start"]
            expected = (t["expected_match_status"], start and datetime.fromisoformat(start), tp,
                        t["expected_position"], t["expected_channel"] if tp == "task_in_session" else None,
                        "live")
        seen_status, seen_start = matched.get(t["task_id"], (status.get(t["task_id"]), None))
        seen_start = seen_start and (seen_start if seen_start.tzinfo else seen_start.replace(tzinfo=UTC))
        origin, position, channel = touchpoints.get(t["task_id"], (None, None, None))
        seen = (seen_status, seen_start, origin, position, channel if origin == "task_in_session" else None,
                "live" if t["task_id"] in status else None)
        if seen != expected:
            wrong.setdefault(t["scenario"], []).append((t["task_id"], expected, seen))
    assert not wrong, "Tasks differ from the truth, by scenario (task, expected, seen): " + "; ".join(
        f"{s}: {len(v)} e.g. {v[0]}" for s, v in sorted(wrong.items()))
    assert {t["scenario"] for t in tasks} >= {"two_calls_first_deleted", "call_and_form_same_second",
                                              "session_split_by_new_source", "direct_return_within_gap"}
    assert by_origin == truth["touchpoints"], f"touchpoints by origin and position: expected {truth['touchpoints']}, " \
                                              f"seen {by_origin}"


def test_dbt_docs_and_validation_ran(demo_run):
    tmp, _, _, _ = demo_run
    docs = tmp / "data" / "dbt_docs"
    assert (docs / "static_index.html").exists() and (docs / "catalog.json").exists()
    catalog = json.loads((docs / "catalog.json").read_text())
    assert "model.calltrail.fct_touchpoints" in catalog["nodes"]


def test_the_audit_tasks_log_holds_none_of_great_expectations_import_chatter(demo_run):
    """Before: importing Great Expectations logged about 200 INFO lines ("Skipping registering
    function ...") and pyspark's warning about pandas 3 into the audit task's log on every target."""
    tmp, _, _, _ = demo_run
    first = sorted((tmp / "data" / "airflow" / "logs").glob("run-*.log"))[0].read_text()
    assert "task_id=audit" in first and "calltrail.quality" in first, "the audit ran and logged its checks"
    assert "Skipping registering function" not in first
    assert "PySpark does not yet fully support pandas" not in first


def increment(warehouse: Path) -> tuple[str, str]:
    """How the last build was made: int_increment's mode and reason."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute("select mode, reason from main.int_increment").fetchone()
    finally:
        con.close()


def test_a_second_run_and_one_with_full_refresh_give_the_same_lake_and_the_same_touchpoints(demo_run):
    tmp, env, first, _ = demo_run
    lake = tmp / "data" / "lake"
    warehouse = tmp / "data" / "warehouse" / "calltrail.duckdb"
    assert "\n    dbt build: full (first run: no int_increment_state yet)\n" in first.stdout, first.stdout
    before, touchpoints_before = lake_fingerprint(lake), fct_rows(warehouse)
    second = run([str(BIN / "calltrail"), "run"], env)
    assert second.returncode == 0, second.stdout[-4000:]
    assert increment(warehouse)[0] == "incremental"
    assert ("\n    dbt build: incremental (what new lake rows and CRM changes reach since the last run)\n"
            in second.stdout), second.stdout
    assert lake_fingerprint(lake) == before
    assert fct_rows(warehouse) == touchpoints_before
    assert len(touchpoints_before) > 100

    third = run([str(BIN / "calltrail"), "run", "--full-refresh"], env)
    assert third.returncode == 0, third.stdout[-4000:]
    assert "calltrail_transform runs with full_refresh" in third.stdout
    assert increment(warehouse) == ("full", "dbt ran with --full-refresh")
    assert "\n    dbt build: full (dbt ran with --full-refresh)\n" in third.stdout, third.stdout
    assert lake_fingerprint(lake) == before
    assert fct_rows(warehouse) == touchpoints_before


def test_healthy_runs_pass_every_check_and_send_no_alert(demo_run, channels):
    tmp, _, first, _ = demo_run
    slack, smtp = channels
    assert slack.posts == [] and smtp.messages == []
    assert not (tmp / "data" / "warehouse" / "alerts.jsonl").exists()
    assert "every check passed: no alerts" in first.stdout
    assert "alerts.jsonl" not in first.stdout and "alerts      none recorded yet" in first.stdout  # no path to nothing
    assert (tmp / "data" / "gx_data_docs" / "index.html").as_uri() in first.stdout
    assert (tmp / "data" / "warehouse" / "calls_missing_bizible_id.csv").exists()


def test_when_the_vendor_stops_writing_bizible_ids_the_run_fails_alerts_once_and_keeps_the_published_touchpoints(
        demo_run, tmp_path):
    """A Task export in which 42% of the calls lost their BizibleId, on a copy of the demo run's data
    with alert channels of its own, so the other tests of this module see the healthy run whatever
    the order. The export is a fault injected into the demo, so this run keeps the demo
    (CALLTRAIL_DEMO=always): in the default mode a file of your own makes the run remove the demo data."""
    source, _, _, _ = demo_run
    shutil.copytree(source / "data", tmp_path / "data", ignore=shutil.ignore_patterns("logs"))
    with SlackWebhookServer() as slack, SmtpServer() as smtp:
        env = calltrail_env(tmp_path, AIRFLOW_CONN_SLACK_ALERTS=slack.connection(),
                            AIRFLOW_CONN_SMTP_ALERTS=smtp.connection(),
                            CALLTRAIL_ALERT_EMAILS="marketing-ops@example.com", **WRITTEN_WHOLE)
        settings = settings_module.load(env)
        published_before = fct_rows(settings.warehouse)
        calls = task_ids(settings, "select task_id from main.stg_salesforce__tasks where is_call "
                                   "and bizible_id is not null order by task_id")
        blanked = calls[: int(len(calls) * 0.42)]
        write_task_updates(settings, blanked, "vendor-stopped.csv", bizible2__BizibleId__c="''")

        out = run([str(BIN / "calltrail"), "run"], {**env, "CALLTRAIL_DEMO": "always"})
        assert out.returncode == 1, out.stdout[-4000:]
        assert "calltrail_transform FAILED" in out.stdout
        assert "this run published nothing" in out.stdout
        assert "[error] staging/call_bizible_id_population" in out.stdout

        alerts = [json.loads(line) for line in settings.alerts_file.read_text().splitlines()]
        assert [a["check"] for a in alerts] == ["call_bizible_id_population"]  # one failing check, one alert
        alert = alerts[0]
        assert alert["dag_id"] == "calltrail_transform" and alert["run_id"].startswith("manual__")
        assert len(alert["record_ids"]) == 10 and set(alert["record_ids"]) & set(blanked)
        assert len(slack.posts) == 1 and len(smtp.messages) == 1, (slack.texts, len(smtp.messages))
        for text in (slack.texts[0], smtp.bodies()[0]):
            for part in ("call_bizible_id_population", "staging", alert["run_id"], settings.data_docs_index,
                         *alert["record_ids"]):
                assert part in text, part

        assert fct_rows(settings.warehouse) == published_before, "a failed audit must not publish"
        assert fct_rows(settings.warehouse, "main") != published_before, "the audited build did change"
        docs_pages = [p for p in (settings.data_docs_dir / "validations").rglob("*.html")
                      if "/staging/call_tasks/" in p.as_posix() and alert["run_id"].replace(":", "") in
                      p.as_posix().replace(":", "")]
        assert docs_pages, "the Data Docs have a page for this run's failed validation"
        page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", docs_pages[0].read_text()))
        assert "Status: Failed" in page and "bizible_id_given" in page


def test_a_failed_data_test_fails_its_models_task_alone_alerts_once_and_publishes_nothing(demo_run, tmp_path):
    """A partition written into the lake by hand, past ingestion's checks: one event of a type
    outside the accepted list. dbt's accepted_values test of stg_web__events fails in the build;
    that model's task fails and alerts, the models after it do not run, the Salesforce side
    builds, and the audit and publish never run."""
    import pyarrow.compute as pc

    source, _, _, _ = demo_run
    shutil.copytree(source / "data", tmp_path / "data", ignore=shutil.ignore_patterns("logs"))
    env = calltrail_env(tmp_path, **WRITTEN_WHOLE)
    settings = settings_module.load(env)
    published_before = fct_rows(settings.warehouse)
    [events] = sorted((settings.lake_dir / "web_events").glob("file=*/events.parquet"))[:1]
    table = pq.read_table(events).slice(0, 1)
    table = table.set_column(table.schema.get_field_index("event_id"), "event_id",
                             pc.binary_join_element_wise(table["event_id"], "-by-hand", ""))
    table = table.set_column(table.schema.get_field_index("event_type"), "event_type",
                             pc.binary_join_element_wise(table["event_type"], "-chat_opened", ""))
    written = settings.lake_dir / "web_events" / "file=0000000000written" / "events.parquet"
    written.parent.mkdir()
    pq.write_table(table, written)

    out = run([str(BIN / "calltrail"), "run"], {**env, "CALLTRAIL_DEMO": "always"})
    assert out.returncode == 1, out.stdout[-4000:]
    assert "calltrail_transform FAILED" in out.stdout and "this run published nothing" in out.stdout

    con = sqlite3.connect(tmp_path / "data" / "airflow" / "airflow.db")
    try:
        run_id = con.execute("select run_id from dag_run where dag_id = 'calltrail_transform' "
                             "order by start_date desc limit 1").fetchone()[0]
        states = dict(con.execute("select task_id, state from task_instance where dag_id = 'calltrail_transform' "
                                  "and run_id = ?", (run_id,)).fetchall())
    finally:
        con.close()
    assert states["dbt.build"] == "success", states
    assert states["dbt.stg_web__events"] == "failed", states
    for after in ("dbt.int_session_events", "dbt.int_sessions", "dbt.fct_touchpoints", "audit", "publish"):
        assert states[after] == "upstream_failed", (after, states)
    for other in ("dbt.stg_salesforce__tasks", "dbt.int_person_ids", "dbt.int_opportunity_people"):
        assert states[other] == "success", (other, states)

    alerts = [json.loads(line) for line in settings.alerts_file.read_text().splitlines()]
    assert [(a["check"], a["layer"]) for a in alerts] == [("dbt.stg_web__events", "dbt")], alerts
    assert "accepted_values_stg_web__events_event_type" in alerts[0]["observed"], alerts[0]["observed"]
    assert fct_rows(settings.warehouse) == published_before, "a failed build must not publish"


def test_salesforce_history_then_each_change_extracted_through_airflow_over_https(tmp_path):
    """The access-token connection and TLS trust through REQUESTS_CA_BUNDLE. With no parameter the
    first run reads the whole history (no watermark yet), the next one only what changed since the
    watermark, and a run with nothing new writes nothing, whatever the runs' logical dates."""
    base = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    state = FakeSalesforce(page_size=2, records=[task(i, base - timedelta(days=300 * i)) for i in range(6)])
    api = tmp_path / "data" / "lake" / "salesforce_task" / "source=api"
    with FakeSalesforceServer(state, tmp_path) as server:
        conn = json.dumps({"conn_type": "salesforce",
                           "extra": {"instance_url": server.instance_url, "access_token": "token-1"}})
        env = airflow_env(tmp_path, AIRFLOW_CONN_SALESFORCE_DEFAULT=conn, REQUESTS_CA_BUNDLE=str(server.ca_path))
        migrate = run([str(BIN / "airflow"), "db", "migrate"], env)
        assert migrate.returncode == 0, migrate.stdout[-3000:]

        def dags_test(logical_date: str) -> None:
            out = run([str(BIN / "airflow"), "dags", "test", "calltrail_ingest_salesforce", logical_date], env)
            assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]

        dags_test("2026-03-01T10:00:00+00:00")
        first = sorted(p.name for p in api.iterdir())
        assert len(first) == 1 and first[0].startswith("interval=full_"), first
        assert pq.read_metadata(api / first[0] / "tasks.parquet").num_rows == 6, "the first run reads the history"

        state.records += [task(10, base + timedelta(hours=2)), task(11, base + timedelta(hours=5))]
        dags_test("2026-03-01T11:00:00+00:00")  # an hour later, as the scheduler would
        second = sorted(p.name for p in api.iterdir())
        assert len(second) == 2, second
        new = next(p for p in second if p not in first)
        assert pq.read_metadata(api / new / "tasks.parquet").num_rows == 2, "the second run reads only the changes"

        dags_test("2026-03-01T12:00:00+00:00")
        assert sorted(p.name for p in api.iterdir()) == second, "a run with nothing new must write nothing"
    assert any("/queryAll/" in path for _, path in state.requests)
    assert not state.bulk_jobs, "8 Tasks are far below the Bulk threshold"


def test_an_unreachable_salesforce_fails_make_run_at_once_with_its_cause_an_alert_and_what_consumers_see(tmp_path):
    """A newcomer's first run against a Salesforce that refuses connections (a closed local port):
    no waiting out retry delays, the cause on the console in one line, an alert, and no "every
    check passed". The run gets 5 minutes: waiting out the scheduler's retry delays took 12."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nothing listens there
    conn = json.dumps({"conn_type": "salesforce",
                       "extra": {"instance_url": f"https://127.0.0.1:{port}", "access_token": "token-1"}})
    with SlackWebhookServer() as slack:
        env = calltrail_env(tmp_path, AIRFLOW_CONN_SALESFORCE_DEFAULT=conn, AIRFLOW_CONN_SLACK_ALERTS=slack.connection())
        out = run([str(BIN / "calltrail"), "run"], env, timeout=300)
    console = out.stdout
    assert out.returncode == 1, console[-4000:] + out.stderr[-4000:]
    assert "calltrail_ingest_salesforce FAILED" in console, console
    assert "calltrail_transform not run: ingestion failed" in console, console

    headline = [line for line in console.splitlines() if line.startswith("calltrail run FAILED: ")]
    assert len(headline) == 1, console
    assert headline[0].startswith("calltrail run FAILED: calltrail_ingest_salesforce / extract_tasks_from_api: "), \
        headline[0]
    assert str(port) in headline[0], f"the cause names the unreachable address: {headline[0]}"
    assert "no task reported a cause" not in headline[0]

    settings = settings_module.load(env)
    alerts = [json.loads(line) for line in settings.alerts_file.read_text().splitlines()]
    failed = [a for a in alerts if a["layer"] == "task"]
    assert [(a["dag_id"], a["task_id"], a["severity"]) for a in failed] == [
        ("calltrail_ingest_salesforce", "extract_tasks_from_api", "error")], alerts
    cause = failed[0]["observed"].splitlines()[0]
    assert cause[:200] in headline[0], f"the console's cause is the alert's: {headline[0]!r} / {cause!r}"
    assert any("extract_tasks_from_api" in text for text in slack.texts), slack.texts

    assert "every check passed" not in console, console
    assert "nothing has been published yet" in console, console

    # The transform is scheduled on both lake Assets: the failed extraction must not update the
    # Salesforce one, while the web ingestion of the same run updated its own (so events are recorded).
    con = sqlite3.connect(settings.airflow_home / "airflow.db")
    try:
        events = dict(con.execute("select a.name, count(*) from asset_event e join asset a on a.id = e.asset_id "
                                  "group by a.name").fetchall())
    finally:
        con.close()
    assert events.get("calltrail_lake_web_events", 0) >= 1, events
    assert "calltrail_lake_salesforce_task" not in events, f"a failed extraction updated the Asset: {events}"
