"""A scheduler restart in the middle of a run, on the real local Airflow of ``make airflow``
(``calltrail airflow start``: api-server, scheduler, dag-processor, triggerer; LocalExecutor).

The scheduler's process group is killed (SIGKILL: a crash, an out-of-memory kill) while the web
events ingestion task writes its partition, and the scheduler is started again. The run then
completes, or is failed and re-run; either way the lake holds every event exactly once.

Slow (Airflow start-up, a large landing file, the scheduler's detection of the lost task): minutes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import duckdb

from calltrail import settings as settings_module
from calltrail.ops import airflow_cli
from calltrail.ops import airflow_services as services
from tests.airflow_env import BIN, calltrail_env, run
from tests.airflow_live import api, free_port, processes_of, task_states
from tests.faults.helpers import backdate, write_events, write_tasks

WEB = "calltrail_ingest_web_events"
EVENTS = 2_000_000


def runs_of(url: str, dag_id: str) -> list[dict]:
    return api(url, f"/dags/{dag_id}/dagRuns?order_by=start_date")["dag_runs"]


def command_of(pid: int) -> str:
    try:
        return f"{pid} " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:80]
    except OSError:
        return f"{pid} (ended)"


def task_instance(url: str, run_id: str) -> dict:
    ti = api(url, f"/dags/{WEB}/dagRuns/{quote(run_id, safe='')}/taskInstances/ingest_web_events")
    return {k: ti.get(k) for k in ("state", "try_number", "start_date", "end_date", "pid")}


def lake_counts(lake_dir) -> tuple[int, int]:
    files = sorted(lake_dir.glob("web_events/*/events.parquet"))
    if not files:
        return 0, 0
    paths = ", ".join(f"'{p}'" for p in files)
    con = duckdb.connect()
    try:
        return con.execute(f"select count(*), count(distinct event_id) from read_parquet([{paths}])").fetchone()
    finally:
        con.close()


def test_a_scheduler_killed_mid_ingestion_and_started_again_leaves_every_event_in_the_lake_exactly_once(tmp_path):
    port = free_port()
    env = calltrail_env(
        tmp_path, CALLTRAIL_AIRFLOW_PORT=str(port), CALLTRAIL_DBT_TARGET_DIR=str(tmp_path / "dbt_target"),
        # How soon the restarted scheduler gives up on the lost task (defaults: 300 s each).
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="60",
        AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL="30")
    s = settings_module.load(env)
    write_events(s.web_landing_dir / "events-big.jsonl", EVENTS)
    write_tasks(s.task_landing_dir / "tasks.jsonl", 100)
    for f in (s.web_landing_dir / "events-big.jsonl", s.task_landing_dir / "tasks.jsonl"):
        backdate(f)
    url = f"http://127.0.0.1:{port}"
    log = []
    started = run([str(BIN / "calltrail"), "airflow", "start"], env, timeout=900)
    try:
        assert started.returncode == 0, started.stdout[-4000:] + started.stderr[-4000:]
        # the lake is what is checked: the transformation of 2 million events, which the ingestion
        # would trigger, would only keep both cores busy (and the scheduler waiting at the stop)
        api(url, "/dags/calltrail_transform", method="PATCH", body={"is_paused": True})
        groups = services.running(s)
        scratch = s.lake_dir / ".tmp"
        deadline = time.monotonic() + 600
        while not list(scratch.glob("*/events.parquet")):  # the web events partition is being written
            assert time.monotonic() < deadline, f"the ingestion never started writing: {runs_of(url, WEB)}"
            time.sleep(0.1)
        run_id = runs_of(url, WEB)[0]["dag_run_id"]
        log.append(f"{datetime.now(UTC).isoformat()} ingestion writing: {task_states(url, WEB, run_id)}")

        os.killpg(groups["scheduler"], signal.SIGKILL)
        time.sleep(5)
        alive = [command_of(pid) for pid in processes_of(s.airflow_home)]
        log.append(f"scheduler killed; processes of this Airflow still alive: {alive}")
        senv = services.service_environment(s, airflow_cli.environment(s),
                                            services.Endpoint(s.airflow_host, s.airflow_port))
        with (s.airflow_home / "logs" / "components" / "scheduler-restarted.log").open("a") as out:
            restarted = subprocess.Popen([airflow_cli.AIRFLOW, "scheduler"], env=senv, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        state = s.airflow_home / services.STATE_FILE
        recorded = json.loads(state.read_text())
        recorded["groups"]["scheduler"] = restarted.pid  # so that `calltrail airflow stop` stops it
        state.write_text(json.dumps(recorded))

        deadline = time.monotonic() + 900
        while True:
            first = next(r for r in runs_of(url, WEB) if r["dag_run_id"] == run_id)
            if first["state"] in ("success", "failed"):
                break
            assert time.monotonic() < deadline, f"the interrupted run never finished: {first}"
            time.sleep(5)
        log.append(f"interrupted run ended {first['state']}: {task_instance(url, run_id)}")
        if first["state"] == "failed":  # re-run it, as the next scheduled run would
            api(url, f"/dags/{WEB}/dagRuns", method="POST", body={"logical_date": None})
            deadline = time.monotonic() + 900
            while True:
                rerun = [r for r in runs_of(url, WEB) if r["dag_run_id"] != run_id]
                if rerun and rerun[-1]["state"] in ("success", "failed"):
                    break
                assert time.monotonic() < deadline, f"the re-run never finished: {rerun}"
                time.sleep(5)
            log.append(f"re-run ended {rerun[-1]['state']}")
            assert rerun[-1]["state"] == "success", (log, task_states(url, WEB, rerun[-1]["dag_run_id"]))
        total, distinct = lake_counts(s.lake_dir)
        assert (total, distinct) == (EVENTS, EVENTS), \
            f"expected each of the {EVENTS:,} events once, the lake holds {total:,} rows ({distinct:,} distinct): {log}"
        partitions = sorted(p.name for p in (s.lake_dir / "web_events").iterdir())
        assert len(partitions) == 1, partitions
    finally:
        stopped = run([str(BIN / "calltrail"), "airflow", "stop"], env, timeout=300)
        print("\n".join(log))
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert processes_of(s.airflow_home) == [], "a process of this Airflow is still running"
