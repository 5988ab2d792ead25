"""Every task of every DAG alerts when it fails, and the scheduler's retries are a setting that
`calltrail run` turns off (the DAG folder parsed in a fresh interpreter, as the dag-processor does)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.airflow_env import airflow_env

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
    "tasks": {f"{d.dag_id}.{t.task_id}": {
        "callbacks": [getattr(c, "__name__", str(c)) for c in (t.on_failure_callback or [])]
        if isinstance(t.on_failure_callback, list) else [getattr(t.on_failure_callback, "__name__", None)],
        "retries": t.retries, "retry_delay_s": t.retry_delay.total_seconds()}
        for d in bag.dags.values() for t in d.tasks},
}))
"""


def parse(tmp_path: Path, **env: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / "dags")], env=airflow_env(tmp_path, **env),
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_task_of_every_dag_alerts_on_failure_and_the_scheduler_retries_the_api_extraction(
        tmp_path, dbt_manifest):
    result = parse(tmp_path)
    assert result["import_errors"] == {}
    tasks = result["tasks"]
    assert {name.split(".")[0] for name in tasks} == {
        "calltrail_ingest_salesforce", "calltrail_ingest_web_events", "calltrail_reconcile_salesforce",
        "calltrail_transform"}
    silent = sorted(name for name, t in tasks.items() if "alert_task_failure" not in t["callbacks"])
    assert silent == [], f"tasks that fail without an alert: {silent}"
    api = tasks["calltrail_ingest_salesforce.extract_tasks_from_api"]
    assert (api["retries"], api["retry_delay_s"]) == (2, 300.0), api


def test_the_retries_are_settings_and_calltrail_run_turns_them_off(tmp_path, dbt_manifest):
    tuned = parse(tmp_path, CALLTRAIL_TASK_RETRIES="4", CALLTRAIL_TASK_RETRY_DELAY_MINUTES="0.5")
    api = tuned["tasks"]["calltrail_ingest_salesforce.extract_tasks_from_api"]
    assert (api["retries"], api["retry_delay_s"]) == (4, 30.0), api

    from calltrail.cli import _interactive
    from calltrail.settings import TASK_RETRIES_VAR

    interactive = _interactive(airflow_env(tmp_path))
    assert interactive[TASK_RETRIES_VAR] == "0"
    off = parse(tmp_path, **{TASK_RETRIES_VAR: interactive[TASK_RETRIES_VAR]})
    assert off["tasks"]["calltrail_ingest_salesforce.extract_tasks_from_api"]["retries"] == 0
