"""The real local Airflow of ``make airflow`` (api-server, scheduler, dag-processor, triggerer;
LocalExecutor on SQLite): the scheduler runs the DAGs on its own on the demo data, and a real
headless Chromium follows the dbt docs lineage inside the Airflow UI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from calltrail import settings as settings_module
from tests.airflow_env import BIN, calltrail_env, run
from tests.airflow_live import api, free_port, processes_of, task_states, wait_for_run

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("CALLTRAIL_TEST_ARTIFACTS", ROOT / "test-artifacts"))
CHROMIUM = "/usr/bin/chromium"
INGESTION = ("calltrail_ingest_web_events", "calltrail_ingest_salesforce")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live")
    port = free_port()
    env = calltrail_env(tmp, CALLTRAIL_AIRFLOW_PORT=str(port), CALLTRAIL_DEMO_VISITORS="150")
    settings = settings_module.load(env)
    started = run([str(BIN / "calltrail"), "airflow", "start"], env, timeout=600)
    state = settings.airflow_home / "calltrail-airflow.json"
    groups = json.loads(state.read_text())["groups"] if state.exists() else {}
    try:
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        yield {"url": f"http://127.0.0.1:{port}", "env": env, "settings": settings, "start": started,
               "groups": groups}
    finally:
        stopped = run([str(BIN / "calltrail"), "airflow", "stop"], env, timeout=120)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        for pgid in groups.values():
            with pytest.raises(ProcessLookupError):
                os.killpg(pgid, 0)
        assert processes_of(settings.airflow_home) == [], "a process of this Airflow is still running"


@pytest.fixture(scope="module")
def transform_run(live):
    return wait_for_run(live["url"], "calltrail_transform", timeout=1200)


def test_make_airflow_prints_the_url_and_the_login_and_every_component_is_healthy(live):
    out = live["start"].stdout
    assert f"Airflow is up: {live['url']}" in out
    assert "no login needed on this loopback address" in out
    assert set(live["groups"]) == {"api-server", "scheduler", "dag-processor", "triggerer"}
    health = api(live["url"], "/monitor/health")
    assert {k: health[k]["status"] for k in ("metadatabase", "scheduler", "triggerer", "dag_processor")} == {
        "metadatabase": "healthy", "scheduler": "healthy", "triggerer": "healthy", "dag_processor": "healthy"}


def test_the_scheduler_runs_ingestion_on_its_schedule_and_the_transformation_on_the_assets(live, transform_run):
    url = live["url"]
    for dag_id in INGESTION:
        runs = api(url, f"/dags/{dag_id}/dagRuns")["dag_runs"]
        assert runs and all(r["run_type"] == "scheduled" for r in runs), runs  # nobody triggered them
        assert {r["state"] for r in runs} == {"success"}, runs
    assert transform_run["run_type"] == "asset_triggered", transform_run
    assert transform_run["state"] == "success", task_states(url, "calltrail_transform", transform_run["dag_run_id"])
    quoted = transform_run["dag_run_id"].replace(":", "%3A").replace("+", "%2B")
    events = api(url, f"/dags/calltrail_transform/dagRuns/{quoted}/upstreamAssetEvents")["asset_events"]
    assert {e["source_dag_id"] for e in events} == set(INGESTION), events

    states = task_states(url, "calltrail_transform", transform_run["dag_run_id"])
    assert {"check_source_freshness", "audit", "publish", "generate_dbt_docs", "dbt.fct_touchpoints.run"} <= set(states)
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
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(f"{url}/", wait_until="networkidle")
            page.get_by_role("button", name="Browse").click()
            page.get_by_role("menuitem", name="calltrail dbt docs").click()
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(ARTIFACTS / "01-airflow-dbt-docs-page.png"))

            docs = _dbt_docs_frame(page)
            docs.goto(f"{url}/cosmos/calltrail/dbt_docs_index.html#!/model/model.calltrail.fct_touchpoints")
            docs.get_by_text("fct_touchpoints").first.wait_for()
            page.screenshot(path=str(ARTIFACTS / "02-fct-touchpoints-model.png"))

            docs.locator("[data-toggle='tooltip'][title='View Lineage Graph'], .lineage-button, "
                         "button:has-text('View Lineage Graph')").first.click()
            docs.wait_for_function("() => document.querySelector('#cy') && document.querySelector('#cy')._cyreg "
                                   "&& document.querySelector('#cy')._cyreg.cy.nodes().length > 0")
            upstream = docs.evaluate("""() => {
                const cy = document.querySelector('#cy')._cyreg.cy;
                const node = cy.nodes().filter(n => n.id() === 'model.calltrail.fct_touchpoints');
                return node.predecessors('node').map(n => n.id());
            }""")
            page.screenshot(path=str(ARTIFACTS / "03-fct-touchpoints-lineage.png"))
        finally:
            browser.close()
    assert {"source.calltrail.lake.salesforce_task", "source.calltrail.lake.web_events"} <= set(upstream), upstream
    assert {"model.calltrail.stg_salesforce__tasks", "model.calltrail.int_sessions",
            "model.calltrail.int_calls_matched_to_sessions"} <= set(upstream), upstream


def _dbt_docs_frame(page):
    """The dbt docs app: the cosmos page embeds it in an iframe (or the page is the app itself)."""
    for frame in page.frames:
        if "dbt_docs_index.html" in frame.url:
            return frame
    return page
