"""The task-failure notifier of every DAG: a failed task alerts once, with its cause."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from calltrail.airflow.alerts import deliver
from calltrail.airflow.run_context import RunInfo
from calltrail.quality.outcome import ERROR, DataQualityError, Outcome
from calltrail.settings import Settings


def failure_cause(exception: BaseException | str | None) -> str:
    """What failed, for people: the exception's class and its message's first line, then (on the
    following lines) the last lines of a longer message, where tools such as dbt put the details."""
    if exception is None:
        return "the task failed without an exception (killed, or marked failed)"
    if type(exception).__name__ == "AirflowFailException" and exception.__cause__ is not None:
        exception = exception.__cause__  # failed without retries: the cause is what people need
    if isinstance(exception, str):
        name, text = "", exception
    else:
        name, text = type(exception).__name__, str(exception)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()] or ["(no message)"]
    first = f"{name}: {lines[0]}" if name else lines[0]
    return "\n".join([first[:1000], *(line[:300] for line in lines[1:][-3:])])


def _timed_out(exception: BaseException | str | None, context: dict[str, Any]) -> str | None:
    """Airflow's own words for a task stopped at its execution_timeout are "Timeout, PID: N"."""
    if type(exception).__name__ != "AirflowTaskTimeout":
        return None
    limit = getattr(context.get("task"), "execution_timeout", None)
    after = f"{limit.total_seconds() / 60:g} min " if limit else ""
    return (f"AirflowTaskTimeout: the task was stopped, still running after {after}(CALLTRAIL_TASK_TIMEOUT_MINUTES); "
            "the tasks after it in this DAG run did not run. Its log shows what it was doing; for a long "
            "first build, raise the limit")


def alert_task_failure(context: dict[str, Any]) -> None:
    """Task-level failure callback of every DAG: a failed task alerts with its cause.

    The first line of the alert's ``observed`` is the exception's class and message (first line);
    ``calltrail run`` prints it as the run's cause. The gates above alert for their own checks
    before they raise, so their failures are not alerted twice.
    """
    from calltrail import settings as settings_module
    from calltrail.warehouse.duckdb_file import locked_error

    exception = context.get("exception")
    if isinstance(exception, DataQualityError):
        return
    settings = settings_module.load()
    # dbt's own error for a warehouse held by another process is a traceback: say it plainly.
    locked = locked_error(settings.warehouse, str(exception or ""), None)
    observed = _timed_out(exception, context) or failure_cause(locked or exception)
    _deliver_task_failed(context, observed, settings)


def alert_task_killed(context: dict[str, Any], observed: str) -> None:
    """The alert of a task that its own process kills, still running after its time limit and its
    grace (:mod:`calltrail.airflow.timeouts`): no failure callback runs in a killed process."""
    from calltrail import settings as settings_module

    _deliver_task_failed(context, observed, settings_module.load())


def _deliver_task_failed(context: dict[str, Any], observed: str, settings: Settings) -> None:
    """The alert of one failed task, ``observed`` its cause."""
    run = RunInfo.from_context(context)
    task_id = run.task_id or "unknown task"
    outcome = Outcome(check=task_id, layer="dbt" if task_id.startswith("dbt.") else "task", severity=ERROR,
                      observed=observed, expected="the task succeeds", expectation="task")
    deliver([outcome], settings, run, context)


def task_defaults(settings: Settings) -> dict[str, Any]:
    """The ``default_args`` of every DAG: a failed task alerts (task-level: DAG-level notifiers fail
    under ``airflow dags test``), and a task still running after ``CALLTRAIL_TASK_TIMEOUT_MINUTES``
    is stopped (Airflow's ``execution_timeout``) and fails, so it alerts too."""
    minutes = settings.task_timeout_minutes
    return {"on_failure_callback": alert_task_failure,
            "execution_timeout": timedelta(minutes=minutes) if minutes else None}
