"""The real local Airflow of ``make airflow`` (api-server, scheduler, dag-processor, triggerer;
LocalExecutor on SQLite), started as a newcomer does, after ``make run`` on the same data folder
and Airflow home: the scheduler runs the DAGs on its own on the demo data, and a real headless
Chromium follows the dbt docs lineage inside the Airflow UI."""

from __future__ import annotations

import os
import time
import urllib.parse
from pathlib import Path

import pytest

from calltrail import settings as settings_module
from tests.airflow_live import api, task_states, wait_for_run
from tests.offline_browser import assert_rendered_offline, chromium, open_offline

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("CALLTRAIL_TEST_ARTIFACTS", ROOT / "test-artifacts"))
CHROMIUM = "/usr/bin/chromium"
INGESTION = ("calltrail_ingest_web_events", "calltrail_ingest_salesforce")


@pytest.fixture(scope="module")
def live(live_airflow):
    """The Airflow of `make airflow`, started in the background at the beginning of the session
    (tests/conftest.py), stopped at its end with a check that no process is left."""
    started = live_airflow.wait_started()
    run_rc, run_output = live_airflow.make_run()
    assert run_rc == 0, f"make run (before make airflow) exited {run_rc}: {run_output[-4000:]}"
    assert started.returncode == 0, started.stdout[-4000:]
    return {"url": live_airflow.url, "env": live_airflow.env, "start": started, "groups": live_airflow.groups,
            "settings": settings_module.load(live_airflow.env), "make_run": run_output}


@pytest.fixture(scope="module")
def scheduled_ingestion(live):
    """The first scheduled run of each ingestion DAG, once finished (the DAGs run hourly; with
    catchup off the scheduler starts the latest hour as soon as a DAG is unpaused)."""
    return {dag_id: wait_for_run(live["url"], dag_id, timeout=1200, run_type="scheduled") for dag_id in INGESTION}


@pytest.fixture(scope="module")
def transform_run(live, scheduled_ingestion):
    return wait_for_run(live["url"], "calltrail_transform", timeout=1800, run_type="asset_triggered")


def test_make_airflow_after_make_run_unpauses_every_dag_and_says_so(live):
    """`make run` (airflow dags test) created the DAG rows paused; `make airflow` unpauses them."""
    assert "calltrail_transform succeeded" in live["make_run"], live["make_run"][-3000:]
    url = live["url"]
    dags = {d["dag_id"]: d for d in api(url, "/dags?limit=100")["dags"]}
    expected = {p.stem for p in (ROOT / "dags").glob("*.py")}
    assert set(dags) == expected, (set(dags), expected)
    from calltrail.cli import INGESTION_DAGS, TRANSFORM_DAG

    for dag_id in (*INGESTION_DAGS, TRANSFORM_DAG):  # make run's `dags test` runs are in this metadata database
        assert {r["run_type"] for r in api(url, f"/dags/{dag_id}/dagRuns")["dag_runs"]} >= {"manual"}, dag_id
    assert {k: d["is_paused"] for k, d in dags.items()} == dict.fromkeys(expected, False)
    assert f"DAGs        unpaused: {', '.join(sorted(expected))}" in live["start"].stdout, live["start"].stdout
    assert "data        demo data (generated)" in live["start"].stdout
    assert (f"  warehouse   {live['settings'].warehouse}  (CALLTRAIL_DBT_TARGET=duckdb)"
            in live["start"].stdout.splitlines()), live["start"].stdout


def test_make_airflow_prints_the_url_and_the_login_and_every_component_is_healthy(live):
    out = live["start"].stdout
    assert f"Airflow is up: {live['url']}" in out
    assert "no login needed on this loopback address" in out
    assert set(live["groups"]) == {"api-server", "scheduler", "dag-processor", "triggerer"}
    health = api(live["url"], "/monitor/health")
    assert {k: health[k]["status"] for k in ("metadatabase", "scheduler", "triggerer", "dag_processor")} == {
        "metadatabase": "healthy", "scheduler": "healthy", "triggerer": "healthy", "dag_processor": "healthy"}


def test_the_scheduler_runs_ingestion_on_its_schedule_and_the_transformation_on_the_assets(
        live, scheduled_ingestion, transform_run):
    url = live["url"]
    for dag_id, first in scheduled_ingestion.items():
        assert first["state"] == "success", (first, task_states(url, dag_id, first["dag_run_id"]))
        runs = api(url, f"/dags/{dag_id}/dagRuns")["dag_runs"]
        # make run's `dags test` (manual) and the scheduler's: nobody else triggered them
        assert {r["run_type"] for r in runs} == {"manual", "scheduled"}, runs
        assert {r["state"] for r in runs if r["run_type"] == "scheduled"} <= {"success", "running", "queued"}, runs
    assert transform_run["run_type"] == "asset_triggered", transform_run
    assert transform_run["state"] == "success", task_states(url, "calltrail_transform", transform_run["dag_run_id"])
    quoted = transform_run["dag_run_id"].replace(":", "%3A").replace("+", "%2B")
    events = api(url, f"/dags/calltrail_transform/dagRuns/{quoted}/upstreamAssetEvents")["asset_events"]
    assert {e["source_dag_id"] for e in events} == set(INGESTION), events

    states = task_states(url, "calltrail_transform", transform_run["dag_run_id"])
    assert {"check_source_freshness", "audit", "publish", "generate_dbt_docs", "dbt.build", "dbt.fct_touchpoints"} <= set(states)
    assert set(states.values()) == {"success"}, {k: v for k, v in states.items() if v != "success"}
    assert (live["settings"].dbt_docs_dir / "index.html").exists()


def test_chromium_follows_the_dbt_docs_lineage_of_fct_touchpoints_inside_the_airflow_ui(live, transform_run):
    from playwright.sync_api import sync_playwright

    assert transform_run["state"] == "success"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    url = live["url"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        try:
            page.goto(f"{url}/", wait_until="networkidle")
            page.get_by_role("button", name="Browse").click()
            page.screenshot(path=str(ARTIFACTS / "01-airflow-browse-menu.png"))
            with context.expect_page() as opened:  # the plugin's menu entry opens the docs in a new tab
                page.get_by_role("menuitem", name="calltrail dbt docs").click()
            docs = opened.value
            docs.wait_for_load_state("networkidle")
            assert docs.url.startswith(f"{url}/calltrail/dbt-docs/index.html"), docs.url

            docs.get_by_placeholder("Search for models...").fill("fct_touchpoints")
            docs.locator(".search-result").filter(has=docs.get_by_text("fct_touchpoints", exact=True)).click()
            docs.wait_for_url("**#!/model/model.calltrail.fct_touchpoints")
            docs.get_by_title("View Lineage Graph").click()
            docs.wait_for_function(CY_READY, timeout=60_000)
            docs.screenshot(path=str(ARTIFACTS / "02-fct-touchpoints-model-and-graph.png"))
            docs.get_by_title("View Fullscreen").first.click()
            docs.locator("input[ng-model='selectorService.selection.dirty.include']").fill("+fct_touchpoints")
            docs.locator("input[value='Update Graph']").click()
            docs.wait_for_function(CY_HAS_SOURCES, timeout=60_000)
            upstream = docs.evaluate("""() => {
                const cy = document.querySelector('#cy')._cyreg.cy;
                return cy.getElementById('model.calltrail.fct_touchpoints').predecessors('node').map(n => n.id());
            }""")
            docs.screenshot(path=str(ARTIFACTS / "03-fct-touchpoints-upstream-lineage.png"))
        finally:
            browser.close()
    assert {"source.calltrail.lake.salesforce_task", "source.calltrail.lake.web_events"} <= set(upstream), upstream
    assert {"model.calltrail.stg_salesforce__tasks", "model.calltrail.stg_web__events", "model.calltrail.int_sessions",
            "model.calltrail.int_calls_matched_to_sessions"} <= set(upstream), upstream


# The dbt docs draw the lineage with cytoscape, which keeps its instance on the container element.
CY_READY = ("() => { const e = document.querySelector('#cy'); "
            "return !!(e && e._cyreg && e._cyreg.cy && e._cyreg.cy.nodes().length > 0); }")
CY_HAS_SOURCES = ("() => { const e = document.querySelector('#cy'); return !!(e && e._cyreg && e._cyreg.cy && "
                  "e._cyreg.cy.nodes().some(n => n.id().startsWith('source.'))); }")


def test_the_data_docs_of_the_scheduled_audit_open_from_the_ui_menu_and_render_offline(live, transform_run):
    """On this loopback address Airflow gives every request an admin token (all-admins), so the
    menu entry opens the pages; tests/airflow/test_pages.py covers the login beyond loopback."""
    assert transform_run["state"] == "success"
    url = live["url"]
    docs_dir = live["settings"].data_docs_dir
    validations = list((docs_dir / "validations").rglob("*.html"))
    assert validations, f"the audit wrote no validation page under {docs_dir}"
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(f"{url}/", wait_until="networkidle")
        page.get_by_role("button", name="Browse").click()
        with context.expect_page() as opened:
            page.get_by_role("menuitem", name="calltrail Data Docs (Great Expectations)").click()
        docs = opened.value
        docs.wait_for_load_state("load")
        assert docs.url == f"{url}/calltrail/data-docs/index.html", docs.url
        docs.close()
        seen = open_offline(browser, f"{url}/calltrail/data-docs/index.html", context=context)
    # Every row is a scheduled audit's (asset-triggered): when the session crosses an hour, the next
    # hourly ingestion triggers a newer transform run whose rows come first, so not only this run's.
    assert_rendered_offline(seen, index="asset_triggered__", rows=min(len(validations), 10))


def build_log(url: str, run_id: str) -> str:
    """The log of the transformation run's `dbt.build` task, as the UI shows it."""
    quoted = urllib.parse.quote(run_id, safe="")
    found = api(url, f"/dags/calltrail_transform/dagRuns/{quoted}/taskInstances/dbt.build/logs/1?full_content=true")
    return "\n".join(str(line.get("event", line)) if isinstance(line, dict) else str(line) for line in found["content"])


def test_the_scheduled_transformation_builds_incrementally_and_the_full_refresh_param_rebuilds_everyone(
        live, transform_run):
    url = live["url"]
    assert "calltrail: incremental build of the Tasks, sessions, call matches, conversions, touchpoints and attribution" in build_log(
        url, transform_run["dag_run_id"]), "after make run, the scheduled run rebuilds only the visitors with new rows"
    triggered = api(url, "/dags/calltrail_transform/dagRuns", method="POST",
                    body={"logical_date": None, "conf": {"full_refresh": True}})
    run_id = urllib.parse.quote(triggered["dag_run_id"], safe="")
    deadline = time.monotonic() + 900
    while (run := api(url, f"/dags/calltrail_transform/dagRuns/{run_id}"))["state"] not in ("success", "failed"):
        assert time.monotonic() < deadline, run
        time.sleep(5)
    assert run["state"] == "success", task_states(url, "calltrail_transform", triggered["dag_run_id"])
    assert ("calltrail: full build of the Tasks, sessions, call matches, conversions, touchpoints and attribution: dbt ran with --full-refresh"
            in build_log(url, triggered["dag_run_id"]))
