"""Airflow on this machine, for ``make run`` and the tests: SQLite metadata, local folders.

Every Airflow process calltrail starts gets the same environment from :func:`environment`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from calltrail.settings import PROJECT_ROOT, WAREHOUSE_POOL, Settings

log = logging.getLogger(__name__)

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _jwt_secret(airflow_home: Path) -> str:
    """A per-installation secret (64+ bytes) shared by every Airflow component."""
    path = airflow_home / ".jwt_secret"
    if not path.exists():
        airflow_home.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


def environment(settings: Settings) -> dict[str, str]:
    # The process environment as settings read it, passed on whole: the Airflow processes (and the
    # tasks they run, which load the settings again) need PATH, AIRFLOW__* and the CALLTRAIL_* variables.
    env = dict(settings.environ)
    home = settings.airflow_home
    env["AIRFLOW_HOME"] = str(home)
    defaults = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        # cosmos keeps dbt's partial parse between tasks here (its default, /tmp/cosmos, is shared
        # by every Airflow home on the machine).
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
        "AIRFLOW__API_AUTH__JWT_SECRET": _jwt_secret(home),
        # calltrail's own locations, so every task sees the same lake whatever its working folder.
        "CALLTRAIL_LANDING_DIR": str(settings.landing_dir),
        "CALLTRAIL_LAKE_DIR": str(settings.lake_dir),
        "CALLTRAIL_WAREHOUSE": str(settings.warehouse),
        "CALLTRAIL_DATA_DOCS_DIR": str(settings.data_docs_dir),
        "CALLTRAIL_DBT_DOCS_DIR": str(settings.dbt_docs_dir),
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    return env


def airflow(args: list[str], env: dict[str, str], log_file: Path, *, check: bool = True) -> int:
    """Run an ``airflow`` CLI command with its output appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a") as fh:
        fh.write(f"\n$ airflow {' '.join(args)}\n")
        fh.flush()
        rc = subprocess.run([AIRFLOW, *args], env=env, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
    if check and rc != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed (exit {rc}); see {log_file}")
    return rc


def prepare(settings: Settings, env: dict[str, str], log_file: Path, *, connection_id: str | None = None) -> bool:
    """Create or upgrade the metadata database, the pools and the dbt manifest. Safe to repeat.

    ``dbt parse`` runs beside the Airflow commands, and the check for ``connection_id`` beside
    ``pools set`` (each is a process of its own that mostly starts Python and Airflow): on two cores
    that takes about 8 s off ``make run``. Returns whether the connection ``connection_id`` is
    configured (False without one).
    """
    from concurrent.futures import ThreadPoolExecutor

    from calltrail.transform.dbt import parse

    with ThreadPoolExecutor(max_workers=2) as pool:
        parsed = pool.submit(parse, settings, log_file=log_file)
        airflow(["db", "migrate"], env, log_file)
        connected = pool.submit(connection_configured, connection_id, env, log_file) if connection_id else None
        airflow(["pools", "set", WAREHOUSE_POOL, "1",
                 "DuckDB allows one writer and readers conflict with it: every task that opens the warehouse"],
                env, log_file)
        parsed.result()
        return connected.result() if connected else False


def connection_configured(conn_id: str, env: dict[str, str], log_file: Path) -> bool:
    return airflow(["connections", "get", conn_id, "-o", "json"], env, log_file, check=False) == 0


def dags_test(dag_id: str, env: dict[str, str], log_file: Path, *, logical_date: str | None = None,
              conf: str | None = None) -> int:
    args = ["dags", "test", dag_id]
    if logical_date:
        args.append(logical_date)
    if conf:
        args += ["--conf", conf]
    return airflow(args, env, log_file, check=False)


@dataclass(frozen=True)
class DagOutcome:
    """How one DAG of :func:`test_dags` ended: its run's state, or why it did not run."""

    dag_id: str
    state: str  # "success", "failed", "not loaded", "not run", "the process exited N"
    seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


def test_dags(first: Sequence[str], then: str, env: dict[str, str], log_file: Path,
              on_start: Callable[[str], None] = lambda dag_id: None,
              on_end: Callable[[DagOutcome], None] = lambda outcome: None) -> dict[str, DagOutcome]:
    """``airflow dags test`` of ``first``, then of ``then`` if all of ``first`` succeeded, in one process.

    The process imports Airflow, parses the DAG folder and starts the in-process task API once for
    all of them, instead of once per ``airflow dags test`` command (about 12 s each on 2 cores).
    Each run is ``DAG.test()``, which is what ``airflow dags test`` calls. ``on_start`` and
    ``on_end`` report progress while the process runs; the output goes to ``log_file``.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    read_fd, write_fd = os.pipe()
    cmd = [sys.executable, "-m", "calltrail.ops.airflow_cli", *first, "--then", then, "--status-fd", str(write_fd)]
    outcomes: dict[str, DagOutcome] = {}
    with log_file.open("a") as fh:
        fh.write(f"\n$ airflow dags test {' '.join(first)} (then {then}), in one process\n")
        fh.flush()
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, pass_fds=(write_fd,))
        os.close(write_fd)
        with os.fdopen(read_fd) as status:
            for line in status:
                event = json.loads(line)
                if event["event"] == "start":
                    on_start(event["dag_id"])
                else:
                    outcome = DagOutcome(event["dag_id"], event["state"], event["seconds"])
                    outcomes[outcome.dag_id] = outcome
                    on_end(outcome)
        rc = proc.wait()
    for dag_id in (*first, then):
        if dag_id not in outcomes:  # the process ended before it reported this DAG
            if dag_id == then and any(not o.succeeded for o in outcomes.values()):
                outcomes[dag_id] = DagOutcome(dag_id, "not run")
            else:
                outcomes[dag_id] = DagOutcome(dag_id, f"the process exited {rc}")
            on_end(outcomes[dag_id])
    return outcomes


def _test_dags_here(first: Sequence[str], then: str, status_fd: int) -> int:
    """The process behind :func:`test_dags`: the DAG folder parsed once, then ``DAG.test()`` per DAG."""
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=conf.get("core", "dags_folder"))
    with os.fdopen(status_fd, "w", buffering=1) as status:
        def report(**event: object) -> None:
            status.write(json.dumps(event) + "\n")

        def run(dag_id: str) -> bool:
            report(event="start", dag_id=dag_id)
            started = time.monotonic()
            dag = bag.get_dag(dag_id)
            if dag is None:
                log.error("DAG %s did not load: %s", dag_id, bag.import_errors)
                report(event="end", dag_id=dag_id, state="not loaded", seconds=0.0)
                return False
            try:
                state = str(dag.test().state)
            except Exception:
                log.exception("DAG %s could not be run", dag_id)
                state = "failed"
            report(event="end", dag_id=dag_id, state=state, seconds=round(time.monotonic() - started, 1))
            return state == "success"

        ok = [run(dag_id) for dag_id in first]
        if all(ok):
            run(then)
        else:
            report(event="end", dag_id=then, state="not run", seconds=0.0)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="airflow dags test of several DAGs in one process")
    parser.add_argument("first", nargs="+")
    parser.add_argument("--then", required=True, help="run last, and only if all of FIRST succeeded")
    parser.add_argument("--status-fd", type=int, required=True)
    cli = parser.parse_args()
    raise SystemExit(_test_dags_here(cli.first, cli.then, cli.status_fd))
