"""Quarantined rows are news: more than ``CALLTRAIL_QUARANTINE_ALERT_ROWS`` in one ingestion task
run are an outcome at ``warn`` (the good rows still load) that names each source file, its count and
its reasons, and where the quarantine files are. The ingestion tasks alert it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from calltrail.quality.outcome import OK, WARN, Outcome

CHECK = "quarantined_rows"


def _by_file(files: Iterable[Mapping[str, Any]]) -> list[tuple[str, int, dict[str, int]]]:
    out = []
    for f in files:
        rows = int(f.get("rows_quarantined") or 0)
        if rows:
            name = str(f.get("file") or f.get("source") or "?")
            out.append((name, rows, dict(f.get("quarantined_by_reason") or {})))
    return sorted(out, key=lambda item: (-item[1], item[0]))


def quarantine_outcome(dataset: str, files: Iterable[Mapping[str, Any]], threshold: int,
                       quarantine_dir: str) -> Outcome:
    """``warn`` when this run quarantined more than ``threshold`` rows of ``dataset``, else ``ok``."""
    by_file = _by_file(files)
    total = sum(rows for _, rows, _ in by_file)
    parts = [f"{name}: {rows:,} ({', '.join(f'{reason} {n:,}' for reason, n in sorted(reasons.items()))})"
             for name, rows, reasons in by_file]
    observed = (f"{total:,} row(s) of {dataset} quarantined in this run"
                + (f": {'; '.join(parts)}; kept in {quarantine_dir}" if parts else ""))
    return Outcome(check=f"{CHECK}_{dataset.replace('/source=', '_').replace('/', '_')}", layer="ingestion",
                   severity=WARN if total > threshold else OK, observed=observed,
                   expected=f"at most {threshold:,} quarantined row(s) per ingestion run "
                            "(CALLTRAIL_QUARANTINE_ALERT_ROWS)",
                   expectation="quarantine")
