"""Trend checks: this run's figures against recent runs, kept in the warehouse.

Each figure is measured over the recent window (the rows whose own time, call time, session start
or event time, falls in the last ``CALLTRAIL_DQ_WINDOW_DAYS`` days), not over every row ever: a
running total never falls and an all-time share barely moves after months of history, so neither
would show a week that went wrong. A metric's name carries the window (``match_rate_7d``), so a
changed window starts a new baseline instead of being compared with figures of another size. A
share over fewer than ``CALLTRAIL_DQ_WINDOW_MIN_ROWS`` rows is recorded as unknown and not judged.

A metric alerts when it moves by more than ``CALLTRAIL_DQ_TREND_FACTOR`` either way against the
median of the last ``CALLTRAIL_DQ_TREND_RUNS`` published runs (and, for shares, by at least
``CALLTRAIL_DQ_TREND_MIN_CHANGE`` in absolute terms), even when every absolute threshold holds.
The history is the table ``quality.run_metrics`` in the warehouse.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from calltrail.quality.outcome import ERROR, OK, WARN, Outcome
from calltrail.quality.window import Window
from calltrail.settings import TrendSettings

log = logging.getLogger(__name__)

HISTORY = "quality.run_metrics"


@dataclass(frozen=True)
class Metric:
    key: str
    description: str
    is_share: bool
    time_column: str  # the rows' own time, which places them in the window
    # (value, rows it was measured over), over the dbt build in schema {schema}; {recent} is the
    # condition that ``time_column`` falls in the window.
    sql: str

    def name(self, window: Window) -> str:
        return f"{self.key}_{window.days}d"


METRICS = (
    Metric("missing_bizible_id_share", "share of calls missing a (valid) BizibleId", True, "call_at",
           "select avg(case when bizible_id_status in ('missing', 'invalid_format') then 1.0 else 0.0 end), count(*) "
           "from {schema}.stg_salesforce__tasks where is_call and {recent}"),
    Metric("match_rate", "share of calls with a valid BizibleId matched to a web session", True, "calls.call_at",
           "select avg(case when touchpoints.touchpoint_origin = 'task_in_session' then 1.0 else 0.0 end), count(*) "
           "from {schema}.stg_salesforce__tasks as calls left join {schema}.fct_touchpoints as touchpoints "
           "on calls.task_id = touchpoints.task_id "
           "where calls.is_call and calls.bizible_id_status = 'valid' and {recent}"),
    Metric("other_channel_session_share", "share of sessions in channel Other", True, "session_start_at",
           "select avg(case when marketing_channel = 'Other' then 1.0 else 0.0 end), count(*) "
           "from {schema}.int_sessions where {recent}"),
    Metric("calls", "call Tasks", False, "call_at",
           "select count(*), count(*) from {schema}.stg_salesforce__tasks where is_call and {recent}"),
    Metric("web_events", "web events", False, "occurred_at",
           "select count(*), count(*) from {schema}.stg_web__events where {recent}"),
)


def ensure_history(con: Any) -> None:
    con.execute("create schema if not exists quality")
    con.execute(f"""
        create table if not exists {HISTORY} (
            run_id varchar not null,
            dag_id varchar,
            measured_at timestamp not null,
            metric varchar not null,
            value double,
            passed boolean
        )""")


def measure(con: Any, schema: str, window: Window) -> dict[str, float | None]:
    """This run's figures over the window; a share over fewer than ``window.min_rows`` rows is None."""
    values: dict[str, float | None] = {}
    for m in METRICS:
        row = con.execute(m.sql.format(schema=schema, recent=window.contains(m.time_column))).fetchone()
        value, rows = (None, 0) if row is None else (row[0], int(row[1] or 0))
        if m.is_share and value is not None and rows < window.min_rows:
            log.info("trend %s: %d rows %s, fewer than the %d needed (CALLTRAIL_DQ_WINDOW_MIN_ROWS): not judged",
                     m.name(window), rows, window.label, window.min_rows)
            value = None
        values[m.name(window)] = None if value is None else float(value)
    return values


def baselines(con: Any, run_id: str, runs: int) -> dict[str, list[float]]:
    """The metric values of the last ``runs`` published runs before this one, newest first."""
    rows = con.execute(f"""
        with recent as (
            select run_id, max(measured_at) as measured_at from {HISTORY}
            where passed and run_id <> ? group by run_id order by measured_at desc limit ?
        )
        select h.metric, h.value from {HISTORY} h join recent r on h.run_id = r.run_id
        where h.value is not null order by r.measured_at desc""", [run_id, runs]).fetchall()
    history: dict[str, list[float]] = {}
    for metric, value in rows:
        history.setdefault(metric, []).append(value)
    return history


def _fmt(metric: Metric, value: float) -> str:
    return f"{100 * value:.1f}%" if metric.is_share else f"{value:,.0f}"


def compare(current: dict[str, float | None], history: dict[str, list[float]], t: TrendSettings,
            window: Window) -> list[Outcome]:
    outcomes = []
    for m in METRICS:
        name = m.name(window)
        value, past = current.get(name), history.get(name, [])
        if value is None:
            continue
        if len(past) < t.min_runs:
            log.info("trend %s: %s now; %d earlier run(s), %d needed before comparing", name, _fmt(m, value),
                     len(past), t.min_runs)
            continue
        base = statistics.median(past)
        moved = (value > base * t.factor or value < base / t.factor) if base > 0 else value > 0
        if m.is_share and abs(value - base) < t.min_change:
            moved = False
        severity = (ERROR if t.severity == "error" else WARN) if moved else OK
        outcomes.append(Outcome(
            check=f"trend_{name}", layer="trend", severity=severity,
            observed=f"{m.description} {window.label}: {_fmt(m, value)} in this run",
            expected=(f"within a factor of {t.factor:g} of the median of the last {len(past)} published runs "
                      f"({_fmt(m, base)})" + (f" or within {100 * t.min_change:.0f} points" if m.is_share else "")),
            expectation="trend"))
    return outcomes


def record(con: Any, run_id: str, dag_id: str, current: dict[str, float | None], passed: bool) -> None:
    """Keep this run's figures (a retry of the same run replaces them)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    con.execute(f"delete from {HISTORY} where run_id = ?", [run_id])
    con.executemany(f"insert into {HISTORY} values (?, ?, ?, ?, ?, ?)",
                    [[run_id, dag_id, now, name, value, passed] for name, value in current.items()])
