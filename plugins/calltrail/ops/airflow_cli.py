"""Airflow on this machine, for ``make run`` and the tests: SQLite metadata, local folders.

Every Airflow process calltrail starts gets the same environment from :func:`environment`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import queue
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# Python's warning filters (``PYTHONWARNINGS``) added for every Airflow process and the tasks they
# run, after the user's own. Starlette warns when its test client is imported with httpx and not
# httpx2; Airflow imports it (through svcs, for type hints) wherever it loads its execution API (the
# api-server, `airflow dags test`, `airflow db migrate`) and never uses it: a line no user can act on.
QUIETED_WARNINGS = ("ignore:Using `httpx` with `starlette.testclient` is deprecated",)


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
        "AIRFLOW__API_AUTH__JWT_SECRET": _jwt_secret(home),
        # calltrail's own locations, so every task sees the same lake whatever its working folder.
        "CALLTRAIL_LANDING_DIR": str(settings.landing_dir),
        "CALLTRAIL_LAKE_DIR": str(settings.lake_dir),
        "CALLTRAIL_WAREHOUSE": str(settings.warehouse),
        "CALLTRAIL_DATA_DOCS_DIR": str(settings.data_docs_dir),
        "CALLTRAIL_DBT_DOCS_DIR": str(settings.dbt_docs_dir),
        "CALLTRAIL_REPORT_DIR": str(settings.report_dir),
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    env["PYTHONWARNINGS"] = ",".join(filter(None, [env.get("PYTHONWARNINGS"), *QUIETED_WARNINGS]))
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


POOL_DESCRIPTION = "DuckDB allows one writer and readers conflict with it: every task that opens the warehouse"
NOT_CONNECTED = 3  # the exit code of the metadata step when the connection asked about is not configured


def prepare(settings: Settings, env: dict[str, str], log_file: Path, *, connection_id: str | None = None,
            dags: DagsProcess | None = None) -> bool:
    """Create or upgrade the metadata database, the pool and the dbt manifest. Safe to repeat.

    One Python process does what ``airflow db migrate``, ``airflow pools set`` and ``airflow
    connections get`` would do (each of those starts Python and imports Airflow, about 3 s on two
    cores), while ``dbt parse`` runs beside it: a process of its own, or ``dags`` (a
    :class:`DagsProcess` started with ``prepare``), which then goes on to run the DAGs. Returns
    whether the connection ``connection_id`` is configured (False without one).
    """
    from concurrent.futures import ThreadPoolExecutor

    from calltrail.transform.dbt import parse

    log_file.parent.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=1) as pool:
        parsed = pool.submit(parse, settings, log_file=log_file)
        connected = dags.prepared() if dags else _prepare_in_a_process(env, log_file, connection_id)
        parsed.result()
        return connected


def _prepare_in_a_process(env: dict[str, str], log_file: Path, connection_id: str | None) -> bool:
    args = ["prepare", *(["--connection", connection_id] if connection_id else [])]
    with log_file.open("a") as fh:
        fh.write("\n$ airflow db migrate; airflow pools set; airflow connections get (in one process)\n")
        fh.flush()
        rc = subprocess.run([sys.executable, "-m", "calltrail.ops.airflow_cli", *args], env=env, stdout=fh,
                            stderr=subprocess.STDOUT, check=False).returncode
    if rc not in (0, NOT_CONNECTED):
        raise RuntimeError(f"preparing the Airflow metadata database failed (exit {rc}); see {log_file}")
    return bool(connection_id) and rc == 0


def _prepare_here(connection_id: str | None) -> int:
    """The process behind :func:`prepare`: ``airflow db migrate``, the pool, the connection lookup."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection
    from airflow.models.pool import Pool
    from airflow.utils import db

    db.upgradedb()  # what `airflow db migrate` runs
    Pool.create_or_update_pool(WAREHOUSE_POOL, 1, POOL_DESCRIPTION, include_deferred=False)
    log.info("pool %s: 1 slot", WAREHOUSE_POOL)
    if connection_id:
        try:
            Connection.get_connection_from_secrets(connection_id)
        except AirflowNotFoundException:
            log.info("no connection %r", connection_id)
            return NOT_CONNECTED
    return 0


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
    """How one DAG of :class:`DagsProcess` ended: its run's state, or why it did not run."""

    dag_id: str
    state: str  # "success", "failed", "not loaded", "not run", "the process exited N"
    seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


STOPPED = "stopped by calltrail run"  # the start of the state of a DAG whose run the watchdog stopped


@dataclass(frozen=True)
class Stall:
    """How long :meth:`DagsProcess.follow` waits for a task to end before it stops the process, and
    why that long (told in the DAG's state)."""

    seconds: float
    why: str


@dataclass(frozen=True)
class TaskDone:
    """A task of a :class:`DagsProcess` run that ended: the ``done``-th of its DAG's ``total`` tasks."""

    dag_id: str
    task_id: str
    state: str  # "success" or "failed"
    seconds: float
    done: int
    total: int


class DagsProcess:
    """``airflow dags test`` of ``first``, then of ``then`` if all of ``first`` succeeded, in one process.

    The process imports Airflow, parses the DAG folder and starts the in-process task API once for
    all of them, instead of once per ``airflow dags test`` command (about 12 s each on 2 cores).
    Each run is ``DAG.test()``, which is what ``airflow dags test`` calls; ``then`` runs with the
    run conf ``then_conf`` (its params, e.g. ``{"full_refresh": true}``).

    Start it before the metadata database and the manifest are ready. With ``prepare`` it first
    makes the metadata database and the pool itself and looks up ``connection_id``
    (:meth:`prepared` waits for that), as :func:`prepare` does in a process of its own; without it,
    the caller prepares. Then, while the manifest is made, it builds Airflow's in-process task API
    and imports dbt, Great Expectations and the libraries the tasks use. It reads the DAG folder and
    runs the DAGs only after :meth:`go`; :meth:`cancel` ends it. :meth:`follow` reports progress
    while it runs; the output goes to ``log_file``.
    """

    def __init__(self, first: Sequence[str], then: str, env: dict[str, str], log_file: Path, *,
                 prepare: bool = False, connection_id: str | None = None,
                 then_conf: dict[str, Any] | None = None) -> None:
        self.first, self.then = list(first), then
        self.log_file = log_file
        log_file.parent.mkdir(parents=True, exist_ok=True)
        status_read, status_write = os.pipe()
        go_read, go_write = os.pipe()
        cmd = [sys.executable, "-m", "calltrail.ops.airflow_cli", "test", *first, "--then", then,
               "--status-fd", str(status_write), "--go-fd", str(go_read)]
        if prepare:
            cmd += ["--prepare", *(["--connection", connection_id] if connection_id else [])]
        if then_conf:
            cmd += ["--then-conf", json.dumps(then_conf)]
        with log_file.open("a") as fh:
            prepared = "airflow db migrate, airflow pools set, airflow connections get, then " if prepare else ""
            fh.write(f"\n$ {prepared}airflow dags test {' '.join(first)} (then {then}), in one process\n")
            fh.flush()
            self.proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                         pass_fds=(status_write, go_read))
        os.close(status_write)
        os.close(go_read)
        self._status = os.fdopen(status_read)
        self._go = os.fdopen(go_write, "w")

    def _send(self, word: str) -> None:
        try:
            self._go.write(word + "\n")
            self._go.close()
        except BrokenPipeError:  # the process already ended; follow() reports how
            pass

    def prepared(self) -> bool:
        """With ``prepare``: wait until the process has made the metadata database and the pool
        (what :func:`prepare` does besides the parse); whether the connection asked about is
        configured. Raises RuntimeError when that failed."""
        line = self._status.readline()
        event = json.loads(line) if line else {}
        if event.get("event") != "prepared":
            self.proc.wait()
            raise RuntimeError(f"preparing the Airflow metadata database failed (exit {self.proc.returncode}); "
                               f"see {self.log_file}")
        if event["rc"] not in (0, NOT_CONNECTED):
            raise RuntimeError(f"preparing the Airflow metadata database failed: {event.get('error')}; "
                               f"see {self.log_file}")
        return event["rc"] == 0 and event["asked"]

    def go(self, environ: dict[str, str] | None = None) -> None:
        """Run the DAGs; ``environ``: variables to set in the process first (its tasks read their
        settings from its environment when they run)."""
        self._send("go" + (" " + json.dumps(environ) if environ else ""))

    def cancel(self) -> None:
        self._send("stop")
        self._status.close()
        self.proc.wait()

    def follow(self, on_start: Callable[[str], None] = lambda dag_id: None,
               on_end: Callable[[DagOutcome], None] = lambda outcome: None,
               on_task: Callable[[TaskDone], None] = lambda done: None, *,
               stall: Stall | None = None) -> dict[str, DagOutcome]:
        """Report each DAG's start and end and each task's end as the process tells them, until it
        ends. With ``stall``: when nothing was told for ``stall.seconds`` (the DAGs run one task
        at a time, each within its limit), the process and its children are stopped, and the DAG
        then running ends with a state that says so; the DAGs after it do not run."""
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            with self._status as status:
                for line in status:
                    lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, name="dags-status", daemon=True).start()
        outcomes: dict[str, DagOutcome] = {}
        told = time.monotonic()
        dag_running = task_running = stopped = stopped_dag = None
        dag_clock = told
        while True:
            try:
                line = lines.get(timeout=None if stall is None else 1.0)
            except queue.Empty:
                idle = time.monotonic() - told
                if stall is not None and stopped is None and idle > stall.seconds:
                    running = f"task {task_running} still running" if task_running else "no task running"
                    stopped, stopped_dag = f"{STOPPED}: no task ended for {idle:.0f} s ({running}; {stall.why})", dag_running
                    self._stop_tree()
                continue
            if line is None:
                break
            told = time.monotonic()
            event = json.loads(line)
            if event["event"] == "start":
                dag_running, task_running, dag_clock = event["dag_id"], None, told
                on_start(event["dag_id"])
            elif event["event"] == "running":
                task_running = event["task_id"]
            elif event["event"] == "task":
                task_running = None
                on_task(TaskDone(event["dag_id"], event["task_id"], event["state"], event["seconds"],
                                 event["done"], event["total"]))
            else:
                dag_running = None
                outcome = DagOutcome(event["dag_id"], event["state"], event["seconds"])
                outcomes[outcome.dag_id] = outcome
                on_end(outcome)
        rc = self.proc.wait()
        for dag_id in (*self.first, self.then):
            if dag_id not in outcomes:  # the process ended before it reported this DAG
                if stopped is not None and dag_id == stopped_dag:
                    outcomes[dag_id] = DagOutcome(dag_id, stopped, round(time.monotonic() - dag_clock, 1))
                elif stopped is not None or (dag_id == self.then and any(not o.succeeded for o in outcomes.values())):
                    outcomes[dag_id] = DagOutcome(dag_id, "not run")
                else:
                    outcomes[dag_id] = DagOutcome(dag_id, f"the process exited {rc}")
                on_end(outcomes[dag_id])
        return outcomes

    def _stop_tree(self) -> None:
        """SIGKILL to the process and its children. Not SIGTERM first: Airflow's ``DAG.test()``
        takes it as the end of the running task and goes on with the next ones (seen), and a
        process that is stuck is not one to wait for. What a kill leaves is safe: the lake's
        partitions appear whole or not at all, and DuckDB's file and PostgreSQL roll back what was
        not committed (docs/faults.md)."""
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()


def _task_progress(report: Callable[..., None]) -> Any:
    """An Airflow listener (the task-instance hooks of ``airflow.sdk.listener``) that reports each
    task that ends, with its duration and how many of its DAG's tasks have ended. Built in the
    process that runs the DAGs, which imports Airflow anyway."""
    from airflow.listeners import hookimpl

    class TaskProgress:
        def __init__(self) -> None:
            self.total = 0
            self.done = 0
            self.started: dict[str, float] = {}

        def begin(self, total: int) -> None:
            self.total, self.done, self.started = total, 0, {}

        def _ended(self, task_instance: Any, state: str) -> None:
            self.done += 1
            started = self.started.pop(task_instance.task_id, time.monotonic())
            report(event="task", dag_id=task_instance.dag_id, task_id=task_instance.task_id, state=state,
                   seconds=round(time.monotonic() - started, 1), done=self.done, total=self.total)

        @hookimpl
        def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
            self.started[task_instance.task_id] = time.monotonic()
            report(event="running", dag_id=task_instance.dag_id, task_id=task_instance.task_id)

        @hookimpl
        def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
            self._ended(task_instance, "success")

        @hookimpl
        def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
            self._ended(task_instance, "failed")

    return TaskProgress()


def _warm_up(go: Any) -> None:
    """While the caller prepares: Airflow's in-process task API (the FastAPI app ``DAG.test()``
    talks to, cached), then, until the word on ``go`` arrives, the libraries the tasks import."""
    import importlib
    import select

    import httpx
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    api = in_process_api_server()
    # The app's first request builds what it serves lazily (about 7 s): make it now, not in the
    # first task. The transport is cached with the app, and DAG.test() uses the same one.
    httpx.Client(transport=api.transport, base_url="http://in-process.invalid").get("/health").raise_for_status()
    for module in ("dbt.cli.main", "dbt.adapters.duckdb", "duckdb", "pyarrow.parquet", "great_expectations"):
        if select.select([go], [], [], 0)[0]:  # the word came: the DAGs go first, the rest on demand
            return
        importlib.import_module(module)


def _test_dags_here(first: Sequence[str], then: str, status_fd: int, go_fd: int, *, prepare: bool = False,
                    connection_id: str | None = None, then_conf: dict[str, Any] | None = None) -> int:
    """The process behind :class:`DagsProcess`: prepare (if asked), warm up, wait for the word,
    then the DAG folder parsed once and ``DAG.test()`` per DAG."""
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.listener import get_listener_manager

    started = time.monotonic()
    with os.fdopen(status_fd, "w", buffering=1) as status:
        def report(**event: object) -> None:
            status.write(json.dumps(event) + "\n")

        if prepare:
            # the same Python and Airflow as the DAGs: a process of its own imported Airflow again
            try:
                rc, error = _prepare_here(connection_id), ""
            except Exception as exc:
                log.exception("preparing the metadata database failed")
                rc, error = 1, f"{type(exc).__name__}: {exc}"
            report(event="prepared", rc=rc, error=error, asked=bool(connection_id))
            if rc not in (0, NOT_CONNECTED):
                return 1
        with os.fdopen(go_fd) as go:
            _warm_up(go)
            log.info("warmed up in %.1f s", time.monotonic() - started)
            word, _, environ = go.readline().strip().partition(" ")
            if word != "go":
                log.info("not run: the preparation did not succeed")
                return 0
            if environ:
                os.environ.update(json.loads(environ))
        bag = DagBag(dag_folder=conf.get("core", "dags_folder"))

        progress = _task_progress(report)
        get_listener_manager().add_listener(progress)

        def run(dag_id: str, conf: dict[str, Any] | None = None) -> bool:
            report(event="start", dag_id=dag_id)
            started = time.monotonic()
            dag = bag.get_dag(dag_id)
            if dag is None:
                log.error("DAG %s did not load: %s", dag_id, bag.import_errors)
                report(event="end", dag_id=dag_id, state="not loaded", seconds=0.0)
                return False
            progress.begin(len(dag.task_dict))
            try:
                state = str(dag.test(run_conf=conf).state)
            except Exception:
                log.exception("DAG %s could not be run", dag_id)
                state = "failed"
            report(event="end", dag_id=dag_id, state=state, seconds=round(time.monotonic() - started, 1))
            return state == "success"

        ok = [run(dag_id) for dag_id in first]
        if all(ok):
            run(then, then_conf)
        else:
            report(event="end", dag_id=then, state="not run", seconds=0.0)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calltrail.ops.airflow_cli")
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", help="the metadata database, the pool and a connection lookup")
    prep.add_argument("--connection", help=f"exit {NOT_CONNECTED} when this connection is not configured")
    test = commands.add_parser("test", help="airflow dags test of several DAGs in one process")
    test.add_argument("first", nargs="+")
    test.add_argument("--then", required=True, help="run last, and only if all of FIRST succeeded")
    test.add_argument("--status-fd", type=int, required=True)
    test.add_argument("--go-fd", type=int, required=True, help="read 'go' (run) or anything else (stop) here first")
    test.add_argument("--prepare", action="store_true", help="first what the prepare command does")
    test.add_argument("--connection", help="with --prepare: report whether this connection is configured")
    test.add_argument("--then-conf", type=json.loads, help="the run conf (JSON) of the DAG run last")
    cli = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if cli.command == "prepare":
        return _prepare_here(cli.connection)
    rc = _test_dags_here(cli.first, cli.then, cli.status_fd, cli.go_fd, prepare=cli.prepare,
                         connection_id=cli.connection, then_conf=cli.then_conf)
    # Every DAG has ended and reported, and each task closed what it opened. The interpreter's own
    # teardown of what Airflow, dbt and Great Expectations left in memory took about 4 s, which
    # `make run` waited for: end here instead, with the logs flushed.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


if __name__ == "__main__":
    raise SystemExit(main())
