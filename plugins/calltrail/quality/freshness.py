"""dbt source freshness on both lake sources, as check outcomes.

Each source's ``loaded_at_field`` is ``_loaded_at``, the time ingestion wrote the row into the
lake, so a source is stale when nothing new has arrived: the call-tracking vendor stopped writing
Tasks, or web tracking broke. Warn and error ages are ``CALLTRAIL_FRESHNESS_*_HOURS``.
"""

from __future__ import annotations

import json
import logging
import re
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


def _expected(name: str, warn: dict, error: dict) -> str:
    return (f"rows of source {name} loaded within {warn.get('count')} {warn.get('period')}s "
            f"(warn) and {error.get('count')} {error.get('period')}s (error)")


def _outcome(name: str, severity: str, observed: str, criteria: dict) -> Outcome:
    return Outcome(check=f"freshness_{name}", layer="freshness", severity=severity, observed=observed,
                   expected=_expected(name, criteria.get("warn_after") or {}, criteria.get("error_after") or {}),
                   expectation="dbt source freshness")


def _not_measured(name: str, error_text: str, lake_schema: str) -> str:
    text = error_text.lower()
    if "no files found" in text:  # DuckDB reads the lake's files in place
        return f"no rows loaded yet: the lake has no files of source {name}"
    if f'relation "{lake_schema}.{name}" does not exist' in text or "table_or_view_not_found" in text:
        # PostgreSQL and Spark: the table (the view) of a dataset is made once it has a partition
        return f"no rows loaded yet: the warehouse has no table {lake_schema}.{name}, nothing of it is loaded"
    # dbt's message: "Runtime Error in source NAME (FILE)" above the database's own words
    said = [line.strip() for line in error_text.splitlines() if line.strip()]
    if len(said) > 1 and re.fullmatch(r"[\w ]*Error in source \S+( \(.*\))?", said[0]):
        said = said[1:]
    return f"freshness could not be measured: {said[0] if said else 'see the task log'}"


def outcomes_from(sources_json: dict, lake_schema: str) -> list[Outcome]:
    outcomes = []
    for r in sources_json.get("results", []):
        name = r["unique_id"].split(".")[-1]
        status = r.get("status", "runtime error")
        if status == "runtime error":
            observed = _not_measured(name, str(r.get("error") or r.get("message") or ""), lake_schema)
        elif _never_loaded(r.get("max_loaded_at")):
            observed = f"no rows loaded yet: source {name} is empty in the lake"
        else:
            observed = (f"newest row loaded {_age(r.get('max_loaded_at_time_ago_in_s'))} ago "
                        f"(at {r.get('max_loaded_at')})")
        outcomes.append(_outcome(name, SEVERITY.get(status, ERROR), observed, r.get("criteria") or {}))
    return outcomes


def declared_freshness(manifest: Path) -> dict[str, dict]:
    """Unique id -> freshness criteria of every source that declares a freshness (dbt's manifest)."""
    sources = json.loads(manifest.read_text()).get("sources", {})
    return {uid: node["freshness"] for uid, node in sources.items()
            if any(((node.get("freshness") or {}).get(k) or {}).get("count") is not None
                   for k in ("warn_after", "error_after"))}


def unmeasured(declared: dict[str, dict], measured: set[str], results: dict[str, dict],
               lake_schema: str) -> list[Outcome]:
    """An error for each declared source that dbt's ``sources.json`` leaves out. dbt writes there
    only the sources it measured; one it could not measure (no lake file yet: a runtime error) is
    missing, and would otherwise pass unseen. Its reason comes from dbt's result when dbt ran in
    this process (``results``)."""
    outcomes = []
    for uid, criteria in declared.items():
        name = uid.split(".")[-1]
        if f"freshness_{name}" in measured:
            continue
        message = (results.get(uid) or {}).get("message") or ""
        observed = (_not_measured(name, message, lake_schema) if message
                    else "freshness could not be measured: dbt gave no result for it (see the task log)")
        outcomes.append(_outcome(name, ERROR, observed, criteria))
    return outcomes


def check_freshness(settings: Settings, *, in_process: bool = False) -> list[Outcome]:
    from calltrail.transform.dbt import source_freshness

    rc, sources, results = source_freshness(settings, in_process=in_process)
    if sources is None:
        return [Outcome(check="freshness", layer="freshness", severity=ERROR,
                        observed=f"dbt source freshness exited {rc} without results (see the task log)",
                        expected="dbt source freshness runs", expectation="dbt source freshness")]
    outcomes = outcomes_from(sources, settings.lake_schema)
    outcomes += unmeasured(declared_freshness(settings.dbt_manifest), {o.check for o in outcomes}, results,
                           settings.lake_schema)
    for o in outcomes:
        (log.info if o.severity == OK else log.warning)("%s", o.describe())
    return outcomes
