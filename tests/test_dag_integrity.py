"""The DAG folder parses cleanly, holds the expected DAGs, and does no work at import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from calltrail.airflow.timeouts import GUARDED
from tests.airflow_env import airflow_env

ROOT = Path(__file__).resolve().parents[1]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))
EXPECTED = {"calltrail_ingest_salesforce", "calltrail_ingest_web_events", "calltrail_transform",
            "calltrail_reconcile_salesforce"}
OBJECTS = ("lead", "contact", "opportunity", "opportunity_contact_role")  # besides Task, by landing folder
HEAVY = ["duckdb", "pandas", "pyarrow", "simple_salesforce", "great_expectations", "dbt.adapters.duckdb",
         "calltrail.lake.convert"]

PROBE = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
elapsed = time.perf_counter() - started
print(json.dumps({
    "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dags": {d.dag_id: {"tasks": sorted(t.task_id for t in d.tasks), "catchup": d.catchup,
                        "schedule": str(getattr(d.timetable, "expression", d.timetable)), "file": d.fileloc,
                        "outlets": sorted(str(o.name) for t in d.tasks for o in t.outlets),
                        "by_task": {t.task_id: {"outlets": sorted(str(o.name) for o in t.outlets),
                                                "trigger_rule": str(getattr(t.trigger_rule, "value", t.trigger_rule)),
                                                "upstream": sorted(t.upstream_task_ids),
                                                "timeout_guarded": getattr(getattr(t, "python_callable", None),
                                                                           sys.argv[3], False)}
                                   for t in d.tasks}}
             for d in bag.dags.values()},
    "heavy": [m for m in json.loads(sys.argv[2]) if m in sys.modules],
    "seconds": elapsed,
}))
"""


def parse(path: Path, tmp_path: Path, **settings: str) -> dict:
    """Parse a DAG file or folder in a fresh interpreter, as the dag-processor does."""
    out = subprocess.run([sys.executable, "-c", PROBE, str(path), json.dumps(HEAVY), GUARDED],
                         env=airflow_env(tmp_path, **settings), capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_dag_folder_has_no_import_errors_and_the_expected_dags(tmp_path, dbt_manifest):
    result = parse(ROOT / "dags", tmp_path)
    assert result["import_errors"] == {}
    assert set(result["dags"]) == EXPECTED
    for dag_id, dag in result["dags"].items():
        assert dag["catchup"] is False, dag_id
        # made with calltrail.airflow.timeouts.task: the execution timeout is delivered where it is safe
        unguarded = [t for t, spec in dag["by_task"].items() if spec["timeout_guarded"] is not True]
        assert not unguarded, (dag_id, unguarded)
    for dag_id in ("calltrail_ingest_salesforce", "calltrail_ingest_web_events"):
        assert result["dags"][dag_id]["schedule"] == "0 * * * *", dag_id  # hourly
    assert result["dags"]["calltrail_ingest_web_events"]["outlets"] == ["calltrail_lake_web_events"]
    assert result["dags"]["calltrail_reconcile_salesforce"]["schedule"] == "0 4 * * 0"  # weekly, Sundays 04:00 UTC
    assert result["dags"]["calltrail_reconcile_salesforce"]["outlets"] == sorted(
        f"calltrail_lake_salesforce_{o}" for o in ("task", *OBJECTS))


def test_the_salesforce_asset_is_updated_only_when_the_whole_ingestion_succeeded(tmp_path, dbt_manifest):
    """One task carries the Asset, after both ingestion tasks, and runs only when none failed
    (a skipped API task, for want of a connection, is no failure)."""
    tasks = parse(ROOT / "dags" / "calltrail_ingest_salesforce.py", tmp_path)["dags"][
        "calltrail_ingest_salesforce"]["by_task"]
    carriers = {k: t for k, t in tasks.items() if t["outlets"]}
    assert sorted(carriers) == sorted(f"salesforce_{o}_ingested" for o in ("tasks", *OBJECTS)), \
        f"tasks that update an Asset: {sorted(carriers)}"
    final = carriers["salesforce_tasks_ingested"]
    assert final["outlets"] == ["calltrail_lake_salesforce_task"]
    assert final["upstream"] == ["extract_tasks_from_api", "ingest_task_files"]
    assert final["trigger_rule"] == "none_failed"


def test_each_salesforce_object_has_its_asset_after_its_own_extraction_and_files(tmp_path, dbt_manifest):
    """Leads, Contacts, Opportunities and OpportunityContactRoles: an extraction and a file ingestion
    each, and an Asset updated only when neither failed; the extractions start after the Tasks'."""
    tasks = parse(ROOT / "dags" / "calltrail_ingest_salesforce.py", tmp_path)["dags"][
        "calltrail_ingest_salesforce"]["by_task"]
    for obj in OBJECTS:
        carrier = tasks[f"salesforce_{obj}_ingested"]
        assert carrier["outlets"] == [f"calltrail_lake_salesforce_{obj}"], (obj, carrier)
        assert carrier["upstream"] == [f"extract_{obj}_from_api", f"ingest_{obj}_files"], (obj, carrier)
        assert carrier["trigger_rule"] == "none_failed", (obj, carrier)
        assert tasks[f"extract_{obj}_from_api"]["upstream"] == ["extract_tasks_from_api"], (obj, tasks)
        assert tasks[f"ingest_{obj}_files"]["upstream"] == [], (obj, tasks)


def test_the_reconciliation_schedule_is_a_setting(tmp_path, dbt_manifest):
    result = parse(ROOT / "dags" / "calltrail_reconcile_salesforce.py", tmp_path,
                   CALLTRAIL_SF_RECONCILE_SCHEDULE="30 2 * * 1")
    assert result["dags"]["calltrail_reconcile_salesforce"]["schedule"] == "30 2 * * 1"


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_does_no_work_at_import(dag_file, tmp_path, dbt_manifest):
    """No heavy library is imported at parse time, and parsing stays far inside Airflow's
    30-second dagbag_import_timeout, past which the dag-processor kills the file."""
    result = parse(dag_file, tmp_path)
    assert result["import_errors"] == {}
    assert result["heavy"] == [], f"{dag_file.name} imports {result['heavy']} at parse time"
    print(f"{dag_file.name}: parsed in {result['seconds']:.3f} s")
    assert result["seconds"] < 30, f"{dag_file.name} took {result['seconds']:.1f} s to parse"


def test_transform_dag_shows_every_model_and_its_tests_gates_publishing_and_uses_the_warehouse_pool(tmp_path, dbt_manifest):
    probe = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder=sys.argv[1]).dags["calltrail_transform"]
print(json.dumps({t.task_id: {"pool": t.pool, "upstream": sorted(t.upstream_task_ids)} for t in dag.tasks}))
"""
    out = subprocess.run([sys.executable, "-c", probe, str(ROOT / "dags" / "calltrail_transform.py")],
                         env=airflow_env(tmp_path), capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    tasks = json.loads(out.stdout.strip().splitlines()[-1])
    models = ["stg_salesforce__task_versions", "stg_salesforce__tasks", "stg_web__events",
              "int_sessions", "int_calls_matched_to_sessions", "int_conversions", "fct_touchpoints",
              "dq_calls_missing_bizible_id"]
    for model in [*models, "int_session_events", "rpt_touchpoints_by_channel", "rpt_call_match_rates"]:
        # one task per model, after the one build, reporting the model and its data tests
        assert f"dbt.{model}" in tasks, f"{model} is not shown as a task: {sorted(tasks)}"
        assert "dbt.build" in tasks[f"dbt.{model}"]["upstream"], tasks[f"dbt.{model}"]
    # lineage: a model's task follows the tasks of the models it reads
    assert {"dbt.int_calls_matched_to_sessions", "dbt.int_sessions"} <= set(tasks["dbt.fct_touchpoints"]["upstream"])
    assert tasks["dbt.int_sessions"]["upstream"] == ["dbt.build", "dbt.channel_rules", "dbt.int_changed_visitors",
                                                     "dbt.int_increment", "dbt.int_rebuilt_web_events",
                                                     "dbt.int_session_events", "dbt.referrer_hosts",
                                                     "dbt.stg_web__events"]
    # a test of two models (relationships) is reported by the later model's task: no task of its own
    dbt_tasks = sorted(k for k in tasks if k.startswith("dbt."))
    assert not [k for k in dbt_tasks if "relationships" in k or k.startswith("dbt.test")], dbt_tasks
    # only the build opens the warehouse; the nodes' tasks read its results
    assert {k: t["pool"] for k, t in tasks.items() if t["pool"] == "calltrail_warehouse"} == {
        k: "calltrail_warehouse" for k in ["check_source_freshness", "dbt.build", "audit", "publish", "generate_dbt_docs"]}
    # write-audit-publish: freshness before dbt; the audit after every dbt task; publish only after the audit
    assert all("check_source_freshness" in t["upstream"] for k, t in tasks.items()
               if k.startswith("dbt.") and not any(u.startswith("dbt.") for u in t["upstream"]))
    assert tasks["audit"]["upstream"] and all(u.startswith("dbt.") for u in tasks["audit"]["upstream"])
    assert tasks["publish"]["upstream"] == ["audit"]
    assert tasks["generate_dbt_docs"]["upstream"] == tasks["audit"]["upstream"]  # after the build, beside the audit
