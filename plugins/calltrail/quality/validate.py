"""Great Expectations suites at three layers: the raw lake, staging and the marts.

GX Core 1.x with an ephemeral context and suites written here in Python; data goes to GX as
pandas DataFrames (GX's SQL route returns empty results on DuckDB). Every validation runs through
a checkpoint whose action writes the GX Data Docs (static HTML) to ``CALLTRAIL_DATA_DOCS_DIR``.

A check with a threshold passes when at least ``warn`` of the rows pass (GX ``mostly``); below
that it is a warning, and below ``error`` an error. Checks without a threshold must hold for
every row and fail at error, except those capped at warning (``max_severity``), which report data
that flows on as it is (a Task Type outside the expected list).

Every threshold check runs twice: over all rows, and as ``<check>_recent`` over the rows of the
recent window (:mod:`calltrail.quality.window`), with the same thresholds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from calltrail.dbt_project import project_var
from calltrail.lake.layout import SALESFORCE_TASK_GLOB, WEB_EVENTS_GLOB
from calltrail.quality.offline_assets import localize
from calltrail.quality.outcome import ERROR, OK, WARN, Outcome
from calltrail.quality.window import Window
from calltrail.settings import QualitySettings
from calltrail.warehouse.spark import quiet_pyspark_pandas_warning

log = logging.getLogger(__name__)

TOUCHPOINT_POSITIONS = ("FT", "LC", "Post LC", "FT, LC", "FT, Post LC")
WEB_VISIT = "Web Visit"  # also the type of a call whose Task has no Type
WEB_TOUCHPOINT_TYPES = (WEB_VISIT, "Web Form")
MATCH_STATUSES: tuple[str, ...] = tuple(project_var("calltrail__match_statuses"))
EVENT_TYPES: tuple[str, ...] = tuple(project_var("calltrail__web_event_types"))
EXACTLY_ONE = "exactly 1"  # attribution_sums.credit_sum of an opportunity and model whose credits are right
TIMESTAMP_TYPES = ["datetime64[us]", "datetime64[ns]", "datetime64[ms]", "datetime64[s]"]


@dataclass(frozen=True)
class Check:
    name: str
    layer: str
    frame: str
    expectation: Callable[[float | None], Any]  # mostly -> a GX expectation
    description: str
    threshold: str | None = None  # key of QualitySettings.thresholds; None: every row, error
    # How a threshold check's figure reads: "62% of 540 calls lack a BizibleId".
    noun: str = ""
    fails: str = ""
    scope: str = "all time"  # the rows it ran over; a recent check names its window
    max_severity: str = ERROR  # WARN: the rows are published as they are, the check only reports them
    # For a value-set check that lists what it found: the column and the expected values (counted
    # over every row of the frame, not GX's sample).
    column: str | None = None
    value_set: tuple[str, ...] = ()


@dataclass(frozen=True)
class Frame:
    """A DataFrame the checks of one layer read, and the column that identifies its records;
    ``order_by`` orders its rows, and so the record ids an alert names first."""

    name: str
    layer: str
    id_column: str
    sql: str
    order_by: str = ""


def _quiet_gx() -> None:
    """Before Great Expectations is imported (in this module's functions only): its INFO lines
    (about 200 at its import, "Skipping registering function ...") and the warning of the pyspark it
    imports stay out of the audit task's log."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    quiet_pyspark_pandas_warning()


def _gxe() -> Any:
    _quiet_gx()
    import great_expectations.expectations as gxe

    return gxe


RECENT = "recent_"  # prefix of a recent frame's name; suffix "_recent" of its checks' names


def recent_twin(check: Check, window: Window) -> Check:
    """The same threshold check over the rows of the recent window."""
    return replace(check, name=f"{check.name}_recent", frame=f"{RECENT}{check.frame}", scope=window.label,
                   description=f"{check.description}, over the recent window")


def checks(q: QualitySettings, window: Window | None = None) -> list[Check]:
    """Every check; with ``window``, each threshold check also as its recent twin."""
    gxe = _gxe()
    touchpoint_types = tuple(sorted(set(WEB_TOUCHPOINT_TYPES) | set(q.task_types)))

    def mostly_kw(mostly: float | None) -> dict[str, float]:
        return {} if mostly is None else {"mostly": mostly}

    def not_null(column: str) -> Callable[[float | None], Any]:
        return lambda mostly: gxe.ExpectColumnValuesToNotBeNull(column=column, **mostly_kw(mostly))

    def in_set(column: str, values: list[str] | tuple[str, ...]) -> Callable[[float | None], Any]:
        return lambda mostly: gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(values),
                                                              **mostly_kw(mostly))

    def typed(column: str, types: list[str]) -> Callable[[float | None], Any]:
        return lambda mostly: gxe.ExpectColumnValuesToBeInTypeList(column=column, type_list=types)

    all_time = [
        # raw lake: what ingestion wrote (the newest rows of each dataset)
        Check("web_event_id_present", "raw", "raw_web_events", not_null("event_id"), "every web event has an id"),
        Check("web_bizible_id_present", "raw", "raw_web_events", not_null("bizible_id"),
              "every web event has a BizibleId"),
        Check("web_occurred_at_timestamp", "raw", "raw_web_events", typed("occurred_at", TIMESTAMP_TYPES),
              "occurred_at is a timestamp"),
        Check("web_occurred_at_present", "raw", "raw_web_events", not_null("occurred_at"),
              "every web event has a time"),
        Check("web_event_type_known", "raw", "raw_web_events", in_set("event_type", EVENT_TYPES),
              f"event_type is one of {', '.join(EVENT_TYPES)}"),
        Check("task_id_present", "raw", "raw_salesforce_task", not_null("Id"), "every Task version has an Id"),
        Check("task_modstamp_present", "raw", "raw_salesforce_task", not_null("SystemModstamp"),
              "every Task version has a SystemModstamp"),
        Check("task_created_date_timestamp", "raw", "raw_salesforce_task", typed("CreatedDate", TIMESTAMP_TYPES),
              "CreatedDate is a timestamp"),
        # staging
        Check("call_bizible_id_population", "staging", "call_tasks", not_null("bizible_id_given"),
              "call Tasks carry a BizibleId", "call_bizible_id_population", noun="calls", fails="lack a BizibleId"),
        Check("call_bizible_id_format", "staging", "call_tasks_with_bizible_id",
              in_set("bizible_id_status", ("valid",)),
              "a call Task's BizibleId is 32 hex characters after normalisation", "call_bizible_id_format",
              noun="calls with a BizibleId", fails="have a malformed one"),
        Check("call_task_type_population", "staging", "call_tasks", not_null("task_type_clean"),
              "call Tasks have a Type", "call_task_type_population", noun="calls", fails="lack a Type"),
        Check("call_time_present", "staging", "call_tasks", not_null("call_at"),
              "every call has a call time (timestamps without an offset are quarantined at ingestion)"),
        Check("call_time_timestamp", "staging", "call_tasks", typed("call_at", TIMESTAMP_TYPES),
              "the call time is a timestamp (UTC)"),
        Check("session_landing_page_population", "staging", "sessions", not_null("landing_page"),
              "sessions have a landing page", "session_landing_page_population", noun="sessions",
              fails="lack a landing page"),
        Check("session_source_present", "staging", "sessions", not_null("touchpoint_source"),
              "every session has a touchpoint source"),
        Check("session_channel_present", "staging", "sessions", not_null("marketing_channel"),
              "every session has a marketing channel"),
        # marts
        Check("touchpoint_type_present", "marts", "touchpoints", not_null("touchpoint_type"),
              "every touchpoint has a type"),
        # A Type outside the list is data (it becomes the touchpoint type as it is), never an error.
        Check("touchpoint_type_known", "marts", "touchpoints", in_set("touchpoint_type", touchpoint_types),
              "touchpoint types are Web Visit, Web Form or a Task.Type listed in CALLTRAIL_DQ_TASK_TYPES "
              "(add your org's own Types there; others are published as they are)",
              max_severity=WARN, column="touchpoint_type", value_set=touchpoint_types),
        Check("touchpoint_position_present", "marts", "touchpoints", not_null("touchpoint_position"),
              "every touchpoint has a journey position"),
        Check("touchpoint_position_known", "marts", "touchpoints", in_set("touchpoint_position", TOUCHPOINT_POSITIONS),
              "positions are FT, LC, Post LC or their combinations"),
        Check("touchpoint_match_status_known", "marts", "touchpoints", in_set("match_status", MATCH_STATUSES),
              f"match_status is one of {', '.join(MATCH_STATUSES)}"),
        Check("touchpoint_channel_present", "marts", "touchpoints", not_null("marketing_channel"),
              "no touchpoint without a channel"),
        Check("touchpoint_source_present", "marts", "touchpoints", not_null("touchpoint_source"),
              "every touchpoint has a source"),
        Check("touchpoint_landing_page_population", "marts", "web_touchpoints", not_null("landing_page"),
              "web touchpoints have a landing page", "touchpoint_landing_page_population", noun="web touchpoints",
              fails="lack a landing page"),
        # people and attribution
        Check("touchpoint_person_present", "marts", "identified_touchpoints", not_null("person_id"),
              "every touchpoint of a BizibleId linked to a person (int_person_links) belongs to a person"),
        Check("attribution_credits_sum_to_one", "marts", "attribution_sums", in_set("credit_sum", (EXACTLY_ONE,)),
              "per opportunity and model, the credits are non-negative and sum to exactly 1"),
        Check("opportunity_people_population", "marts", "opportunities_with_amount", not_null("people_found"),
              "opportunities with an amount have people (contact roles, or their Account's Contacts)",
              "opportunity_people_population", noun="opportunities with an amount", fails="have no people"),
    ]
    if window is None:
        return all_time
    return all_time + [recent_twin(c, window) for c in all_time if c.threshold]


def warehouse_frames(schema: str, window: Window | None = None) -> list[Frame]:
    """The staging and marts frames, read from the dbt build (``schema``) before it is published;
    with ``window``, also the recent frames the threshold checks' twins read."""
    # The Tasks newest-loaded first: an alert names the calls whose latest version came last, which
    # are what changed when a vendor stops writing BizibleIds.
    newest_tasks = "loaded_at desc, task_id"
    frames = [
        Frame("call_tasks", "staging", "task_id",
              "select task_id, bizible_id_status, task_type_clean, call_at, loaded_at, "
              "case when bizible_id_status <> 'missing' then bizible_id_raw end as bizible_id_given "
              f"from {schema}.stg_salesforce__tasks where is_call", newest_tasks),
        Frame("call_tasks_with_bizible_id", "staging", "task_id",
              f"select task_id, bizible_id_status, call_at, loaded_at from {schema}.stg_salesforce__tasks "
              "where is_call and bizible_id_status <> 'missing'", newest_tasks),
        Frame("sessions", "staging", "session_id",
              "select session_id, landing_page, touchpoint_source, marketing_channel, session_start_at "
              f"from {schema}.int_sessions"),
        Frame("touchpoints", "marts", "touchpoint_id",
              "select touchpoint_id, touchpoint_type, touchpoint_position, match_status, marketing_channel, "
              f"touchpoint_source from {schema}.fct_touchpoints"),
        Frame("web_touchpoints", "marts", "touchpoint_id",
              f"select touchpoint_id, landing_page, touchpoint_at from {schema}.fct_touchpoints "
              "where session_id is not null"),
        Frame("identified_touchpoints", "marts", "touchpoint_id",
              f"select touchpoint_id, person_id from {schema}.fct_touchpoints "
              f"where bizible_id in (select bizible_id from {schema}.int_person_links)"),
        # One row per opportunity and model; credit_sum names a sum other than exactly 1 (or a
        # negative credit) by its value.
        Frame("attribution_sums", "marts", "opportunity_model",
              f"select opportunity_id || ' ' || model as opportunity_model, "
              f"case when sum(credit) = 1 and min(credit) >= 0 then '{EXACTLY_ONE}' "
              "else 'sum ' || cast(sum(credit) as varchar(64)) || ', min ' || cast(min(credit) as varchar(64)) end as credit_sum "
              f"from {schema}.fct_attribution group by opportunity_id, model"),
        Frame("opportunities_with_amount", "marts", "opportunity_id",
              "select o.opportunity_id, o.created_at, "
              "case when u.reason = 'no_people' then null else o.opportunity_id end as people_found "
              f"from {schema}.stg_salesforce__opportunities as o "
              f"left join {schema}.dq_opportunities_unattributed as u on u.opportunity_id = o.opportunity_id "
              "where o.amount is not null"),
    ]
    if window is None:
        return frames
    # Each recent frame is its frame's rows whose own time is in the window.
    times = {"call_tasks": "call_at", "call_tasks_with_bizible_id": "call_at", "sessions": "session_start_at",
             "web_touchpoints": "touchpoint_at", "opportunities_with_amount": "created_at"}
    by_name = {f.name: f for f in frames}
    for name, column in times.items():
        f = by_name[name]
        frames.append(Frame(f"{RECENT}{name}", f.layer, f.id_column,
                            f"select * from ({f.sql}) as rows_in_scope where {window.contains(column)}",
                            f.order_by))
    return frames


def raw_frames(lake_dir: Path, max_rows: int) -> list[Frame]:
    """The newest partitions of each lake dataset, up to ``max_rows`` rows each."""
    import pyarrow.parquet as pq

    from calltrail.lake.convert import parquet_list

    def newest(pattern: str) -> list[Path]:
        files = sorted(lake_dir.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
        chosen, rows = [], 0
        for f in files:
            if rows >= max_rows:
                break
            chosen.append(f)
            rows += pq.read_metadata(f).num_rows
        return chosen

    frames = []
    for name, pattern, id_column, columns in (
        ("raw_web_events", WEB_EVENTS_GLOB, "event_id",
         "event_id, bizible_id, event_type, occurred_at"),
        ("raw_salesforce_task", SALESFORCE_TASK_GLOB, "Id", "Id, SystemModstamp, CreatedDate"),
    ):
        files = newest(pattern)
        sql = (f"select {columns} from read_parquet({parquet_list(files)}, union_by_name = true) "
               f"limit {max_rows}") if files else ""
        frames.append(Frame(name, "raw", id_column, sql))
    return frames


def load_frames(con: Any, frames: list[Frame]) -> dict[str, Any]:
    """Run each frame's query on ``con`` (DuckDB) into pandas; a frame without data is None."""
    return {f.name: (con.execute(f.sql + (f" order by {f.order_by}" if f.order_by else "")).df() if f.sql else None)
            for f in frames}


def _percent(value: float) -> str:
    return f"{value:.4g}%"


def _outcome(check: Check, result: Any, q: QualitySettings, id_column: str) -> Outcome:
    res = result.result or {}
    cfg = result.expectation_config
    total = int(res.get("element_count") or 0)
    bad = int(res.get("unexpected_count") or 0)
    ids = [str(row[id_column]) for row in (res.get("partial_unexpected_index_list") or [])
           if isinstance(row, dict) and row.get(id_column) is not None][: q.alerts.max_record_ids]
    values = sorted({str(v) for v in (res.get("partial_unexpected_list") or []) if isinstance(v, str)})[:5]
    if cfg.type == "expect_column_values_to_be_in_type_list":
        observed = f"type {res.get('observed_value')}"
    elif check.noun:
        observed = (f"{check.scope}: {_percent(100.0 * bad / total if total else 0.0)} of {total:,} {check.noun} "
                    f"{check.fails} ({bad:,})")
        if values:
            observed += f"; values {values}"
    else:
        observed = f"{bad:,} of {total:,} rows fail ({_percent(100.0 * bad / total if total else 0.0)})"
        if values:
            observed += f"; values {values}"
    if check.threshold:
        t = q.thresholds[check.threshold]
        passing = 1.0 - (bad / total) if total else 1.0
        severity = OK if result.success else (ERROR if passing < t.error else WARN)
        expected = (f"at least {_percent(100 * t.warn)} of rows pass (below: warn), "
                    f"at least {_percent(100 * t.error)} (below: error)")
    else:
        severity = OK if result.success else check.max_severity
        expected = "every row passes" if check.max_severity == ERROR else "every row passes (below: warn, never error)"
    return Outcome(check=check.name, layer=check.layer, severity=severity, observed=observed,
                   expected=f"{check.description}: {expected}", record_ids=ids, expectation=cfg.type)


class DataDocs:
    """One ephemeral GX context whose Data Docs site is ``folder`` (static HTML)."""

    SITE = "calltrail"

    def __init__(self, folder: Path) -> None:
        _quiet_gx()
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)  # no tqdm bars in task logs
        self.context.add_data_docs_site(site_name=self.SITE, site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(folder)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
        self.source = self.context.data_sources.add_pandas("calltrail")

    def validate(self, frame: Frame, data: Any, layer_checks: list[Check], q: QualitySettings,
                 run_name: str) -> list[Outcome]:
        import great_expectations as gx

        name = f"{frame.layer}.{frame.name}"
        asset = self.source.add_dataframe_asset(name=name)
        batch = asset.add_batch_definition_whole_dataframe(f"{name}.all")
        suite = self.context.suites.add(gx.ExpectationSuite(name=f"calltrail.{name}"))
        for check in layer_checks:
            mostly = q.thresholds[check.threshold].warn if check.threshold else None
            expectation = check.expectation(mostly)
            expectation.notes = f"calltrail check `{check.name}` ({check.layer}): {check.description}"
            expectation.meta = {"check": check.name, "layer": check.layer}
            expectation.severity = "warning" if check.threshold or check.max_severity != ERROR else "critical"
            suite.add_expectation(expectation)
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite))
        checkpoint = self.context.checkpoints.add(gx.Checkpoint(
            name=f"calltrail.{name}", validation_definitions=[definition],
            result_format={"result_format": "SUMMARY", "unexpected_index_column_names": [frame.id_column],
                           "partial_unexpected_count": max(q.alerts.max_record_ids, 20)}))
        run = checkpoint.run(batch_parameters={"dataframe": data}, run_id=gx.RunIdentifier(run_name=run_name))
        by_name = {c.name: c for c in layer_checks}
        outcomes = []
        for validation in run.run_results.values():
            for result in validation.results:
                outcomes.append(_outcome(by_name[result.expectation_config.meta["check"]], result, q,
                                         frame.id_column))
        return outcomes

    def build(self) -> None:
        """Write the site once for every validation of this context: an UpdateDataDocsAction per
        checkpoint rebuilt the suites' pages and the index after each one (4 of the audit's 6 s on
        the demo data)."""
        self.context.build_data_docs(site_names=[self.SITE])
        localize(self.folder)  # the pages just written load their CSS and JavaScript from the site, not CDNs

    @property
    def index(self) -> Path:
        return self.folder / "index.html"


def _values_found(check: Check, data: Any, outcome: Outcome) -> Outcome:
    """Name every value outside ``check.value_set`` with its count, over all rows of ``data``."""
    column = data[check.column]
    counts = column[column.notna() & ~column.isin(list(check.value_set))].value_counts()
    if counts.empty:
        return outcome
    shown = ", ".join(f"{value!r} ({n:,})" for value, n in counts.head(20).items())
    more = f" and {len(counts) - 20} more" if len(counts) > 20 else ""
    outcome.observed = (f"{int(counts.sum()):,} of {len(column):,} rows have a {check.column} outside the expected "
                        f"list: {shown}{more}")
    if check.max_severity != ERROR:
        outcome.observed += "; they are published as they are"
    return outcome


def thin_windows(frames: list[Frame], data: dict[str, Any], window: Window, q: QualitySettings
                 ) -> tuple[list[Frame], list[Outcome]]:
    """The frames to validate, without the recent ones that hold fewer than ``window.min_rows`` rows,
    and a not-judged outcome (ok) for each check of those: a quiet week is reported, not failed."""
    all_checks = checks(q, window)
    keep, outcomes = [], []
    for frame in frames:
        rows = None if data.get(frame.name) is None else len(data[frame.name])
        if not frame.name.startswith(RECENT) or rows is None or rows >= window.min_rows:
            keep.append(frame)
            continue
        for check in (c for c in all_checks if c.frame == frame.name):
            outcomes.append(Outcome(
                check=check.name, layer=check.layer, severity=OK,
                observed=(f"{window.label}: {rows:,} {check.noun}, fewer than the {window.min_rows:,} needed to "
                          "judge (CALLTRAIL_DQ_WINDOW_MIN_ROWS): not judged"),
                expected=f"{check.description}: judged over at least {window.min_rows:,} rows",
                expectation="window"))
            log.info("%s", outcomes[-1].describe())
    return keep, outcomes


def validate_frames(frames: list[Frame], data: dict[str, Any], q: QualitySettings, docs_dir: Path,
                    run_name: str, window: Window | None = None) -> list[Outcome]:
    """Validate every frame that has data with its checks; write the Data Docs; log each outcome."""
    docs = DataDocs(docs_dir)
    all_checks = checks(q, window)
    by_name = {c.name: c for c in all_checks}
    outcomes: list[Outcome] = []
    for frame in frames:
        frame_checks = [c for c in all_checks if c.frame == frame.name]
        if data.get(frame.name) is None:
            log.warning("%s: no data in the lake yet, %d check(s) skipped", frame.name, len(frame_checks))
            continue
        found = docs.validate(frame, data[frame.name], frame_checks, q, run_name)
        outcomes += [_values_found(by_name[o.check], data[frame.name], o) if by_name[o.check].column and o.failed
                     else o for o in found]
    docs.build()
    for o in outcomes:
        (log.info if o.severity == OK else log.warning if o.severity == WARN else log.error)("%s", o.describe())
    log.info("Great Expectations Data Docs: %s", docs.index)
    return outcomes
