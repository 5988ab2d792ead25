"""Every task of calltrail's DAGs: Airflow's ``@task``, with its execution timeout delivered safely.

Airflow stops a task at its ``execution_timeout`` (``CALLTRAIL_TASK_TIMEOUT_MINUTES``) by raising
``AirflowTaskTimeout`` from a SIGALRM handler, wherever the task's main thread is at that moment.
Three places lose it or worse:

- **inside logging**: Python 3.11's ``logging`` takes its module lock without ``try`` in places
  (``Manager._clear_cache``, which dbt reaches through ``Logger.setLevel`` each time it starts).
  An exception raised there leaves the lock held, and the next thread that logs waits for ever:
  the DAG run hung instead of failing. structlog is no safer: its writers hold a lock that is not
  re-entrant, and Airflow's handler logs before it raises;
- **inside a DuckDB query**: DuckDB stops the query and raises ``RuntimeError: Query interrupted``
  in place of the timeout, so the failure did not say that the limit stopped the task;
- **inside a finalizer** (a weakref callback the garbage collector runs): Python prints the
  exception and drops it, and the task ran on and succeeded after its limit.

:func:`task` wraps each task's callable so that the limit is kept in all three: an alarm that
comes while the main thread is in logging code is put off by 50 ms until it is out; once the limit
has passed, the timeout is raised again every second while no exception is on its way out (it was
swallowed); and a task whose limit passed ends with ``AirflowTaskTimeout`` whatever it returned or
raised (the exception that surfaced is its cause), so it fails, and alerts, as a timeout.

A task the timeout cannot reach at all (its main thread never back in Python: a call into a
library that waits for ever, or a logging handler that never returns, where the alarm is put off
each time) would hold its DAG for ever. So a thread of the task's own waits for the limit plus
``CALLTRAIL_TASK_TIMEOUT_GRACE_MINUTES``: if the task is still running then, it alerts (waiting at
most :data:`ALERT_WAIT_SECONDS` for the alert) and kills the task's process with SIGKILL.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

PUT_OFF_SECONDS = 0.05
AGAIN_SECONDS = 1.0
ALERT_WAIT_SECONDS = 30.0  # the last resort's alert: what it may take before the process is killed

GUARDED = "__calltrail_timeout_guarded__"


@functools.cache
def _logging_code() -> tuple[str, ...]:
    """Where the logging code is whose locks an exception must not interrupt: Python's ``logging``
    (it takes its module lock without ``try`` in places), and structlog with Airflow's logging on
    it (its writers hold a lock that is not re-entrant, and Airflow's handler logs before it raises)."""
    import structlog

    places = [str(Path(logging.__file__).parent), str(Path(structlog.__file__).parent)]
    for name in ("airflow.sdk.log", "airflow._shared.logging", "airflow.sdk._shared.logging"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        file = Path(module.__file__ or "")
        places.append(str(file.parent if file.name == "__init__.py" else file))
    return tuple(places)


def _in(places: tuple[str, ...], frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith(places):
            return True
        frame = frame.f_back
    return False


@contextmanager
def delivered_safely() -> Iterator[None]:
    """Within Airflow's timeout (its SIGALRM handler installed, its timer running): deliver the
    timeout where it is safe, again if it is swallowed, and end with it once the limit passed."""
    from airflow.sdk.exceptions import AirflowTaskTimeout

    airflow_handler = signal.getsignal(signal.SIGALRM)
    if threading.current_thread() is not threading.main_thread() or not callable(airflow_handler):
        yield  # no timeout set (Airflow installs its handler only with one), or not the main thread
        return
    logging_code = _logging_code()
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if _in(logging_code, frame) or (fired and sys.exc_info()[1] is not None):
            signal.setitimer(signal.ITIMER_REAL, PUT_OFF_SECONDS)
            return
        fired = True
        signal.setitimer(signal.ITIMER_REAL, AGAIN_SECONDS)
        airflow_handler(signum, frame)

    signal.signal(signal.SIGALRM, handler)
    done = threading.Event()
    limit_seconds = signal.getitimer(signal.ITIMER_REAL)[0]
    if limit_seconds > 0:
        threading.Thread(target=_last_resort, args=(limit_seconds, done, _task_context()),
                         name="calltrail-timeout-last-resort", daemon=True).start()
    try:
        yield
    except AirflowTaskTimeout:
        raise
    except BaseException as exc:
        if fired:
            raise AirflowTaskTimeout(f"Timeout, the task was still running after its limit ({exc!r} surfaced)") \
                from exc
        raise
    else:
        if fired:
            raise AirflowTaskTimeout("Timeout, the task was still running after its limit (its timeout was "
                                     "swallowed on the way, and the task went on)")
    finally:
        done.set()
        if fired:
            signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, airflow_handler)


def _task_context() -> dict[str, Any]:
    """The running task's Airflow context (for the last resort's alert); empty outside a task."""
    try:
        from airflow.sdk import get_current_context

        return dict(get_current_context())
    except Exception:
        return {}


def _last_resort(limit_seconds: float, done: threading.Event, context: dict[str, Any]) -> None:
    """In a thread of the task's own: once the limit and its grace have passed with the task still
    running, alert and kill the process. It writes to the process's standard error directly: the
    stuck main thread may hold a lock of logging's."""
    grace = _grace_minutes()
    if done.wait(limit_seconds + grace * 60):
        return
    configured = getattr(context.get("task"), "execution_timeout", None)  # the timer ran since the task began
    limit = f"{configured.total_seconds() / 60:g}" if configured else f"{limit_seconds / 60:.2g}"
    killed = (f"the task was killed, still running {grace:g} min after its time limit of {limit} min "
              "(CALLTRAIL_TASK_TIMEOUT_MINUTES, CALLTRAIL_TASK_TIMEOUT_GRACE_MINUTES), where the timeout could "
              "not stop it")
    if tries := _tries_left(context):
        # as any failure with a retry to follow: no alert (Airflow's task supervisor marks the
        # killed process's try up for retry); the last try's failure alerts
        os.write(2, f"calltrail: {killed}; it has tries left (this was try {tries[0]} of {tries[1]}), so "
                    "it does not alert: a failure alerts once no retry follows\n".encode())
        os.kill(os.getpid(), signal.SIGKILL)
    observed = f"{killed}; the tasks after it in this DAG run did not run. Its log shows what it was doing"
    os.write(2, f"calltrail: {observed}\n".encode())
    alert = threading.Thread(target=_alert_killed, args=(context, observed), name="calltrail-timeout-alert",
                             daemon=True)
    alert.start()
    alert.join(ALERT_WAIT_SECONDS)
    os.kill(os.getpid(), signal.SIGKILL)


def _tries_left(context: dict[str, Any]) -> tuple[int, int] | None:
    """(this try, the task's tries) while Airflow would try the task again after this try fails
    (its ``try_number`` at most its ``max_tries``, as Airflow's execution API decides); else None."""
    ti = context.get("ti")
    try_number, max_tries = getattr(ti, "try_number", None), getattr(ti, "max_tries", None)
    if isinstance(try_number, int) and isinstance(max_tries, int) and 0 < try_number <= max_tries:
        return try_number, max_tries + 1
    return None


@functools.cache
def _grace_minutes() -> float:
    """``CALLTRAIL_TASK_TIMEOUT_GRACE_MINUTES``, read once a process (its tasks share one
    environment: under ``airflow dags test`` and ``make run`` every task runs in one process)."""
    from calltrail import settings as settings_module

    try:
        return settings_module.load().task_timeout_grace_minutes
    except settings_module.ConfigurationError:  # the task fails on it itself; the last resort still holds
        return float(settings_module.Settings().task_timeout_grace_minutes)


def _alert_killed(context: dict[str, Any], observed: str) -> None:
    from calltrail.airflow.notifiers import alert_task_killed

    try:
        alert_task_killed(context, observed)
    except Exception as exc:  # the kill goes ahead: say why there is no alert
        os.write(2, f"calltrail: the alert of the killed task failed: {type(exc).__name__}: {exc}\n".encode())


def guarded(python_callable: Callable[..., Any]) -> Callable[..., Any]:
    """``python_callable``, run within :func:`delivered_safely`."""
    @functools.wraps(python_callable)
    def run(*args: Any, **kwargs: Any) -> Any:
        with delivered_safely():
            return python_callable(*args, **kwargs)

    setattr(run, GUARDED, True)
    return run


def task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
    """Airflow's ``@task`` (bare, or with arguments), for a callable run within
    :func:`delivered_safely`. Every task of calltrail's DAGs is made with it."""
    from airflow.sdk import task as airflow_task

    if python_callable is None:
        return lambda fn: airflow_task(**kwargs)(guarded(fn))
    return airflow_task(guarded(python_callable), **kwargs)
