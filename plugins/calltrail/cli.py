"""``python -m calltrail``: the commands behind ``make run`` and ``make demo``."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from calltrail import settings as settings_module
from calltrail.dbt_project import project_var
from calltrail.settings import LANDING_SETTLE_VAR, ConfigurationError, Settings

if TYPE_CHECKING:
    from calltrail.ops.airflow_cli import Stall

INGESTION_DAGS = ("calltrail_ingest_web_events", "calltrail_ingest_salesforce")
TRANSFORM_DAG = "calltrail_transform"


def _say(message: str) -> None:
    print(message, flush=True)


def _say_error(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _say_for(args: argparse.Namespace) -> Callable[[str], None]:
    """How a command says what it did or why it failed: on standard error when its standard output
    is a file's (``calltrail export --out -``)."""
    return _say_error if getattr(args, "out", None) == "-" else _say


def _has_own_landing_files(settings: Settings) -> bool:
    """Landing files of yours, or lake partitions loaded from them or from the API: then no demo."""
    from calltrail.demo.apart import has_own_data

    return has_own_data(settings)


def _remove_demo(settings: Settings) -> None:
    """Your data is here: the demo's files, lake partitions and marts go, so the two never mix."""
    from calltrail.demo import apart

    if apart.demo_present(settings):
        removed = apart.remove_demo(settings)
        _say(f"  your own data is used: removed the demo data so the two never mix ({removed.describe()})")


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from calltrail.demo.generate import RuleValues, generate

    started = time.monotonic()
    truth = generate(settings.landing_dir, visitors=args.visitors, seed=args.seed, call_share=args.call_share,
                     rules=RuleValues.of(settings.salesforce), crm_shape=args.crm_shape,
                     people_truth=args.people_truth)
    t = truth.as_dict()
    _say(f"demo data: {t['visitors']:,} visitors, {t['web_rows_written']:,} web rows, "
         f"{t['task_records_written'] + t['task_versions_in_updates']:,} Task records "
         f"in {settings.landing_dir} ({time.monotonic() - started:.1f} s)")
    return 0


def _refuse_while_services_run(settings: Settings) -> None:
    from calltrail.ops.airflow_services import running

    if running(settings):
        raise SystemExit(f"the local Airflow of `make airflow` is running on {settings.airflow_home} "
                         "(it owns the metadata database and the warehouse): stop it with `make airflow-stop`, "
                         "or let its scheduler run the DAGs")


RUN_LOCK = ".calltrail-run.lock"


@contextlib.contextmanager
def one_run_at_a_time(settings: Settings, command: str = "calltrail run") -> Iterator[None]:
    """Hold the Airflow home (its SQLite metadata) and the dbt target folder (the manifest the
    DAG is rendered from) for one ``calltrail run``, or for ``calltrail airflow start`` while it
    prepares them and starts the services: another of these that shares either folder stops at
    once naming this one. (Two runs from one data folder would write one manifest at once: the
    DAG then read it half written.) A folder that cannot be made is left to the step that needs
    it, which says why."""
    import fcntl

    held = []
    try:
        folders = {settings.airflow_home.resolve(): "Airflow home (its metadata database)",
                   settings.dbt_target_dir.resolve(): "dbt target folder (the manifest)"}
        for folder, what in folders.items():
            try:
                folder.mkdir(parents=True, exist_ok=True)
                fh = open(folder / RUN_LOCK, "a+")  # held until the run ends
            except OSError:
                continue
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                who = fh.read().strip() or "calltrail run (its PID unknown)"
                fh.close()
                again = "run again" if command == "calltrail run" else "start it again"
                raise SystemExit(f"{command}: another {who} uses the {what} {folder}: "
                                 f"let it finish, then {again}. Two installations that share a checkout need "
                                 "a CALLTRAIL_DBT_TARGET_DIR each (docs/configuration.md)") from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"{command} (PID {os.getpid()}, started {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC)\n")
            fh.flush()
            held.append(fh)
        yield
    finally:
        for fh in held:
            fh.close()


def _use_demo(settings: Settings, connected: bool) -> bool:
    """Whether this run uses the demo data (generated now), given whether Salesforce is connected."""
    conn_id = settings.salesforce.conn_id
    use_demo = settings.demo_mode == "always" or (
        settings.demo_mode == "auto" and not connected and not _has_own_landing_files(settings))
    if connected:
        _say(f"  Salesforce connection {conn_id!r} found: Tasks come from the API and from landing files")
    else:
        _say(f"  no Salesforce connection {conn_id!r} configured: Tasks come from landing files only")
    if use_demo:
        from calltrail.demo.generate import RuleValues, generate

        _say(f"  using demo data: generating {settings.demo_visitors:,} visitors into {settings.landing_dir}")
        generate(settings.landing_dir, visitors=settings.demo_visitors, rules=RuleValues.of(settings.salesforce))
    else:
        _remove_demo(settings)
    return use_demo


def _interactive(env: dict[str, str]) -> dict[str, str]:
    """`make run` is interactive: its `airflow dags test` runs do not wait out scheduler retry delays."""
    from calltrail.settings import TASK_RETRIES_VAR

    return {**env, TASK_RETRIES_VAR: "0"}


def _causes_of(settings: Settings, env: dict[str, str], dag_id: str, state: str, since: str, log_file) -> list[str]:
    """Why ``dag_id`` failed, one line per failed task, from the alerts its tasks wrote.

    A DAG run that failed without any task alerting (the DAG did not load, a task process was
    killed) gets an alert here, through the same channels, so that no failure goes untold.
    """
    import subprocess
    import sys

    from calltrail import summary

    causes = summary.failure_causes(summary.read_alerts(settings, since=since), dag_id)
    if causes:
        return causes
    from calltrail.ops.airflow_cli import STOPPED

    if state.startswith(STOPPED):  # calltrail run's watchdog: the state says why
        observed = f"airflow dags test {dag_id} was {state}: see {log_file}"
    else:
        observed = (f"airflow dags test {dag_id} ended {state} and no task reported a cause "
                    f"(the DAG may not have loaded, or a task process was killed): see {log_file}")
    with open(log_file, "a") as fh:
        subprocess.run([sys.executable, "-m", "calltrail.airflow.alerts", dag_id, observed], env=env,
                       stdout=fh, stderr=subprocess.STDOUT, check=False)
    return [f"{dag_id}: {observed}"]


def _needs_throwaway_postgres(settings: Settings) -> bool:
    return settings.dbt_target == "postgres" and not settings.environ.get("CALLTRAIL_PG_HOST")


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    """``make run``; on the dbt target ``postgres`` without a configured server, on a throwaway one."""
    with one_run_at_a_time(settings):
        _refuse_while_services_run(settings)  # inside: `calltrail airflow start` holds the lock until they run
        if not _needs_throwaway_postgres(settings):
            return _run(settings, args)
        return _run_on_throwaway_postgres(settings, args)


def _run_on_throwaway_postgres(settings: Settings, args: argparse.Namespace) -> int:
    from calltrail.warehouse.local_postgres import throwaway

    with throwaway("calltrail") as server:
        _say(f"calltrail run: CALLTRAIL_DBT_TARGET=postgres and no CALLTRAIL_PG_HOST: a throwaway PostgreSQL "
             f"server on 127.0.0.1:{server['CALLTRAIL_PG_PORT']} holds the warehouse for this run and is removed "
             "when it ends (set CALLTRAIL_PG_* to keep one)")
        return _run(settings_module.load({**settings.environ, **server}), args)


def _stall(settings: Settings) -> Stall | None:
    """The watchdog of a run's DAGs (:class:`calltrail.ops.airflow_cli.Stall`): no task ended for the
    task limit plus CALLTRAIL_TASK_TIMEOUT_GRACE_MINUTES. None without a task limit."""
    from calltrail.ops.airflow_cli import Stall

    limit, grace = settings.task_timeout_minutes, settings.task_timeout_grace_minutes
    if not limit:
        return None
    return Stall((limit + grace) * 60, f"CALLTRAIL_TASK_TIMEOUT_MINUTES={limit:g} plus "
                                       f"CALLTRAIL_TASK_TIMEOUT_GRACE_MINUTES={grace:g}: a task its limit could not stop")


def _run(settings: Settings, args: argparse.Namespace) -> int:
    from calltrail import summary
    from calltrail.ops import airflow_cli
    from calltrail.warehouse import target

    env = _interactive(airflow_cli.environment(settings))
    log_file = settings.airflow_home / "logs" / f"run-{time.strftime('%Y%m%dT%H%M%S')}.log"
    _say(f"calltrail run: Airflow home {settings.airflow_home} (SQLite metadata); log {log_file}")
    _say("  preparing the Airflow metadata database, pools and the dbt manifest ...")
    # One process makes the metadata database and the pool, then warms up for the DAGs (Airflow's
    # task API, dbt, Great Expectations) while `dbt parse` writes the manifest beside it.
    dags = airflow_cli.DagsProcess(INGESTION_DAGS, TRANSFORM_DAG, env, log_file, prepare=True,
                                   connection_id=settings.salesforce.conn_id,
                                   then_conf={"full_refresh": True} if args.full_refresh else None)
    try:
        connected = airflow_cli.prepare(settings, env, log_file, connection_id=settings.salesforce.conn_id, dags=dags)
        demo_only = _use_demo(settings, connected) and not _has_own_landing_files(settings)
    except RuntimeError as exc:  # airflow db migrate / pools, or dbt parse (DbtCommandFailed)
        dags.cancel()
        _say(f"calltrail run FAILED while preparing Airflow and dbt: {_first_line(exc)}")
        _say(f"  nothing ran; the full output is in {log_file}")
        return 1
    except BaseException:  # e.g. a setting _use_demo reads is wrong: main() reports it
        dags.cancel()
        raise
    # The demo files were written just now and completely, by this process: ingestion need not
    # watch them settle (CALLTRAIL_LANDING_SETTLE_SECONDS) as it watches a sender's new files.
    log_offset = log_file.stat().st_size
    dags.go({LANDING_SETTLE_VAR: "0"} if demo_only else None)
    _say("  task retries are off for this interactive run (the scheduler of `make airflow` keeps them)")
    if args.full_refresh:
        _say(f"  {TRANSFORM_DAG} runs with full_refresh: every incremental model is rebuilt from the whole lake")

    failed: list[str] = []
    causes: list[str] = []
    run_started = time.time()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    dag_started_at: dict[str, str] = {}

    dag_clock: dict[str, float] = {}

    def on_start(dag_id: str) -> None:
        dag_started_at[dag_id] = datetime.now(UTC).isoformat(timespec="seconds")
        dag_clock[dag_id] = time.monotonic()
        _say(f"  running {dag_id} (airflow dags test) ...")

    def on_task(done: airflow_cli.TaskDone) -> None:
        elapsed = time.monotonic() - dag_clock.get(done.dag_id, time.monotonic())
        state = "" if done.state == "success" else "  FAILED"
        width = len(str(done.total))
        _say(f"      [{done.done:>{width}}/{done.total}] {done.task_id:<60} {done.seconds:5.1f} s"
             f"  ({elapsed:.0f} s){state}")

    def on_end(outcome: airflow_cli.DagOutcome) -> None:
        if outcome.state == "not run":
            _say(f"  {outcome.dag_id} not run: ingestion failed")
            return
        status = "succeeded" if outcome.succeeded else "FAILED" if outcome.state == "failed" else f"FAILED ({outcome.state})"
        _say(f"    {outcome.dag_id} {status} in {outcome.seconds:.0f} s")
        if not outcome.succeeded:
            failed.append(outcome.dag_id)
            dag_causes = _causes_of(settings, env, outcome.dag_id, outcome.state,
                                    dag_started_at.get(outcome.dag_id, started_at), log_file)
            causes.extend(dag_causes)
            for cause in dag_causes:
                _say(f"    cause: {cause}")

    dags.follow(on_start, on_end, on_task, stall=_stall(settings))
    if built := _build_mode(log_file, log_offset):
        _say(f"    dbt build: {built}")

    lake = summary.summarise(settings.lake_dir)
    _say(summary.render(settings, lake, this_run=summary.quarantined_since(settings.lake_dir, run_started)))
    try:  # the run's outcome is told below all the same
        marts, unread = summary.summarise_marts(settings), None
    except _warehouse_errors() as exc:
        marts, unread = None, exc
        _say(f"  the published marts could not be read: {exc}")
    if marts:
        if failed:
            _say("  this run published nothing: the touchpoints below are the last published ones")
        _say(summary.render_marts(settings, marts))
    alerts = summary.read_alerts(settings, since=started_at)
    if target.exists(settings) or alerts or failed:
        checks_ran = not any(dag_id in failed for dag_id in INGESTION_DAGS)
        _say(summary.render_quality(settings, alerts, failed=bool(failed), checks_ran=checks_ran))
    _say(summary.render_report(settings, since=run_started))
    if failed:
        _say(f"calltrail run FAILED: {causes[0] if causes else ', '.join(failed) + ' failed'}")
        for more in causes[1:]:
            _say(f"  also: {more}")
        if unread is None:
            _say(f"  {summary.render_publication(summary.last_publication(settings))}")
        where = f"alerts: {settings.alerts_file}; " if settings.alerts_file.exists() else ""
        _say(f"  {where}task logs: {log_file}")
        return 1
    return 0


def cmd_airflow(settings: Settings, args: argparse.Namespace) -> int:
    from calltrail.ops import airflow_cli
    from calltrail.ops import airflow_services as services
    from calltrail.warehouse import target

    if args.action == "stop":
        stopped = services.stop(settings, say=_say)
        _say("local Airflow stopped" if stopped else f"no local Airflow was running from {settings.airflow_home}")
        return 0
    if args.action == "status":
        alive = services.running(settings)
        _say(f"running: {', '.join(f'{k} (group {v})' for k, v in alive.items())}" if alive else "not running")
        return 0 if alive else 1
    if _needs_throwaway_postgres(settings):
        _say("calltrail airflow: CALLTRAIL_DBT_TARGET=postgres needs a PostgreSQL server that outlives one run "
             "for the scheduler: set CALLTRAIL_PG_HOST (and CALLTRAIL_PG_PORT, _USER, _PASSWORD, _DATABASE)")
        return 1
    endpoint = services.Endpoint(settings.airflow_host, settings.airflow_port)
    env = airflow_cli.environment(settings)
    log_file = settings.airflow_home / "logs" / "airflow-start.log"
    _say(f"calltrail airflow: home {settings.airflow_home} (metadata: "
         f"{env['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN'].split('://')[0]}, LocalExecutor, "
         f"parallelism {env['AIRFLOW__CORE__PARALLELISM']})")
    # A `calltrail run` from this home or onto this target folder would share the metadata database
    # and the manifest: the start holds them as a run does until its services run; a run then sees those.
    with one_run_at_a_time(settings, "calltrail airflow start"):
        if services.running(settings):
            raise SystemExit(f"already running from {settings.airflow_home}: `make airflow-stop` first")
        _say("  preparing the metadata database, pools and the dbt manifest ...")
        connected = airflow_cli.prepare(settings, env, log_file, connection_id=settings.salesforce.conn_id)
        demo = _use_demo(settings, connected)
        _say("  starting api-server, scheduler, dag-processor, triggerer ...")
        try:
            services.start(settings, env, endpoint, say=_say)
        except services.AirflowServiceError as exc:
            _say(f"calltrail airflow: {exc}")
            return 1
    _say("  waiting for the dag-processor to register the DAGs, then unpausing them ...")
    try:
        unpaused = services.unpause_dags(settings, env, endpoint)
    except services.AirflowServiceError as exc:
        _say(f"calltrail airflow: {exc}\n  Airflow is up at {endpoint.url}, but its DAGs are paused: nothing runs "
             "on schedule. Fix the cause, then `make airflow-stop` and `make airflow`.")
        return 1
    if demo:
        data = (f"demo data (generated). Your own files go into {settings.landing_dir}; then "
                "`make airflow-stop`, `make run` (it removes the demo data) and `make airflow`")
    else:
        data = "your data (landing files and the Salesforce connection, if configured)"
    if services.is_loopback(endpoint.host):
        login = "no login needed on this loopback address (every user is an admin)"
    else:
        login = f"user admin, password {services.admin_password(settings)} (listening beyond loopback: login required)"
    _say(f"""
Airflow is up: {endpoint.url}
  login       {login}
  DAGs        unpaused: {', '.join(unpaused)}
              ingestion runs hourly, calltrail_transform runs when both ingestion Assets update
  data        {data}
  warehouse   {target.describe(settings)}  (CALLTRAIL_DBT_TARGET={settings.dbt_target})
  dbt docs    {endpoint.url}/calltrail/dbt-docs/index.html  (menu Browse > calltrail dbt docs)
  Data Docs   {endpoint.url}/calltrail/data-docs/index.html  (menu Browse > calltrail Data Docs)
  report      {endpoint.url}/calltrail/report/index.html  (menu Browse > calltrail report)
  logs        {settings.airflow_home / 'logs'}
  stop        make airflow-stop""")
    return 0


# what int_increment says of each build, in dbt's output (dbt_project/models/intermediate/int_increment.sql)
_BUILD_MODE = re.compile(r"^\d\d:\d\d:\d\d\s+calltrail: (incremental|full) build of [^:]*: (.+)$", re.MULTILINE)


def _build_mode(log_file: Path, offset: int) -> str | None:
    """Whether this run's dbt build was incremental or full, and why, as dbt said it in the run's
    log (from ``offset``, where the DAG runs began); None when no build got that far."""
    from calltrail.transform.dbt import without_colours

    with log_file.open(errors="replace") as fh:
        fh.seek(offset)
        found = _BUILD_MODE.findall(without_colours(fh.read()))
    return f"{found[-1][0]} ({found[-1][1].strip()})" if found else None


def _warehouse_errors() -> tuple[type[Exception], ...]:
    """What reading the configured target's warehouse raises when it cannot: each says why in one line."""
    from calltrail.warehouse.arrow import UnreadableColumn
    from calltrail.warehouse.duckdb_file import WarehouseLocked, WarehouseUnreadable
    from calltrail.warehouse.local_postgres import LocalPostgresError
    from calltrail.warehouse.postgres import PostgresBusy, PostgresUnreachable
    from calltrail.warehouse.spark import SparkUnavailable
    from calltrail.warehouse.thrift_lock import SparkBusy

    return (WarehouseLocked, WarehouseUnreadable, PostgresUnreachable, PostgresBusy, UnreadableColumn,
            LocalPostgresError, SparkUnavailable, SparkBusy)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def cmd_setup(settings: Settings, args: argparse.Namespace) -> int:
    from calltrail.ops import airflow_cli

    env = airflow_cli.environment(settings)
    log_file = settings.airflow_home / "logs" / "setup.log"
    try:
        airflow_cli.prepare(settings, env, log_file)
    except RuntimeError as exc:  # airflow db migrate / pools, or dbt parse (DbtCommandFailed)
        _say(f"calltrail setup FAILED: {_first_line(exc)}")
        _say(f"  the full output is in {log_file}")
        return 1
    _say(f"Airflow metadata, pools and {settings.dbt_manifest} are ready (log {log_file})")
    return 0


def cmd_summary(settings: Settings, args: argparse.Namespace) -> int:
    from calltrail import summary

    lake = summary.summarise(settings.lake_dir)
    model = args.model or settings.summary_model
    marts = summary.summarise_marts(settings, model=model)
    if args.json:
        _say(json.dumps({"lake": lake.as_dict(), "marts": marts.as_dict() if marts else None}, indent=2))
    else:
        _say(summary.render(settings, lake))
        _say(summary.render_marts(settings, marts) if marts else summary.render_nothing_published(settings))
    return 0


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from calltrail.report import page
    from calltrail.warehouse import target

    if not target.exists(settings):
        _say(f"calltrail report: no warehouse yet ({target.describe(settings)}): `make run` first")
        return 1
    written = page.write(settings)
    _say(f"report page written: {written.index.as_uri()} ({written.bytes:,} bytes, {written.seconds:.1f} s)")
    return 0


def cmd_load_postgres(settings: Settings, args: argparse.Namespace) -> int:
    from calltrail.transform.postgres_lake import PartitionLoadError, load_lake
    from calltrail.warehouse.postgres import PostgresBusy, PostgresUnreachable

    try:
        results = load_lake(settings.lake_dir, settings.environ, schema=settings.lake_schema,
                            wait_seconds=settings.warehouse_lock_wait_seconds)
    except (PostgresUnreachable, PostgresBusy, PartitionLoadError) as exc:
        _say(f"calltrail load-postgres: {exc}")
        return 1
    for r in results:
        _say(r.describe())
    return 0


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    from calltrail.warehouse.export import ExportError, export

    to_stdout = args.out == "-"  # a file named "-" is ./-
    say = _say_for(args)
    if to_stdout and args.format == "parquet" and sys.stdout.isatty():  # without a name, no format: CSV
        say("calltrail export: --out - writes Parquet (binary) into a pipe or a redirect only, "
            "not onto a terminal: add `> FILE` or `| COMMAND`, or use --format csv")
        return 1
    try:
        # unbuffered: a pipe whose reader stops early is an error here, not a short write lost in a buffer
        out = open(sys.stdout.fileno(), "wb", buffering=0, closefd=False) if to_stdout else Path(args.out)
        if not to_stdout and args.out.endswith(("/", os.sep)):  # a folder, made if new: FOLDER/TABLE.FORMAT
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                why = "it is a file" if out.is_file() else exc.strerror or exc
                raise ExportError(f"cannot write into the folder {out}: {why}") from exc
        done = export(settings, args.table, args.format, out)
    except ExportError as exc:
        say(f"calltrail export: {exc}")
        return 1
    except BrokenPipeError:  # the reader stopped early (`| head`): no traceback, and none at exit either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # a shell's code for a writer stopped by a closed pipe (128 + SIGPIPE)
    where = "standard output" if done.path is None else done.path
    say(f"{done.table}: {done.rows:,} row{'' if done.rows == 1 else 's'} written to {where} ({done.bytes:,} bytes, from {settings.dbt_target})")
    return 0


def cmd_dbt(settings: Settings, args: argparse.Namespace) -> int:
    from calltrail.transform.dbt import DbtArgumentRefused, run_by_hand

    try:
        return run_by_hand(settings, args.dbt_args)
    except DbtArgumentRefused as exc:
        _say_error(f"calltrail dbt: {exc}")
        return 2


def cmd_settings(settings: Settings, args: argparse.Namespace) -> int:
    print("\n".join(settings_module.describe(settings)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="calltrail", description=__doc__)
    models = project_var("calltrail__attribution_models")  # CALLTRAIL_SUMMARY_MODEL and --model: one of them
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="write the deterministic demo data set into the landing folder")
    demo.add_argument("--visitors", type=int, default=None, help="number of visitors (default CALLTRAIL_DEMO_VISITORS)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--call-share", type=float, default=None,
                      help="share of visitors who call, 0 to 1 (default 0.64: every case shows up in a small set)")
    demo.add_argument("--crm-shape", choices=("demo", "bench"), default="demo",
                      help="how many people and deals the visitors bring (bench: make bench's proportions)")
    demo.add_argument("--people-truth", action=argparse.BooleanOptionalAction, default=None,
                      help="write the people's and attribution truth (default: up to 250,000 visitors)")
    run_parser = sub.add_parser("run", help="ingest, transform and validate end to end with airflow dags test; print a summary")
    run_parser.add_argument("--full-refresh", action="store_true",
                            help=f"rebuild every incremental model from the whole lake ({TRANSFORM_DAG}'s param full_refresh)")
    sub.add_parser("setup", help="prepare the Airflow metadata database, the pools and the dbt manifest")
    af = sub.add_parser("airflow", help="start, stop or check the local Airflow (api-server, scheduler, "
                                       "dag-processor, triggerer)")
    af.add_argument("action", choices=("start", "stop", "status"))
    summary = sub.add_parser("summary", help="print what is in the lake and the published marts of the configured target")
    summary.add_argument("--json", action="store_true",
                         help="the same as JSON; amounts as strings of their exact decimals")
    summary.add_argument("--model", choices=models,
                         help="the attribution model of the revenue by channel (default CALLTRAIL_SUMMARY_MODEL)")
    sub.add_parser("report", help="write the report page from the published marts (every publish also does)")
    sub.add_parser("settings", help="print every setting: its variable, the value in use, its default and meaning")
    sub.add_parser("load-postgres", help="copy the lake's new partitions into the lake schema of the PostgreSQL "
                                         "database of CALLTRAIL_PG_* (for the dbt target postgres)")
    export = sub.add_parser("export", help="write a published mart of the configured target (CALLTRAIL_DBT_TARGET) "
                                           "into a CSV or Parquet file")
    export.add_argument("table", help="the published mart, e.g. rpt_revenue_by_channel")
    export.add_argument("--format", choices=("csv", "parquet"),
                        help="default: the one the file's name ends in (.csv, .parquet), else csv")
    export.add_argument("--out", required=True,
                        help="the file to write (a folder that exists, or a name ending in /: FOLDER/TABLE.FORMAT); "
                             "- writes to standard output, and the line that says what was written to standard error")
    sub.add_parser("dbt", add_help=False,
                   help="run dbt with these arguments as calltrail runs it: its target, schemas, vars and "
                        "locks (calltrail dbt build --select fct_touchpoints+)")
    argv = sys.argv[1:] if argv is None else list(argv)
    dbt_args = argv[1:] if argv[:1] == ["dbt"] else []  # dbt's own, options too: not calltrail's to parse
    args = parser.parse_args(argv[:1] if argv[:1] == ["dbt"] else argv)
    args.dbt_args = dbt_args
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = settings_module.load()
    except ConfigurationError as exc:
        parser.error(str(exc))
    if settings.summary_model not in models:
        parser.error(f"CALLTRAIL_SUMMARY_MODEL={settings.summary_model!r}: use one of {', '.join(models)}")
    if args.command == "demo" and args.visitors is None:
        args.visitors = settings.demo_visitors
    if args.command == "demo" and args.call_share is None:
        from calltrail.demo.generate import DEMO_CALL_SHARE

        args.call_share = DEMO_CALL_SHARE
    if args.command == "demo" and args.visitors < 1:
        parser.error(f"--visitors must be at least 1, got {args.visitors}")
    if args.command == "demo" and not 0 <= args.call_share <= 1:
        parser.error(f"--call-share must be between 0 and 1, got {args.call_share}")
    handler = {"demo": cmd_demo, "run": cmd_run, "setup": cmd_setup, "summary": cmd_summary,
               "airflow": cmd_airflow, "settings": cmd_settings, "report": cmd_report,
               "load-postgres": cmd_load_postgres, "export": cmd_export, "dbt": cmd_dbt}[args.command]
    try:
        return handler(settings, args)
    except _warehouse_errors() as exc:
        _say_for(args)(f"calltrail {args.command}: {exc}")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
