"""Trend checks: this run's figures against recent runs, kept in the warehouse.

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
from calltrail.settings import TrendSettings

log = logging.getLogger(__name__)

HISTORY = "quality.run_metrics"


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    is_share: bool
    sql: str  # one value, over the dbt build in schema {schema}


METRICS = (
    Metric("missing_bizible_id_share", "share of calls missing a (valid) BizibleId", True,
           "select missing_bizible_id_rate from {schema}.rpt_call_match_rates"),
    Metric("match_rate", "share of calls with a valid BizibleId matched to a web session", True,
           "select match_rate from {schema}.rpt_call_match_rates"),
    Metric("other_channel_session_share", "share of sessions in channel Other", True,
           "select avg(case when marketing_channel = 'Other' then 1.0 else 0.0 end) from {schema}.int_sessions"),
    Metric("rows_web_events", "web events in staging", False, "select count(*) from {schema}.stg_web__events"),
    Metric("rows_salesforce_task", "Salesforce Task versions in staging", False,
           "select count(*) from {schema}.stg_salesforce__task_versions"),
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


def measure(con: Any, schema: str) -> dict[str, float | None]:
    values = {}
    for m in METRICS:
        row = con.execute(m.sql.format(schema=schema)).fetchone()
        values[m.name] = None if row is None or row[0] is None else float(row[0])
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


def compare(current: dict[str, float | None], history: dict[str, list[float]], t: TrendSettings) -> list[Outcome]:
    outcomes = []
    for m in METRICS:
        value, past = current.get(m.name), history.get(m.name, [])
        if value is None:
            continue
        if len(past) < t.min_runs:
            log.info("trend %s: %s now; %d earlier run(s), %d needed before comparing", m.name, _fmt(m, value),
                     len(past), t.min_runs)
            continue
        base = statistics.median(past)
        moved = (value > base * t.factor or value < base / t.factor) if base > 0 else value > 0
        if m.is_share and abs(value - base) < t.min_change:
            moved = False
        severity = (ERROR if t.severity == "error" else WARN) if moved else OK
        outcomes.append(Outcome(
            check=f"trend_{m.name}", layer="trend", severity=severity,
            observed=f"{m.description}: {_fmt(m, value)} in this run",
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
