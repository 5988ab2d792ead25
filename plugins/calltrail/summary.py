"""What is in the lake, for people: rows per source, quarantined rows with reasons, locations."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from calltrail.lake.layout import (
    CONTACTS,
    LEADS,
    OPPORTUNITIES,
    OPPORTUNITY_CONTACT_ROLES,
    QUARANTINE,
    SALESFORCE_DATASETS,
    WEB_EVENTS,
    quarantine_dir,
    task_files,
    web_event_files,
)
from calltrail.quality.validate import WEB_VISIT
from calltrail.settings import Settings
from calltrail.warehouse.schemas import PUBLISHED_MODELS
from calltrail.warehouse.target import describe as describe_warehouse

CRM_DATASETS = (LEADS, CONTACTS, OPPORTUNITIES, OPPORTUNITY_CONTACT_ROLES)
CRM_LABELS = {LEADS.name: "Leads", CONTACTS.name: "Contacts", OPPORTUNITIES.name: "Opportunities",
              OPPORTUNITY_CONTACT_ROLES.name: "contact roles"}


@dataclass
class LakeSummary:
    web_events: int = 0
    web_files: int = 0
    task_versions: int = 0
    tasks: int = 0
    deleted_tasks: int = 0
    task_partitions: Counter[str] = field(default_factory=Counter)
    quarantined: dict[str, Counter[str]] = field(default_factory=dict)
    # Leads, Contacts, Opportunities, contact roles: dataset -> (records, versions)
    objects: dict[str, tuple[int, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"web_events": self.web_events, "web_files": self.web_files, "task_versions": self.task_versions,
                "tasks": self.tasks, "deleted_tasks": self.deleted_tasks,
                "task_partitions": dict(self.task_partitions),
                "quarantined": {k: dict(v) for k, v in self.quarantined.items()},
                "objects": {k: {"records": r, "versions": v} for k, (r, v) in self.objects.items()}}


def summarise(lake_dir: Path) -> LakeSummary:
    import duckdb

    from calltrail.lake.convert import parquet_list

    summary = LakeSummary()
    con = duckdb.connect()
    web = web_event_files(lake_dir)
    if web:
        summary.web_files = len(web)
        summary.web_events = con.execute(f"select count(*) from read_parquet({parquet_list(web)})").fetchone()[0]
    tasks = task_files(lake_dir)
    if tasks:
        for p in tasks:
            summary.task_partitions[p.parent.parent.name.removeprefix("source=")] += 1
        summary.task_versions, summary.tasks = con.execute(
            f"select count(*), count(distinct Id) from read_parquet({parquet_list(tasks)}, union_by_name = true)"
        ).fetchone()
        summary.deleted_tasks = con.execute(
            f"""select count(*) from (
                  select Id, arg_max(IsDeleted, SystemModstamp) as deleted
                  from read_parquet({parquet_list(tasks)}, union_by_name = true) group by Id) where deleted"""
        ).fetchone()[0]
    for dataset in CRM_DATASETS:
        files = dataset.files(lake_dir)
        if files:
            versions, records = con.execute(
                f"select count(*), count(distinct Id) from read_parquet({parquet_list(files)}, union_by_name = true)"
            ).fetchone()
            summary.objects[dataset.name] = (records, versions)
    for dataset in (WEB_EVENTS, *(d.name for d in SALESFORCE_DATASETS)):
        reasons: Counter[str] = Counter()
        for q in quarantine_dir(lake_dir, dataset).rglob("*.jsonl"):
            with q.open() as fh:
                for line in fh:
                    reasons[json.loads(line)["reason"]] += 1
        summary.quarantined[dataset] = reasons
    return summary


def quarantined_since(lake_dir: Path, since: float) -> dict[str, dict[str, Counter[str]]]:
    """This run's quarantined rows: dataset -> source file -> reason -> rows.

    A quarantine file is rewritten whenever its source is ingested, so the files written at or
    after ``since`` (a POSIX time taken before the run) hold what this run quarantined.
    """
    out: dict[str, dict[str, Counter[str]]] = {}
    root = lake_dir / QUARANTINE
    for dataset in (WEB_EVENTS, *(d.name for d in SALESFORCE_DATASETS)):
        for q in sorted((root / dataset).rglob("*.jsonl")):
            if q.stat().st_mtime < since:
                continue
            with q.open() as fh:
                for line in fh:
                    row = json.loads(line)
                    source = str(row.get("source_file") or q.name)
                    out.setdefault(dataset, {}).setdefault(source, Counter())[row.get("reason") or "?"] += 1
    return out


def render_run_quarantine(settings: Settings, quarantined: dict[str, dict[str, Counter[str]]]) -> str:
    """This run's quarantined rows by source file, with their reasons and the threshold."""
    lines = ["", "  quarantined in this run, by source file:"]
    total = 0
    for dataset, files in sorted(quarantined.items()):
        for source, reasons in sorted(files.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
            rows = sum(reasons.values())
            total += rows
            detail = ", ".join(f"{reason} {n:,}" for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
            lines.append(f"    {dataset:<17} {rows:>8,}  {source}  ({detail})")
    if not total:
        lines.append("    none")
    else:
        lines.append(f"    ({total:,} row(s); more than {settings.quarantine_alert_rows:,} in one ingestion task "
                     "alert: CALLTRAIL_QUARANTINE_ALERT_ROWS)")
    return "\n".join(lines)


def render(settings: Settings, summary: LakeSummary,
           this_run: dict[str, dict[str, Counter[str]]] | None = None) -> str:
    """The lake summary; with ``this_run`` (from :func:`quarantined_since`) also what this run quarantined."""
    lines = [
        "",
        "calltrail: what is in the lake",
        "==============================",
        f"  web events          {summary.web_events:>10,}  from {summary.web_files} file(s)",
        f"  Salesforce Tasks    {summary.tasks:>10,}  ({summary.task_versions:,} versions, "
        f"{summary.deleted_tasks:,} deleted; partitions: "
        + (", ".join(f"{k} {v}" for k, v in sorted(summary.task_partitions.items())) or "none") + ")",
    ]
    lines += [f"  {CRM_LABELS[name]:<20}{records:>10,}  ({versions:,} versions)"
              for name, (records, versions) in summary.objects.items()]
    lines += [
        "",
        "  quarantined rows in the lake, all runs (kept with their reasons, never dropped):",
    ]
    any_q = False
    for dataset, reasons in summary.quarantined.items():
        for reason, count in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"    {dataset:<17} {count:>8,}  {reason}")
            any_q = True
    if not any_q:
        lines.append("    none")
    if this_run is not None:
        lines.append(render_run_quarantine(settings, this_run))
    lines += [
        "",
        "  where things are:",
        f"    landing     {settings.landing_dir}",
        f"    lake        {settings.lake_dir}",
        f"    quarantine  {settings.lake_dir / QUARANTINE}",
        f"    warehouse   {describe_warehouse(settings)}",
        f"    airflow     {settings.airflow_home}",
        "",
    ]
    return "\n".join(lines)


@dataclass
class MartSummary:
    tasks_seen: int = 0
    calls: int = 0
    valid_calls: int = 0
    matched_to_session: int = 0
    task_only: int = 0
    missing_bizible_id: int = 0
    invalid_bizible_id: int = 0
    within_window: int = 0
    outside_window: int = 0
    without_session: int = 0
    touchpoints: int = 0
    by_channel: list[tuple[str, int, int]] = field(default_factory=list)
    task_only_by_channel: dict[str, int] = field(default_factory=dict)  # task-only touchpoints
    by_type: list[tuple[str, int, int]] = field(default_factory=list)  # (type, touchpoints, calls)
    people: int = 0
    people_with_touchpoints: int = 0
    opportunities_attributed: int = 0
    unattributed: list[tuple[str, int]] = field(default_factory=list)  # (reason, opportunities)
    # (channel, currency, attributed pipeline, attributed won revenue) under revenue_model
    revenue_model: str = ""
    revenue: list[tuple[str, str, Decimal, Decimal]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """For ``calltrail summary --json``: the lists as objects with named fields, and amounts as
        strings of their exact decimals (``"1250.00"``), as JSON numbers are binary floats."""
        named = {"by_channel": ("channel", "touchpoints", "calls"), "by_type": ("type", "touchpoints", "calls"),
                 "unattributed": ("reason", "opportunities"),
                 "revenue": ("channel", "currency", "attributed_pipeline", "attributed_won_revenue")}
        out = {k: v for k, v in self.__dict__.items() if k not in named}
        for key, fields in named.items():
            out[key] = [{f: str(v) if isinstance(v, Decimal) else v for f, v in zip(fields, row, strict=True)}
                        for row in getattr(self, key)]
        return out


def summarise_marts(settings: Settings, schema: str | None = None, *, model: str | None = None,
                    wait: bool = False) -> MartSummary | None:
    """Read the published marts of the configured target (DuckDB: read-only; with ``wait``, waiting
    up to ``CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS`` while a build writes the file; then
    :class:`~calltrail.warehouse.duckdb_file.WarehouseLocked`). Revenue by channel is
    the attribution ``model``'s (default ``CALLTRAIL_SUMMARY_MODEL``).

    None when nothing has been published yet (no run has passed its checks). ``schema``: where the
    marts are read, default the publish schema.
    """
    from calltrail.warehouse.target import exists, open_warehouse

    if not exists(settings):
        return None
    schema = schema or settings.publish_schema
    model = model or settings.summary_model
    with open_warehouse(settings, read_only=True, wait=wait) as con:
        if not con.has_table(schema, "rpt_call_match_rates"):
            return None
        s = MartSummary()
        row = con.execute(
            "select tasks, calls, calls_with_valid_bizible_id, calls_matched_to_session, calls_task_only, "
            "calls_missing_bizible_id, calls_invalid_bizible_id, calls_within_window, calls_outside_window, "
            f"calls_without_session from {schema}.rpt_call_match_rates").fetchone()
        (s.tasks_seen, s.calls, s.valid_calls, s.matched_to_session, s.task_only, s.missing_bizible_id,
         s.invalid_bizible_id, s.within_window, s.outside_window, s.without_session) = (int(v or 0) for v in row)
        s.touchpoints = con.execute(f"select count(*) from {schema}.fct_touchpoints").fetchone()[0]
        s.by_channel = [(c, int(t), int(k)) for c, t, k in con.execute(
            f"select marketing_channel, sum(touchpoints), sum(calls) from {schema}.rpt_touchpoints_by_channel "
            "group by 1 order by 2 desc, 1").fetchall()]
        s.task_only_by_channel = dict(con.execute(
            f"select marketing_channel, count(*) from {schema}.fct_touchpoints where touchpoint_origin = 'task_only' "
            "group by 1").fetchall())
        s.by_type = [(c, int(t), int(k)) for c, t, k in con.execute(
            f"select touchpoint_type, sum(touchpoints), sum(calls) from {schema}.rpt_touchpoints_by_channel "
            "group by 1 order by 2 desc, 1").fetchall()]
        if con.has_table(schema, "fct_attribution"):
            _people_and_revenue(con, schema, s, model)
        return s


def _people_and_revenue(con: Any, schema: str, s: MartSummary, model: str) -> None:
    """People, opportunities and revenue by channel, from the attribution marts."""
    s.people = con.execute(f"select count(*) from {schema}.dim_people").fetchone()[0]
    s.people_with_touchpoints = con.execute(
        f"select count(distinct person_id) from {schema}.fct_touchpoints").fetchone()[0]
    s.opportunities_attributed = con.execute(
        f"select count(distinct opportunity_id) from {schema}.fct_attribution").fetchone()[0]
    s.unattributed = [tuple(r) for r in con.execute(
        f"select reason, count(*) from {schema}.dq_opportunities_unattributed group by 1 order by 2 desc, 1").fetchall()]
    s.revenue = [tuple(r) for r in con.execute(
        f"select marketing_channel, currency_iso_code, coalesce(sum(attributed_pipeline), 0), "
        "coalesce(sum(attributed_won_revenue), 0) "
        f"from {schema}.rpt_revenue_by_channel where grouped_by = 'channel' and model = ? "
        "group by 1, 2 order by 2, 4 desc, 3 desc, 1", [model]).fetchall()]
    s.revenue_model = model


@dataclass(frozen=True)
class Publication:
    """The last publish of the marts: ``at`` is None when it predates the publications log."""

    at: datetime | None


def last_publication(settings: Settings) -> Publication | None:
    """When the published marts were last replaced; None when nothing was ever published."""
    from calltrail.warehouse.target import exists, open_warehouse

    if not exists(settings):
        return None
    with open_warehouse(settings, read_only=True, wait=False) as con:
        if con.has_table(*settings.publications.split(".")):
            at = con.execute(f"select max(published_at) from {settings.publications}").fetchone()[0]
            if at is not None:
                return Publication(at.replace(tzinfo=UTC))
        return Publication(None) if con.has_table(settings.publish_schema, "rpt_call_match_rates") else None


def render_publication(publication: Publication | None, now: datetime | None = None) -> str:
    """One sentence for a failed run: what consumers see now."""
    if publication is None:
        return "nothing has been published yet: no run has passed its checks, so consumers have no touchpoints"
    if publication.at is None:
        return ("the published touchpoints are those of the last good run (published before calltrail "
                "recorded publish times)")
    age = ((now or datetime.now(UTC)) - publication.at).total_seconds() / 3600
    ago = f"{age:.1f} h ago" if age < 48 else f"{age / 24:.1f} days ago"
    return (f"the published touchpoints are those of the last good run, published at "
            f"{publication.at:%Y-%m-%d %H:%M:%S} UTC ({ago})")


CAUSE_CHARS = 300  # a console line: the whole message is in the alert and the task log


def _one_line(text: str, limit: int = CAUSE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def failure_causes(alerts: list[dict[str, Any]], dag_id: str) -> list[str]:
    """One line per failed task of ``dag_id`` among ``alerts``: DAG / task: the exception's first line.

    A task that failed on its own checks (the gates) has check alerts at ``error`` instead; they
    are named with their layer and check.
    """
    mine = [a for a in alerts if a.get("dag_id") == dag_id and a.get("severity") == "error"]
    tasks = [a for a in mine if a.get("layer") in ("task", "dbt")]
    out = []
    for a in tasks or mine:
        task = a.get("task_id") or a.get("check")
        first = str(a.get("observed", "")).splitlines()[0] if a.get("observed") else "(no message)"
        if a in tasks:
            out.append(_one_line(f"{dag_id} / {task}: {first}"))
        else:
            out.append(_one_line(f"{dag_id} / {task}: check {a.get('layer')}/{a.get('check')} failed: {first}"))
    return out


def read_alerts(settings: Settings, since: str | None = None) -> list[dict[str, Any]]:
    """Alerts from ``alerts.jsonl`` raised at or after ``since`` (ISO time), oldest first."""
    if not settings.alerts_file.exists():
        return []
    alerts = []
    for line in settings.alerts_file.read_text().splitlines():
        try:
            alert = json.loads(line)
        except ValueError:
            continue
        if since is None or alert.get("raised_at", "") >= since:
            alerts.append(alert)
    return alerts


def render_quality(settings: Settings, alerts: list[dict[str, Any]], *, failed: bool = False,
                   checks_ran: bool = True) -> str:
    """The run's alerts. "every check passed" only for a run that succeeded and ran its checks."""
    lines = ["calltrail: data quality", "======================="]
    if alerts:
        lines.append(f"  {len(alerts)} alert(s) in this run:")
        lines += [_one_line(f"    [{a['severity']}] {a['layer']}/{a['check']}: {str(a['observed']).splitlines()[0]}")
                  for a in alerts]
    elif failed:
        lines.append("  the run FAILED and no alert was recorded for it: see the cause above and the log")
    else:
        lines.append("  every check passed: no alerts")
    if failed and not checks_ran:
        lines += ["  the data-quality checks did not run (the transformation was not reached)",
                  _alerts_line(settings), ""]
        return "\n".join(lines)
    lines += [
        f"  Data Docs   {settings.data_docs_index}",
        _alerts_line(settings),
        f"  hand-off    {settings.missing_bizible_id_csv}  (calls missing a BizibleId, for the vendor)",
        "",
    ]
    return "\n".join(lines)


def _alerts_line(settings: Settings) -> str:
    """Where the alerts of every run are, once there is one; the file appears with the first alert."""
    if settings.alerts_file.exists():
        return f"  alerts      {settings.alerts_file}  (every run's alerts)"
    return "  alerts      none recorded yet"


def describe_data(settings: Settings) -> str:
    """Which data the marts are built from: "demo data (generated)" or "your data: ..."."""
    from calltrail.demo.apart import describe

    return describe(settings)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "    -"


def _render_revenue(s: MartSummary) -> list[str]:
    unattributed = sum(n for _, n in s.unattributed)
    lines = ["", "  people and revenue",
             f"    people (Leads and Contacts)  {s.people:>8,}  ({s.people_with_touchpoints:,} with touchpoints)",
             f"    opportunities attributed     {s.opportunities_attributed:>8,}",
             f"    opportunities unattributed   {unattributed:>8,}"
             + (f"  ({', '.join(f'{n:,} {reason}' for reason, n in s.unattributed)}: see dq_opportunities_unattributed)"
                if unattributed else "")]
    if s.revenue:
        lines += ["", f"  revenue by channel, {s.revenue_model} model "
                      "(another: calltrail summary --model NAME; every model: rpt_revenue_by_channel)",
                  f"    {'channel':<28} {'':<4} {'pipeline':>16} {'won':>12}"]
        lines += [f"    {channel:<28} {currency:<4} {pipeline:>16,.2f} {won:>12,.2f}"
                  for channel, currency, pipeline, won in s.revenue]
    return lines


OTHER_CHANNEL = "Other"  # the channel when no rule of channel_rules matches


def _render_types(by_type: list[tuple[str, int, int]]) -> list[str]:
    """Touchpoint types, the calls' Types together under "calls" with each Type below. A call whose
    Task has no Type is typed Web Visit (docs/rules.md, Touchpoint fields): said so, with the count."""
    call_types = [(t, n) for t, n, calls in by_type if calls and t != WEB_VISIT]
    lines = []
    if call_types:
        lines.append(f"    {'calls':<36} {sum(n for _, n in call_types):>9,}")
        lines += [f"      {t:<34} {n:>9,}" for t, n in call_types]
    for t, n, calls in by_type:
        if (t, n) in call_types:
            continue
        note = (f"  ({calls:,} of them calls whose Task has no Type: typed as a visit, as Marketo Measure does)"
                if calls and t == WEB_VISIT else "")
        lines.append(f"    {t:<36} {n:>9,}{note}")
    return lines


def render_marts(settings: Settings, s: MartSummary) -> str:
    lines = [
        "calltrail: calls and touchpoints",
        "================================",
        f"  data                        {describe_data(settings)}",
        f"  Tasks seen                  {s.tasks_seen:>8,}",
        f"  call Tasks                  {s.calls:>8,}",
        f"    with a valid BizibleId    {s.valid_calls:>8,}  {_pct(s.valid_calls, s.calls)}",
        f"    matched to a web session  {s.matched_to_session:>8,}  {_pct(s.matched_to_session, s.valid_calls)}"
        " of valid calls",
        f"    task-only (no web data)   {s.task_only:>8,}  ({s.outside_window:,} outside the window, "
        f"{s.without_session:,} without a session, "
        f"{s.within_window - s.matched_to_session:,} in an already converted session)",
        f"    missing BizibleId         {s.missing_bizible_id + s.invalid_bizible_id:>8,}  "
        f"({s.missing_bizible_id:,} missing, {s.invalid_bizible_id:,} malformed: see dq_calls_missing_bizible_id)",
        "",
        f"  touchpoints by channel ({s.touchpoints:,} touchpoints)      touchpoints    calls",
    ]
    for channel, tp, calls in s.by_channel:
        task_only = s.task_only_by_channel.get(channel, 0)
        note = ("" if not task_only else
                f"  ({task_only:,} task-only: Tasks without a web session to take a channel from)"
                if channel == OTHER_CHANNEL else f"  ({task_only:,} task-only: the channel of the Task's Type)")
        lines.append(f"    {channel:<36} {tp:>9,} {calls:>8,}{note}")
    lines += ["", "  touchpoints by type"] + _render_types(s.by_type)
    lines += _render_revenue(s)
    lines += [
        "",
        f"  warehouse   {describe_warehouse(settings)}  (schema {settings.publish_schema}: {', '.join(PUBLISHED_MODELS)})",
        f"  dbt docs    {settings.dbt_docs_dir / 'static_index.html'}  (lineage: open in a browser)",
        "",
    ]
    return "\n".join(lines)


def render_nothing_published(settings: Settings) -> str:
    """What ``calltrail summary`` says instead of the marts when the target has none published."""
    return "\n".join([
        "calltrail: calls and touchpoints",
        "================================",
        f"  nothing is published in {describe_warehouse(settings)} yet: no run has passed its checks",
        "  (`make run` builds, checks and publishes the marts)",
        "",
    ])


def render_report(settings: Settings, since: float | None = None) -> str:
    """Where the report page is, as a ``file://`` URL; with ``since`` (a POSIX time taken before the
    run) whether this run wrote it."""
    from calltrail.report.page import index_file

    index = index_file(settings)
    lines = ["calltrail: the report page", "=========================="]
    if not index.exists():
        lines.append("  not written yet: every run that publishes writes it (or: calltrail report)")
    else:
        stale = since is not None and index.stat().st_mtime < since
        written = datetime.fromtimestamp(index.stat().st_mtime, UTC)
        lines.append(f"  {index.as_uri()}")
        lines.append(f"  written {written:%Y-%m-%d %H:%M:%S} UTC"
                     + (" by an earlier run: this run did not write it (see the publish task's log)" if stale else
                        "; open it in a browser (no network needed), or in Airflow: Browse > calltrail report"))
    lines.append("")
    return "\n".join(lines)
