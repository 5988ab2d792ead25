"""Running dbt for calltrail: the vars that come from settings, the environment, and its commands:
parse (set-up), the build of every seed, model and data test, publish and the docs."""

from __future__ import annotations

import collections
import itertools
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from calltrail.settings import Settings

log = logging.getLogger(__name__)

DBT = str(Path(sys.executable).with_name("dbt"))
PROFILE = "calltrail"  # the profile's name in dbt_project/profiles.yml
PARTIAL_PARSE = "partial_parse.msgpack"  # dbt's saved parse, in the target folder


class DbtCommandFailed(RuntimeError):
    """A dbt command failed. Its first line names the command and gives dbt's reason
    (:func:`reason`); the lines after it are the end of dbt's output."""


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOGGED = re.compile(r"^\d\d:\d\d:\d\d\s")  # a line of dbt's log (it starts with the time)


def without_colours(output: str) -> str:
    """dbt's output without the terminal's colour codes it may carry (a log written from a terminal)."""
    return _ANSI.sub("", output)


_ENCOUNTERED = re.compile(r"Encountered an error(?: while running operation)?:(.*)$")
_HEADING = re.compile(r"^\w+ Error(?: in \w+ \S+ \([^)]*\))?$")


def reason(output: str) -> str:
    """dbt's own account of why a command ended, in one line: what follows its last
    ``Encountered an error:`` (``... while running operation:`` for ``run-operation``), up to its
    next logged line, a traceback or a Java stack trace (for example ``Runtime Error: The profile
    'calltrail' does not have a target named ...``, or ``Runtime Error: Database Error: ...`` with
    the Spark Thrift Server's error). Empty when dbt gave none."""
    lines = without_colours(output).splitlines()
    starts = [(i, found) for i, line in enumerate(lines) if (found := _ENCOUNTERED.search(line.rstrip()))]
    if not starts:
        return ""
    first, found = starts[-1]
    said: list[str] = [found.group(1).strip()] if found.group(1).strip() else []
    for line in lines[first + 1:]:
        text = line.strip()
        if _LOGGED.match(line) or line.startswith("Traceback") or text.startswith(("at ", "Caused by:", "> ")):
            break  # the next log line, a Python or Java stack, the macros that called the one that failed
        if text and (not said or text != said[-1]):  # run-operation says "Runtime Error" twice
            said.append(text)
    headings = 0  # "Runtime Error", "Database Error", "Compilation Error in macro m (macros/m.sql)" above the message
    while headings < len(said) - 1 and _HEADING.match(said[headings]):
        headings += 1
    said[:headings + 1] = [": ".join(said[:headings + 1])]
    text = " ".join(said)
    return text if len(text) <= 400 else text[:399] + "…"


def dbt_vars(settings: Settings) -> dict[str, Any]:
    """Project vars that come from settings: the configured Task fields, freshness ages and schemas."""
    sf, fresh = settings.salesforce, settings.quality.freshness
    return {
        "calltrail__lake_schema": settings.lake_schema,
        "calltrail__publish_schema": settings.publish_schema,
        "calltrail__publish_log_schema": settings.publish_log_schema,
        "calltrail__bizible_id_field": sf.bizible_id_field,
        "calltrail__touchpoint_date_field": sf.touchpoint_date_field,
        "calltrail__call_time_fields": [sf.touchpoint_date_field, "CreatedDate"],
        "calltrail__freshness_web_events_warn_hours": fresh.web_events_warn_hours,
        "calltrail__freshness_web_events_error_hours": fresh.web_events_error_hours,
        "calltrail__freshness_salesforce_task_warn_hours": fresh.salesforce_task_warn_hours,
        "calltrail__freshness_salesforce_task_error_hours": fresh.salesforce_task_error_hours,
    }


def dbt_env(settings: Settings) -> dict[str, str]:
    """Environment for dbt: where the lake and the warehouse are, which target, DuckDB's memory;
    on PostgreSQL, how long a statement of dbt's waits for another session's lock (libpq's
    ``PGOPTIONS``: ``lock_timeout``), where a reader's transaction left open would hold a table
    dbt replaces for ever."""
    postgres = {}
    if settings.dbt_target == "postgres":
        wait_ms = max(1, int(settings.warehouse_lock_wait_seconds * 1000))  # 0 would wait for ever
        given = settings.environ.get("PGOPTIONS", "").strip()
        postgres["PGOPTIONS"] = f"{given} -c lock_timeout={wait_ms}".strip()
    return {
        **postgres,
        "CALLTRAIL_LAKE_DIR": str(settings.lake_dir),
        "CALLTRAIL_WAREHOUSE": str(settings.warehouse),
        "CALLTRAIL_DBT_TARGET": settings.dbt_target,
        "CALLTRAIL_DBT_DUCKDB_MEMORY_LIMIT": settings.dbt_duckdb_memory_limit,
        # how long dbt's own open of the DuckDB file waits for another process (profiles.yml)
        "CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS": str(settings.warehouse_lock_wait_seconds),
        "CALLTRAIL_SPARK_WAREHOUSE_DIR": str(settings.spark_warehouse_dir),
        "DBT_PROFILES_DIR": str(settings.dbt_project_dir),
        "DBT_TARGET_PATH": str(settings.dbt_target_dir),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def project_args(settings: Settings) -> list[str]:
    """The project, profile, target and vars of every dbt command.

    dbt keeps its partial parse only while the vars, the profile and the target given on the
    command line stay the same: with the same four here, ``calltrail setup``'s ``dbt parse`` serves
    the DAG's build (a full parse takes about 10 s).
    """
    return ["--project-dir", str(settings.dbt_project_dir), "--profile", PROFILE, "--target", settings.dbt_output,
            "--vars", json.dumps(dbt_vars(settings))]


def wait_for_warehouse(settings: Settings) -> float:
    """Before dbt opens the DuckDB warehouse, or starts a Spark session (the spark target's method
    ``session``): wait (bounded) until no other process holds the file, or the metastore.

    Raises :class:`calltrail.warehouse.duckdb_file.WarehouseLocked` or
    :class:`calltrail.warehouse.spark.SparkUnavailable`, which name the holder.
    """
    if settings.dbt_target == "spark" and not settings.spark_thrift:
        from calltrail.warehouse.spark import wait_for_metastore
        from calltrail.warehouse.target import spark_environ

        return wait_for_metastore(spark_environ(settings), settings.warehouse_lock_wait_seconds)
    if settings.dbt_target != "duckdb":
        return 0.0
    from calltrail.warehouse.duckdb_file import wait_until_free

    return wait_until_free(settings.warehouse, settings.warehouse_lock_wait_seconds)


def run_dbt(settings: Settings, args: list[str], *, log_file: Path | None = None, check: bool = True,
            in_process: bool = False) -> int:
    """Run one dbt command in the project; raise with dbt's own output when it fails (``check``).

    A command that opens the warehouse first waits for it (:func:`wait_for_warehouse`); if dbt
    still finds it held, :class:`~calltrail.warehouse.duckdb_file.WarehouseLocked` is raised,
    whatever ``check`` says. ``in_process``: dbt runs in this process (dbt's ``dbtRunner``), as the
    DAG's tasks do, instead of a ``dbt`` process that imports dbt again (about 3 s).
    """
    returncode, _ = _run(settings, args, log_file=log_file, check=check, in_process=in_process)
    return returncode


def source_freshness(settings: Settings, *, in_process: bool = False) -> tuple[int, dict[str, dict] | None, dict[str, dict]]:
    """``dbt source freshness``. Returns dbt's exit code, the ``sources.json`` dbt wrote into its
    target folder (None when it wrote none) and, in process, each source's result (unique id ->
    ``{"status", "seconds", "message"}``): ``sources.json`` leaves out a source whose freshness dbt
    could not measure (a runtime error, such as no lake file yet), whose message is only here and in
    dbt's output. (dbt's ``--output`` elsewhere is deprecated: dbt warned of it in every run's log.)"""
    written = settings.dbt_target_dir / "sources.json"
    written.unlink(missing_ok=True)  # an earlier command's must not pass for this one's
    returncode, results = _run(settings, ["source", "freshness"], check=False, in_process=in_process)
    return returncode, (json.loads(written.read_text()) if written.exists() else None), results


# The dbt build of every seed, model and data test, without the unit tests (make test runs them)
BUILD_ARGS = ("build", "--exclude", "resource_type:unit_test")


def build(settings: Settings, *, full_refresh: bool = False) -> dict[str, dict]:
    """``dbt build`` of every seed, model and data test (not the unit tests, which ``make test``
    runs), in this process, in dbt's own order: one command, so dbt starts, parses and opens the
    warehouse once. Returns each node's result (unique id -> ``{"status", "seconds", "message"}``),
    which :func:`calltrail.transform.dbt_graph.report` reads for each node's task.

    ``full_refresh``: ``--full-refresh``, everything rebuilt (docs/incremental.md).

    Failed nodes and tests are results, not an exception: each one's task reports it. dbt failing
    as a whole (the project does not compile, the warehouse is held) raises, with dbt's output.
    """
    args = [*BUILD_ARGS, *(["--full-refresh"] if full_refresh else [])]
    _, results = _run(settings, args, check=False, in_process=True, results_needed=True)
    if settings.dbt_target == "postgres" and any(LOCK_TIMEOUT in r["message"] for r in results.values()):
        _name_lock_holders(settings, results)
    return results


LOCK_TIMEOUT = "canceling statement due to lock timeout"  # PostgreSQL's message


def _name_lock_holders(settings: Settings, results: dict[str, dict]) -> None:
    """A node that waited ``CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS`` in vain for another session's
    lock on a table of the build: its message says which sessions hold the build's tables."""
    from calltrail.warehouse.postgres import sessions_holding

    said = sessions_holding(settings.environ, settings.build_schema)
    for result in results.values():
        if LOCK_TIMEOUT in result["message"]:
            result["message"] += (f" (waited {settings.warehouse_lock_wait_seconds:.0f} s, "
                                  f"CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS, for other sessions: {said}. A "
                                  "transaction left open holds the tables it read until it ends: end it, "
                                  "then run again)")


class DbtArgumentRefused(ValueError):
    """An argument of ``calltrail dbt`` that would point dbt elsewhere than calltrail's own steps
    look, or change a var that comes from a setting; the message says what to set instead."""


# Options calltrail gives every dbt command itself, and what to set instead of each.
_GIVEN_BY_CALLTRAIL = {
    "--project-dir": "the project is dbt_project/",
    "--profiles-dir": "the profile is dbt_project/profiles.yml",
    "--profile": "the profile is dbt_project/profiles.yml's calltrail",
    "--target": "set CALLTRAIL_DBT_TARGET (and CALLTRAIL_SPARK_METHOD) instead",
    "-t": "set CALLTRAIL_DBT_TARGET (and CALLTRAIL_SPARK_METHOD) instead",
    "--target-path": "set CALLTRAIL_DBT_TARGET_DIR instead",
}


# Vars calltrail's own steps (ingestion, the checks, publish, the summary and the report page) read
# from dbt_project.yml: given to dbt alone, dbt would build what those steps do not expect. The
# rules' timings (session inactivity, call window) are left to --vars: the report page only
# describes them.
READ_FROM_THE_PROJECT_FILE = (
    "calltrail__bizible_id_pattern", "calltrail__match_statuses", "calltrail__web_event_types",
    "calltrail__published_models", "calltrail__attribution_models", "calltrail__builds_table",
    "calltrail__lake_web_events_glob", "calltrail__lake_salesforce_task_glob", "calltrail__lake_salesforce_lead_glob",
    "calltrail__lake_salesforce_contact_glob", "calltrail__lake_salesforce_opportunity_glob",
    "calltrail__lake_salesforce_opportunity_contact_role_glob")


def by_hand_args(settings: Settings, args: list[str]) -> list[str]:
    """``args`` as calltrail gives them to dbt: its project, profile, target and vars added. Vars
    given with ``--vars`` are added to calltrail's; one of those that come from a setting
    (:func:`dbt_vars`) may not take another value, and one of :data:`READ_FROM_THE_PROJECT_FILE`
    none. Raises :class:`DbtArgumentRefused`. Without a dbt command (``--version``, ``--help``),
    ``args`` alone: dbt takes those options only there."""
    import yaml

    if all(word.startswith("-") for word in args):
        return list(args)

    given: dict[str, Any] = {}
    rest: list[str] = []
    words = iter(args)
    for word in words:
        option, _, inline = word.partition("=")
        if option in _GIVEN_BY_CALLTRAIL:
            raise DbtArgumentRefused(f"{option}: calltrail gives it to every dbt command: "
                                     f"{_GIVEN_BY_CALLTRAIL[option]}")
        if option != "--vars":
            rest.append(word)
            continue
        text = inline if "=" in word else next(words, None)
        if text is None:
            raise DbtArgumentRefused("--vars needs a value: a YAML dictionary, e.g. '{key: value}'")
        try:
            vars_ = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise DbtArgumentRefused(f"--vars {text!r} is not YAML: {' '.join(str(exc).split())}") from None
        if not isinstance(vars_, dict):
            raise DbtArgumentRefused(f"--vars {text!r}: a YAML dictionary is needed, e.g. '{{key: value}}'")
        given.update(vars_)
    from_settings = dbt_vars(settings)
    for key, value in given.items():
        if key in READ_FROM_THE_PROJECT_FILE:
            raise DbtArgumentRefused(f"--vars {key}: calltrail's other steps read it from dbt_project.yml too: "
                                     "change it there, so that they agree with dbt")
        if key in from_settings and value != from_settings[key]:
            raise DbtArgumentRefused(
                f"--vars {key}: comes from calltrail's settings ({from_settings[key]!r} now), so that "
                "calltrail's other steps agree with dbt: change its CALLTRAIL_ variable instead "
                "(`calltrail settings` lists them; docs/configuration.md)")
    common = project_args(settings)
    vars_at = common.index("--vars") + 1
    common[vars_at] = json.dumps({**from_settings, **given})
    return [*rest, *common]


# dbt's commands that open no warehouse: they wait for no one
_OPEN_NO_WAREHOUSE = frozenset({"parse", "ls", "list", "clean", "deps", "init"})


def run_by_hand(settings: Settings, args: list[str], out: Any = None) -> int:
    """One dbt command as calltrail runs dbt (``calltrail dbt ARGS``): its environment, project,
    profile, target and vars (:func:`by_hand_args`), after waiting for the warehouse or with
    PostgreSQL's writers' lock held, as each of calltrail's own dbt commands does (:func:`_held`).
    dbt's output goes to ``out`` (default standard output) as dbt writes it; returns dbt's exit
    code. Raises :class:`~calltrail.warehouse.duckdb_file.WarehouseLocked` when dbt still found the
    DuckDB file held."""
    out = sys.stdout if out is None else out
    command = [DBT, *by_hand_args(settings, args)]
    tail: collections.deque[str] = collections.deque(maxlen=200)

    def pump(dbt: subprocess.Popen[str]) -> None:
        for line in dbt.stdout or ():
            out.write(line)
            out.flush()
            tail.append(line)

    def run(env: dict[str, str]) -> tuple[int, str, None]:
        if not out.isatty():  # dbt colours its lines whatever it writes to
            env.setdefault("DBT_USE_COLORS", "false")
        with subprocess.Popen(command, env=env, cwd=settings.dbt_project_dir,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              text=True, bufsize=1) as dbt:
            try:
                pump(dbt)
            except KeyboardInterrupt:
                # Ctrl-C reached dbt too (one process group): it stops its queries and says so
                try:
                    pump(dbt)
                    dbt.wait()
                except KeyboardInterrupt:  # asked twice: no more waiting
                    dbt.kill()
                return 130, "", None  # a shell's code for a command ended by SIGINT
        return dbt.returncode, "".join(tail), None

    returncode, _, _ = _held(settings, args, run)
    return returncode


def _run(settings: Settings, args: list[str], *, log_file: Path | None = None, check: bool = True,
         in_process: bool = False, results_needed: bool = False) -> tuple[int, dict[str, dict]]:
    def run(env: dict[str, str]) -> tuple[int, str, dict[str, dict]]:
        returncode, output, results = _command(settings, args, env, in_process=in_process)
        if log_file:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            with log_file.open("a") as fh:
                fh.write(f"\n$ dbt {' '.join(args)}\n{output}")
        for line in output.splitlines():
            # the project's own messages (e.g. int_increment's mode and why) go into the task's log
            log.log(logging.INFO if "calltrail: " in line else logging.DEBUG, "dbt: %s", line)
        return returncode, output, results

    returncode, output, results = _held(settings, args, run)
    if (check and returncode != 0) or (results_needed and returncode == 2):
        tail = "\n".join(output.splitlines()[-30:])
        why = reason(output)
        raise DbtCommandFailed(f"dbt {' '.join(args)} failed (exit {returncode}){': ' + why if why else ''}\n{tail}")
    return returncode, results


_Got = TypeVar("_Got")


def _held(settings: Settings, args: list[str], run: Callable[[dict[str, str]], tuple[int, str, _Got]]
          ) -> tuple[int, str, _Got]:
    """``run`` (one dbt command, given dbt's environment: the settings' with :func:`dbt_env` on top;
    it returns dbt's exit code, dbt's output and what else it has) as each of calltrail's dbt
    commands runs: the warehouse's folder made, the warehouse waited for or PostgreSQL's writers'
    lock held (:func:`_warehouse_held`). Raises
    :class:`~calltrail.warehouse.duckdb_file.WarehouseLocked` when dbt still found the DuckDB file
    held."""
    from calltrail.warehouse.duckdb_file import locked_error

    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    with _warehouse_held(settings, args) as waited:
        started = time.monotonic()
        returncode, output, got = run({**settings.environ, **dbt_env(settings)})
    # dbt failing on the lock failed at its open, after its own tries (the profile's retries)
    if returncode != 0 and (locked := locked_error(settings.warehouse, output, waited + time.monotonic() - started)):
        raise locked
    return returncode, output, got


def _warehouse_held(settings: Settings, args: list[str]) -> AbstractContextManager[float]:
    """Around one dbt command: DuckDB's file and the session method's metastore are waited for
    (:func:`wait_for_warehouse`; dbt then holds them itself); the writers' lock of PostgreSQL or of
    a Spark Thrift Server is held by calltrail for as long as the command runs
    (:func:`calltrail.warehouse.postgres.writer_lock`, :func:`calltrail.warehouse.thrift_lock.writer_lock`).
    dbt's commands that open no warehouse (:data:`_OPEN_NO_WAREHOUSE`) and a call for dbt's help
    wait for nothing. Yields the seconds waited."""
    word = next((a for a in args if not a.startswith("-")), None)
    if word is None or word in _OPEN_NO_WAREHOUSE or "--help" in args or "-h" in args:
        return nullcontext(0.0)
    doing = "dbt " + " ".join(itertools.takewhile(lambda a: not a.startswith("-"), args[:3]))  # build; docs generate
    if settings.dbt_target == "postgres":
        from calltrail.warehouse.postgres import writer_lock

        return writer_lock(settings.environ, settings.warehouse_lock_wait_seconds, doing)
    if settings.spark_thrift:
        from calltrail.warehouse.target import spark_environ
        from calltrail.warehouse.thrift_lock import writer_lock as thrift_writer_lock

        return thrift_writer_lock(spark_environ(settings), settings.build_schema,
                                  settings.warehouse_lock_wait_seconds, doing,
                                  stale_seconds=settings.spark_lock_stale_seconds)
    return nullcontext(wait_for_warehouse(settings))


def _command(settings: Settings, args: list[str], env: dict[str, str], *, in_process: bool
             ) -> tuple[int, str, dict[str, dict]]:
    # dbt is a child process, or runs here in an environment as a child's would be: ``env``, the
    # environment as settings read it (PATH, the CALLTRAIL_PG_* that profiles.yml reads) with
    # calltrail's own locations on top.
    log.info("dbt %s", " ".join(args))
    results: dict[str, dict] = {}
    if in_process:
        if settings.dbt_target == "spark" and not settings.spark_thrift and args[:1] != ["parse"]:
            _start_spark(settings)
        returncode, output, results = _invoke_here(args, project_args(settings), env, settings.dbt_project_dir)
    else:
        out = subprocess.run([DBT, *args, *project_args(settings)], env=env, cwd=settings.dbt_project_dir,
                             capture_output=True, text=True, check=False)
        returncode, output = out.returncode, out.stdout + out.stderr
    return returncode, output, results


def _start_spark(settings: Settings) -> None:
    """This process's Spark session as calltrail opens it, before dbt-spark (method ``session``)
    asks for one: dbt-spark then takes it, with its log level ERROR. A process whose first session
    is dbt-spark's (each task the scheduler runs) would otherwise log Spark's warnings about every
    lake path without a metadata folder, with a Java stack trace each, into the task's log."""
    from calltrail.warehouse.spark import session
    from calltrail.warehouse.target import spark_environ

    session(spark_environ(settings))


@contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """``os.environ`` as a child process with ``env`` would see it, for dbt running in this process."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


# The manifest of the last in-process dbt command, by its project arguments and environment: the
# next command with the same ones starts from it (dbt's dbtRunner(manifest=...)) instead of
# loading the partial parse again (about 2 s a command on the demo; under `airflow dags test` and
# `make run` all tasks share one process). Each task the scheduler runs is a process of its own.
_manifests: dict[tuple, Any] = {}


def _invoke_here(args: list[str], common: list[str], env: dict[str, str], cwd: Path
                 ) -> tuple[int, str, dict[str, dict]]:
    """dbt ``args`` (with the ``common`` project arguments) in this process: (the exit code the dbt
    command would give, dbt's messages, each node's result)."""
    from dbt.cli.main import dbtRunner

    messages: list[str] = []
    callbacks = [lambda event: messages.append(event.info.msg)]
    saved_cwd = Path.cwd()
    key = (tuple(common), tuple(sorted(env.items())), _project_files(cwd))
    semaphores = _named_semaphores()
    stopped: BaseException | None = None
    with _environment(env):
        os.chdir(cwd)
        try:
            manifest = _manifests.get(key)
            if manifest is None and args[:1] != ["parse"]:
                parsed = _interrupted(dbtRunner(callbacks=callbacks).invoke(["parse", *common]))
                manifest = parsed.result if parsed.success else None
            result = _interrupted(dbtRunner(manifest=manifest, callbacks=callbacks).invoke([*args, *common]))
            if args[:1] == ["parse"] and result.success:
                manifest = result.result
            if manifest is not None:
                _manifests.clear()
                _manifests[key] = manifest
        except BaseException as exc:
            stopped = exc
            raise
        finally:
            os.chdir(saved_cwd)
            try:
                _close_connections(stopped)
            finally:
                _unlink_named_semaphores(since=semaphores)
    if result.exception is not None:
        messages.append(str(result.exception))
    returncode = 0 if result.success else (2 if result.exception is not None else 1)
    return returncode, "\n".join(messages), _node_results(result.result)


def _close_connections(stopped: BaseException | None) -> None:
    """dbt's connections to the warehouse closed and its Spark temporary views dropped, after a
    command in this process. When the command raised (``stopped``: an interrupt, a task's
    timeout), a thread of dbt's may still use them: a failure to close is then logged, not raised
    over what the command raised."""
    try:
        _close_warehouse()
        _drop_spark_temporary_views()
    except Exception:
        if stopped is None:
            raise
        log.warning("after %s, dbt's connections could not be closed", type(stopped).__name__, exc_info=True)


def _interrupted(result: Any) -> Any:
    """dbt's result, unless dbt caught an interrupt (an exception that is not an ``Exception``:
    Airflow's task timeout, a ``KeyboardInterrupt``), or failed under one: that is raised again.
    dbt returns it as a failed command, and the task went on: a parse stopped at the task's
    execution_timeout was parsed again, and the task succeeded after its timeout. A query that
    dbt's thread still runs is left to end with the task's process."""
    interrupt = _interrupt_in(result.exception)
    if interrupt is not None:
        raise interrupt
    return result


def _interrupt_in(exception: BaseException | None) -> BaseException | None:
    """The interrupt in ``exception``'s chain: dbt's own clean-up may fail under it (closing a
    DuckDB connection a thread of dbt's still queries) and return that error instead."""
    seen = set()
    while exception is not None and id(exception) not in seen:
        if not isinstance(exception, Exception):
            return exception
        seen.add(id(exception))
        exception = exception.__cause__ or exception.__context__
    return None


def _named_semaphores() -> dict[Any, Any]:
    """This process's named semaphores whose names Python unlinks at its exit (multiprocessing's
    finalizers of its locks), by finalizer key. Read from multiprocessing's internals: where they
    differ (another Python), none is found and nothing is unlinked."""
    from multiprocessing import synchronize, util

    cleanup = getattr(synchronize.SemLock, "_cleanup", None)
    registry = getattr(util, "_finalizer_registry", None)
    if cleanup is None or not isinstance(registry, dict):
        return {}
    return {key: f for key, f in list(registry.items()) if getattr(f, "_callback", None) is cleanup}


def _unlink_named_semaphores(*, since: dict[Any, Any]) -> None:
    """Unlink the names of the semaphores made since ``since``, as Python would at exit. dbt makes
    its locks (the adapters', the manifest's) from a ``spawn`` context: named POSIX semaphores. A
    task of Airflow ends its process with ``os._exit``, so Python never unlinks them, and its
    resource tracker then logged "There appear to be 2 leaked semaphore objects" as two error lines
    at the end of every dbt task's log. The locks keep working without their names (dbt shares them
    between threads, never with another process)."""
    for key, finalizer in _named_semaphores().items():
        if key not in since:
            finalizer()


def _project_files(project: Path) -> tuple:
    """Each file of the dbt project with its size and modification time: a manifest is reused only
    while none of them changed."""
    return tuple(sorted((str(p), st.st_size, st.st_mtime_ns) for p in project.rglob("*")
                        if not p.is_relative_to(project / "target") and not p.is_relative_to(project / "logs")
                        and p.is_file() and (st := p.stat())))


def _close_warehouse() -> None:
    """Close the DuckDB warehouse a dbt command of this process left open (the profile's
    ``keep_open: true`` keeps it open for the whole command, not after it), with dbt-duckdb's
    public class methods; other adapters hold no file."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    try:
        environment = DuckDBConnectionManager.env()
    except Exception:  # no dbt command of this process opened DuckDB
        return
    try:
        environment.close()
    finally:  # the next command opens its own, even when a thread of this one still used it
        DuckDBConnectionManager.close_all_connections()


def _drop_spark_temporary_views() -> None:
    """Drop the temporary views a dbt command left in this process's Spark session (the ``session``
    method's; a Thrift Server's sessions end with their connections). dbt-spark's incremental
    materialization leaves its ``<model>__dbt_tmp`` view there (it drops it for Python models
    only), and the session outlives the command: Spark lists a session's temporary views in every
    schema, so the next dbt command of the process saw them without a schema, and ``dbt docs
    generate`` after an incremental build (the transformation DAG's docs task under ``make run``,
    whose tasks share one process) failed with "'NoneType' object has no attribute 'lower'"."""
    if "pyspark" not in sys.modules:
        return
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    if SparkContext._active_spark_context is None:
        return
    try:
        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        # `show views` lists them with the current schema's views: about 25 ms, against about
        # 140 ms for the catalog's listTables (every table too), after each of a run's ~45 commands
        for view in spark.sql("show views").collect():
            if view.isTemporary:
                spark.catalog.dropTempView(view.viewName)
    except Exception as exc:  # housekeeping: never in place of the dbt command's own outcome
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        log.warning("could not drop the Spark session's temporary views: %s", first)


def _node_results(outcome: Any) -> dict[str, dict]:
    """unique id -> status, seconds, message (shortened) of each node a dbt command ran."""
    found: dict[str, dict] = {}
    for r in getattr(outcome, "results", None) or []:
        node = getattr(r, "node", None)
        if node is None or not hasattr(r, "status"):
            continue
        message = str(r.message or "")
        found[node.unique_id] = {"status": str(getattr(r.status, "value", r.status)),
                                 "seconds": round(float(r.execution_time or 0.0), 3),
                                 "message": message if len(message) <= 2000 else message[:2000] + " ..."}
    return found


def parse(settings: Settings, *, log_file: Path | None = None) -> Path:
    """Write target/manifest.json, which the transformation DAG is rendered from."""
    run_dbt(settings, ["parse"], log_file=log_file)
    return settings.dbt_manifest


class BuildChangedSinceAudit(RuntimeError):
    """A dbt command wrote models after the audit: publish refused the build no audit checked."""


# The publish macro's words: how its refusal begins and ends (dbt's output may go on after it)
BUILD_CHANGED, NOTHING_PUBLISHED = "calltrail: the build schema holds build ", "consumers keep the previous marts."


def publish(settings: Settings, *, in_process: bool = False, audited_build: str | None = None) -> None:
    """Write-audit-publish: copy the consumer marts into the publish schema in one transaction.

    ``audited_build``: the build the audit checked (its ``build``); publish then refuses, with
    :class:`BuildChangedSinceAudit`, a build schema that a later dbt command wrote (another run's
    build, one run by hand). Without it, whatever the build schema holds is published.

    On PostgreSQL the transaction waits up to ``CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS`` for the
    readers of the published tables, as every statement of dbt's does (:func:`dbt_env`); when that
    wait ends first, :class:`~calltrail.warehouse.postgres.PublishBlocked` names the sessions in the way."""
    args = ["run-operation", "calltrail__publish"]
    if audited_build:
        args += ["--args", json.dumps({"audited_build": audited_build})]
    try:
        run_dbt(settings, args, in_process=in_process)
    except DbtCommandFailed as exc:
        if BUILD_CHANGED in str(exc) and NOTHING_PUBLISHED in str(exc):
            said = str(exc)[str(exc).index(BUILD_CHANGED) + len("calltrail: "):]
            raise BuildChangedSinceAudit(f"publish refused: {said[:said.index(NOTHING_PUBLISHED) + len(NOTHING_PUBLISHED)]}"
                                         ) from None
        if settings.dbt_target != "postgres" or LOCK_TIMEOUT not in str(exc):
            raise
        from calltrail.warehouse.postgres import PublishBlocked, sessions_holding

        raise PublishBlocked(
            f"publish waited {settings.warehouse_lock_wait_seconds:.0f} s (CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS) "
            f"for other sessions to let go of the published tables: {sessions_holding(settings.environ, settings.publish_schema)}. Nothing was "
            "published: consumers keep the previous marts. A transaction left open (a BI tool's session, "
            "a psql prompt) holds the tables it read until it ends: end it (or pg_terminate_backend its "
            "server process), then run again.") from exc


def generate_docs(settings: Settings, *, in_process: bool = False) -> Path:
    """dbt docs (with lineage) into CALLTRAIL_DBT_DOCS_DIR; opens the warehouse for the catalog.

    After a build, the docs use the build's manifest (its compiled SQL included) with
    ``--no-compile`` instead of compiling every node again (about 3 s of the demo's docs task).
    """
    docs = settings.dbt_docs_dir
    docs.mkdir(parents=True, exist_ok=True)
    # dbt keeps its partial parse in the target folder: without the build's copy there, the docs'
    # own target folder made every `docs generate` parse the whole project again (about 12 s).
    saved = settings.dbt_target_dir / PARTIAL_PARSE
    if saved.exists():
        shutil.copyfile(saved, docs / PARTIAL_PARSE)
    args = ["docs", "generate", "--static", "--target-path", str(docs)]
    if _compiled(settings.dbt_manifest):
        shutil.copyfile(settings.dbt_manifest, docs / "manifest.json")
        args.append("--no-compile")
    run_dbt(settings, args, in_process=in_process)
    return docs / "index.html"


def _compiled(manifest: Path) -> bool:
    """Whether ``manifest`` was written by a command that compiled the models (a build), not by a parse."""
    if not manifest.exists():
        return False
    try:
        nodes = json.loads(manifest.read_text()).get("nodes", {})
    except ValueError:
        return False
    models = [n for n in nodes.values() if n.get("resource_type") == "model"]
    return bool(models) and all(n.get("compiled_code") is not None for n in models)
