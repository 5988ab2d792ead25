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
The history is the table ``run_metrics`` of the quality schema (``CALLTRAIL_QUALITY_SCHEMA``, default
``quality``) in the warehouse; each function that reads or writes it is given its name (``history``).

The shares are also measured over each run's new rows (``missing_bizible_id_share_new``,
``match_rate_new``): the calls whose latest version reached the lake (``loaded_at``) after the
newest row the previous recorded run saw. A small bad batch barely moves a week of figures but is
most of its own rows. They are judged as the window figures are, and not over fewer than
``CALLTRAIL_DQ_WINDOW_MIN_ROWS`` rows, so a quiet hour never alerts. The counts of new rows
(``calls_new``, ``web_events_new``) are recorded, not judged: they follow the hour of the day, so
the median of the last runs is no baseline for them (the window counts judge volume). The first
run has no previous run and so no new-row figures.

Three figures are recorded for the report page's trend lines and never judged: the build's match
rate and share of calls missing a BizibleId as ``rpt_call_match_rates`` holds them (over every
call), and the rows quarantined since the previous run.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from calltrail.quality.outcome import ERROR, OK, WARN, Outcome
from calltrail.quality.window import Window
from calltrail.settings import TrendSettings

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class NewMetric:
    """A figure over the rows loaded since the previous run, read as ``{subject} loaded since ...:
    62.0% of 540 {verb}``."""

    key: str
    subject: str
    verb: str
    is_share: bool
    # (value, rows), over the dbt build in schema {schema}; {new} is the condition on ``loaded_at``.
    sql: str

    @property
    def name(self) -> str:
        return f"{self.key}_new"


NEW_METRICS = (
    NewMetric("missing_bizible_id_share", "calls", "lack a (valid) BizibleId", True,
              "select avg(case when bizible_id_status in ('missing', 'invalid_format') then 1.0 else 0.0 end), "
              "count(*) from {schema}.stg_salesforce__tasks where is_call and {new}"),
    NewMetric("match_rate", "calls with a valid BizibleId", "are matched to a web session", True,
              "select avg(case when touchpoints.touchpoint_origin = 'task_in_session' then 1.0 else 0.0 end), "
              "count(*) from {schema}.stg_salesforce__tasks as calls left join {schema}.fct_touchpoints as touchpoints "
              "on calls.task_id = touchpoints.task_id "
              "where calls.is_call and calls.bizible_id_status = 'valid' and {new}"),
    NewMetric("calls", "call Tasks", "", False,
              "select count(*), count(*) from {schema}.stg_salesforce__tasks as calls where calls.is_call and {new}"),
    NewMetric("web_events", "web events", "", False,
              "select count(*), count(*) from {schema}.stg_web__events where {new}"),
)


@dataclass(frozen=True)
class PreviousRun:
    """The latest recorded audit run before this one: when it ran and the newest row it saw."""

    run_id: str
    measured_at: datetime
    loaded_through: datetime

    @property
    def label(self) -> str:
        return f"loaded since the previous run at {self.measured_at:%Y-%m-%d %H:%M} UTC"

    def contains(self, column: str) -> str:
        """A SQL condition that ``column`` (a UTC timestamp) is after what the previous run saw."""
        return f"{column} > timestamp '{self.loaded_through.isoformat(sep=' ')}'"


def ensure_history(con: Any, history: str) -> None:
    con.ensure_schema(history.split(".")[0])
    if con.engine == "spark":
        con.execute(f"""
            create table if not exists {history} (
                run_id string, dag_id string, measured_at timestamp, metric string, value double,
                passed boolean, loaded_through timestamp
            ) using parquet""")
        return
    con.execute(f"""
        create table if not exists {history} (
            run_id varchar not null,
            dag_id varchar,
            measured_at timestamp not null,
            metric varchar not null,
            value double precision,
            passed boolean
        )""")
    # The newest lake row (loaded_at) the run's build held: the next run's new rows come after it.
    con.execute(f"alter table {history} add column if not exists loaded_through timestamp")


def loaded_through(con: Any, schema: str) -> datetime | None:
    """The newest ``loaded_at`` in this run's build, over Task versions and web events."""
    row = con.execute(f"""
        select max(loaded_at) from (
            select max(loaded_at) as loaded_at from {schema}.stg_salesforce__task_versions
            union all
            select max(loaded_at) as loaded_at from {schema}.stg_web__events
        ) as newest""").fetchone()
    return None if row is None else row[0]


def previous_run(con: Any, history: str, run_id: str) -> PreviousRun | None:
    """The latest run recorded before this one (passed or not: it saw its rows either way)."""
    row = con.execute(f"""
        select run_id, max(measured_at), max(coalesce(loaded_through, measured_at)) from {history}
        where run_id <> ? group by run_id order by max(measured_at) desc limit 1""", [run_id]).fetchone()
    return None if row is None else PreviousRun(run_id=row[0], measured_at=row[1], loaded_through=row[2])


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


def measure_new(con: Any, schema: str, previous: PreviousRun | None, min_rows: int
                ) -> tuple[dict[str, float | None], dict[str, int]]:
    """This run's figures over its new rows, and the rows each was measured over; none on a first
    run. A share over fewer than ``min_rows`` rows is None (not judged)."""
    values: dict[str, float | None] = {}
    rows_of: dict[str, int] = {}
    if previous is None:
        log.info("trend figures over new rows: no earlier run recorded, none this run")
        return values, rows_of
    for m in NEW_METRICS:
        row = con.execute(m.sql.format(schema=schema, new=previous.contains("loaded_at"))).fetchone()
        value, rows = (None, 0) if row is None else (row[0], int(row[1] or 0))
        if m.is_share and value is not None and rows < min_rows:
            log.info("trend %s: %d %s %s, fewer than the %d needed (CALLTRAIL_DQ_WINDOW_MIN_ROWS): not judged",
                     m.name, rows, m.subject, previous.label, min_rows)
            value = None
        values[m.name] = None if value is None else float(value)
        rows_of[m.name] = rows
    return values, rows_of


# Recorded for the report page's trend lines, never judged: the figures of the whole build as the
# marts publish them (rpt_call_match_rates), and the rows quarantined since the previous run.
MATCH_RATE_ALL = "match_rate_all"
MISSING_BIZIBLE_ID_SHARE_ALL = "missing_bizible_id_share_all"
QUARANTINED_ROWS_NEW = "quarantined_rows_new"


def measure_all(con: Any, schema: str) -> dict[str, float | None]:
    """The build's match rate and share of calls missing a BizibleId, as ``rpt_call_match_rates``
    holds them (over every call, not the window)."""
    row = con.execute(f"select match_rate, missing_bizible_id_rate from {schema}.rpt_call_match_rates").fetchone()
    match_rate, missing = (None, None) if row is None else row
    return {MATCH_RATE_ALL: None if match_rate is None else float(match_rate),
            MISSING_BIZIBLE_ID_SHARE_ALL: None if missing is None else float(missing)}


def quarantined_rows_since(lake_dir: Path, previous: PreviousRun | None) -> dict[str, float | None]:
    """Rows quarantined since the previous recorded run: the lines of the quarantine files written
    after it (a quarantine file is written when its source file is ingested); every quarantined row
    in the lake on a first run."""
    from calltrail.lake.layout import QUARANTINE

    since = None if previous is None else previous.measured_at.replace(tzinfo=UTC).timestamp()
    rows = 0
    for path in (lake_dir / QUARANTINE).rglob("*.jsonl"):
        if since is None or path.stat().st_mtime > since:
            with path.open("rb") as fh:
                rows += sum(1 for line in fh if line.strip())
    return {QUARANTINED_ROWS_NEW: float(rows)}


def baselines(con: Any, history: str, run_id: str, runs: int) -> dict[str, list[float]]:
    """The metric values of the last ``runs`` published runs before this one, newest first."""
    rows = con.execute(f"""
        with recent as (
            select run_id, max(measured_at) as measured_at from {history}
            where passed and run_id <> ? group by run_id order by measured_at desc limit ?
        )
        select h.metric, h.value from {history} h join recent r on h.run_id = r.run_id
        where h.value is not null order by r.measured_at desc""", [run_id, runs]).fetchall()
    values: dict[str, list[float]] = {}
    for metric, value in rows:
        values.setdefault(metric, []).append(value)
    return values


def _fmt(metric: Metric | NewMetric, value: float) -> str:
    return f"{100 * value:.1f}%" if metric.is_share else f"{value:,.0f}"


def _moved(value: float, base: float, is_share: bool, t: TrendSettings) -> bool:
    moved = (value > base * t.factor or value < base / t.factor) if base > 0 else value > 0
    return moved and not (is_share and abs(value - base) < t.min_change)


def _expected(metric: Metric | NewMetric, base: float, runs: int, t: TrendSettings) -> str:
    return (f"within a factor of {t.factor:g} of the median of the last {runs} published runs "
            f"({_fmt(metric, base)})" + (f" or within {100 * t.min_change:.0f} points" if metric.is_share else ""))


def _log(outcomes: list[Outcome]) -> None:
    for o in outcomes:
        (log.info if o.severity == OK else log.warning if o.severity == WARN else log.error)("%s", o.describe())


def _judge(name: str, metric: Metric | NewMetric, value: float, past: list[float], t: TrendSettings,
           observed: str) -> Outcome | None:
    """This run's ``value`` against the median of ``past`` runs; None until ``t.min_runs`` runs exist."""
    if len(past) < t.min_runs:
        log.info("trend %s: %s now; %d earlier run(s), %d needed before comparing", name, _fmt(metric, value),
                 len(past), t.min_runs)
        return None
    base = statistics.median(past)
    severity = (ERROR if t.severity == "error" else WARN) if _moved(value, base, metric.is_share, t) else OK
    return Outcome(check=f"trend_{name}", layer="trend", severity=severity, observed=observed,
                   expected=_expected(metric, base, len(past), t), expectation="trend")


def compare(current: dict[str, float | None], history: dict[str, list[float]], t: TrendSettings,
            window: Window) -> list[Outcome]:
    outcomes = []
    for m in METRICS:
        name = m.name(window)
        value = current.get(name)
        if value is None:
            continue
        outcome = _judge(name, m, value, history.get(name, []), t,
                         f"{m.description} {window.label}: {_fmt(m, value)} in this run")
        if outcome:
            outcomes.append(outcome)
    _log(outcomes)
    return outcomes


def compare_new(current: dict[str, float | None], rows_of: dict[str, int], history: dict[str, list[float]],
                t: TrendSettings, previous: PreviousRun | None) -> list[Outcome]:
    """The shares over this run's new rows against the same figures of recent runs (counts are
    recorded only: see the module's docstring)."""
    outcomes: list[Outcome] = []
    if previous is None:
        return outcomes
    for m in (m for m in NEW_METRICS if m.is_share):
        value = current.get(m.name)
        if value is None:
            continue
        outcome = _judge(m.name, m, value, history.get(m.name, []), t,
                         f"{m.subject} {previous.label}: {_fmt(m, value)} of {rows_of.get(m.name, 0):,} {m.verb}")
        if outcome:
            outcomes.append(outcome)
    _log(outcomes)
    return outcomes


def record(con: Any, history: str, run_id: str, dag_id: str, current: dict[str, float | None], passed: bool,
           through: datetime | None = None) -> None:
    """Keep this run's figures and the newest lake row it saw (a retry of the same run replaces them)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [[run_id, dag_id, now, name, value, passed, through] for name, value in current.items()]
    columns = "run_id, dag_id, measured_at, metric, value, passed, loaded_through"
    if con.engine == "spark":
        # Spark's Parquet tables have no delete: a retry of a recorded run rewrites the history without it
        if con.execute(f"select count(*) from {history} where run_id = ?", [run_id]).fetchone()[0]:
            kept = con.execute(f"select {columns} from {history} where run_id <> ?", [run_id]).fetchall()
            con.execute(f"truncate table {history}")
            rows = [list(r) for r in kept] + rows
    else:
        con.execute(f"delete from {history} where run_id = ?", [run_id])
    con.executemany(f"insert into {history} ({columns}) values (?, ?, ?, ?, ?, ?, ?)", rows)
