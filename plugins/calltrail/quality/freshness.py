"""dbt source freshness on both lake sources, as check outcomes.

Each source's ``loaded_at_field`` is ``_loaded_at``, the time ingestion wrote the row into the
lake, so a source is stale when nothing new has arrived: the call-tracking vendor stopped writing
Tasks, or web tracking broke. Warn and error ages are ``CALLTRAIL_FRESHNESS_*_HOURS``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from calltrail.quality.outcome import ERROR, OK, WARN, Outcome
from calltrail.settings import Settings

log = logging.getLogger(__name__)

SEVERITY = {"pass": OK, "warn": WARN, "error": ERROR, "runtime error": ERROR}


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "unknown age"
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def _never_loaded(max_loaded_at: object) -> bool:
    """dbt reports an empty source (max(_loaded_at) is null) as loaded at 0001-01-01."""
    return max_loaded_at is None or str(max_loaded_at).lstrip().startswith(("0001-01-01", "1-01-01"))


def outcomes_from(sources_json: dict) -> list[Outcome]:
    outcomes = []
    for r in sources_json.get("results", []):
        name = r["unique_id"].split(".")[-1]
        status = r.get("status", "runtime error")
        criteria = r.get("criteria") or {}
        warn, error = criteria.get("warn_after") or {}, criteria.get("error_after") or {}
        error_text = str(r.get("error") or r.get("message") or "")
        if status == "runtime error" and "no files found" in error_text.lower():
            observed = f"no rows loaded yet: the lake has no files of source {name}"
        elif status == "runtime error":
            observed = f"freshness could not be measured: {error_text}"
        elif _never_loaded(r.get("max_loaded_at")):
            observed = f"no rows loaded yet: source {name} is empty in the lake"
        else:
            observed = (f"newest row loaded {_age(r.get('max_loaded_at_time_ago_in_s'))} ago "
                        f"(at {r.get('max_loaded_at')})")
        outcomes.append(Outcome(
            check=f"freshness_{name}", layer="freshness", severity=SEVERITY.get(status, ERROR),
            observed=observed,
            expected=(f"rows of source {name} loaded within {warn.get('count')} {warn.get('period')}s "
                      f"(warn) and {error.get('count')} {error.get('period')}s (error)"),
            expectation="dbt source freshness"))
    return outcomes


def check_freshness(settings: Settings, *, in_process: bool = False) -> list[Outcome]:
    from calltrail.transform.dbt import run_dbt

    with tempfile.TemporaryDirectory(prefix="calltrail-freshness-") as tmp:
        out = Path(tmp) / "sources.json"
        rc = run_dbt(settings, ["source", "freshness", "--output", str(out)], check=False, in_process=in_process)
        if not out.exists():
            return [Outcome(check="freshness", layer="freshness", severity=ERROR,
                            observed=f"dbt source freshness exited {rc} without results (see the task log)",
                            expected="dbt source freshness runs", expectation="dbt source freshness")]
        outcomes = outcomes_from(json.loads(out.read_text()))
    for o in outcomes:
        (log.info if o.severity == OK else log.warning)("%s", o.describe())
    return outcomes
