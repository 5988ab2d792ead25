"""Great Expectations checks that the fields calltrail relies on are populated.

GX Core 1.x with an ephemeral context and suites written here in Python. The data is read from
the warehouse into pandas DataFrames (GX's SQL route returns empty results on DuckDB). A failed
expectation raises :class:`DataQualityError` naming the expectation and the figures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calltrail.settings import QualitySettings

log = logging.getLogger(__name__)

TOUCHPOINT_POSITIONS = ("FT", "LC", "Post LC", "FT, LC", "FT, Post LC")
WEB_TOUCHPOINT_TYPES = ("Web Visit", "Web Form")


class DataQualityError(RuntimeError):
    """One or more expectations failed; the message lists each with its figures."""


@dataclass
class CheckResult:
    suite: str
    expectation: str
    column: str | None
    success: bool
    observed: dict[str, Any]
    expected: str

    def describe(self) -> str:
        figures = ", ".join(f"{k}={v}" for k, v in self.observed.items())
        return f"{self.suite}: {self.expectation}({self.column}) expected {self.expected}; observed {figures}"


@dataclass
class ValidationReport:
    results: list[CheckResult] = field(default_factory=list)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success]

    def as_dict(self) -> dict[str, Any]:
        return {"checks": len(self.results), "failed": len(self.failures),
                "failures": [r.describe() for r in self.failures]}


def suites(q: QualitySettings) -> dict[str, list[Any]]:
    """The expectation suites, by the query that feeds them."""
    import great_expectations.expectations as gxe

    return {
        "call_tasks": [
            gxe.ExpectColumnValuesToNotBeNull(column="bizible_id", mostly=q.bizible_id_mostly),
            gxe.ExpectColumnValuesToNotBeNull(column="task_type_clean", mostly=q.task_type_mostly),
        ],
        "sessions": [
            gxe.ExpectColumnValuesToNotBeNull(column="landing_page", mostly=q.landing_page_mostly),
            gxe.ExpectColumnValuesToNotBeNull(column="touchpoint_source"),
            gxe.ExpectColumnValuesToNotBeNull(column="marketing_channel"),
        ],
        "touchpoints": [
            gxe.ExpectColumnValuesToNotBeNull(column="touchpoint_type"),
            gxe.ExpectColumnValuesToBeInSet(column="touchpoint_type",
                                           value_set=sorted(set(WEB_TOUCHPOINT_TYPES) | set(q.task_types))),
            gxe.ExpectColumnValuesToNotBeNull(column="touchpoint_position"),
            gxe.ExpectColumnValuesToBeInSet(column="touchpoint_position", value_set=list(TOUCHPOINT_POSITIONS)),
            gxe.ExpectColumnValuesToNotBeNull(column="marketing_channel"),
        ],
    }


QUERIES = {
    "call_tasks": "select task_id, bizible_id, bizible_id_raw, task_type_clean from stg_salesforce__tasks where is_call",
    "sessions": "select session_id, landing_page, touchpoint_source, marketing_channel from int_sessions",
    "touchpoints": "select touchpoint_id, touchpoint_type, touchpoint_position, marketing_channel from fct_touchpoints",
}


def load_frames(warehouse: Path) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {name: con.execute(sql).df() for name, sql in QUERIES.items()}
    finally:
        con.close()


def _expected_text(config: dict[str, Any]) -> str:
    kwargs = {k: v for k, v in config.items() if k not in ("column", "batch_id")}
    if "value_set" in kwargs:
        kwargs["value_set"] = "{" + ", ".join(map(str, kwargs["value_set"])) + "}"
    return ", ".join(f"{k}={v}" for k, v in kwargs.items()) or "all rows"


def validate_frames(frames: dict[str, Any], q: QualitySettings) -> ValidationReport:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # no tqdm bars in task logs
    source = context.data_sources.add_pandas("calltrail")
    report = ValidationReport()
    for name, expectations in suites(q).items():
        asset = source.add_dataframe_asset(name=name)
        batch = asset.add_batch_definition_whole_dataframe(f"{name}_all").get_batch(
            batch_parameters={"dataframe": frames[name]})
        suite = context.suites.add(gx.ExpectationSuite(name=f"calltrail_{name}"))
        for expectation in expectations:
            suite.add_expectation(expectation)
        outcome = batch.validate(suite, result_format="SUMMARY")
        for r in outcome.results:
            cfg = r.expectation_config
            res = r.result or {}
            observed = {k: res[k] for k in ("element_count", "unexpected_count") if k in res}
            if res.get("unexpected_percent") is not None:
                observed["unexpected_percent"] = round(float(res["unexpected_percent"]), 2)
            examples = [v for v in res.get("partial_unexpected_list") or [] if isinstance(v, str)]
            if examples:
                observed["examples"] = sorted(set(examples))[:5]
            report.results.append(CheckResult(
                suite=name, expectation=cfg.type, column=cfg.kwargs.get("column"), success=bool(r.success),
                observed=observed, expected=_expected_text(dict(cfg.kwargs))))
    for r in report.results:
        (log.info if r.success else log.error)("%s %s", "PASS" if r.success else "FAIL", r.describe())
    return report


def validate_warehouse(warehouse: Path, q: QualitySettings) -> ValidationReport:
    report = validate_frames(load_frames(warehouse), q)
    if report.failures:
        raise DataQualityError(
            f"{len(report.failures)} of {len(report.results)} expectations failed:\n"
            + "\n".join(f"- {r.describe()}" for r in report.failures)
        )
    return report
