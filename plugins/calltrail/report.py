"""What is in the lake, for people: rows per source, quarantined rows with reasons, locations."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calltrail.lake.partitions import QUARANTINE, SALESFORCE_TASK, WEB_EVENTS
from calltrail.settings import Settings


@dataclass
class LakeSummary:
    web_events: int = 0
    web_files: int = 0
    task_versions: int = 0
    tasks: int = 0
    deleted_tasks: int = 0
    task_partitions: Counter[str] = field(default_factory=Counter)
    quarantined: dict[str, Counter[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"web_events": self.web_events, "web_files": self.web_files, "task_versions": self.task_versions,
                "tasks": self.tasks, "deleted_tasks": self.deleted_tasks,
                "task_partitions": dict(self.task_partitions),
                "quarantined": {k: dict(v) for k, v in self.quarantined.items()}}


def _parquet_list(files: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in files) + "]"


def summarise(lake_dir: Path) -> LakeSummary:
    import duckdb

    summary = LakeSummary()
    con = duckdb.connect()
    web = sorted((lake_dir / WEB_EVENTS).glob("file=*/events.parquet"))
    if web:
        summary.web_files = len(web)
        summary.web_events = con.execute(f"select count(*) from read_parquet({_parquet_list(web)})").fetchone()[0]
    tasks = sorted((lake_dir / SALESFORCE_TASK).glob("source=*/*/tasks.parquet"))
    if tasks:
        for p in tasks:
            summary.task_partitions[p.parent.parent.name.removeprefix("source=")] += 1
        summary.task_versions, summary.tasks = con.execute(
            f"select count(*), count(distinct Id) from read_parquet({_parquet_list(tasks)}, union_by_name = true)"
        ).fetchone()
        summary.deleted_tasks = con.execute(
            f"""select count(*) from (
                  select Id, arg_max(IsDeleted, SystemModstamp) as deleted
                  from read_parquet({_parquet_list(tasks)}, union_by_name = true) group by Id) where deleted"""
        ).fetchone()[0]
    for dataset in (WEB_EVENTS, SALESFORCE_TASK):
        reasons: Counter[str] = Counter()
        for q in (lake_dir / QUARANTINE / dataset).rglob("*.jsonl"):
            with q.open() as fh:
                for line in fh:
                    reasons[json.loads(line)["reason"]] += 1
        summary.quarantined[dataset] = reasons
    return summary


def render(settings: Settings, summary: LakeSummary) -> str:
    lines = [
        "",
        "calltrail: what is in the lake",
        "==============================",
        f"  web events          {summary.web_events:>10,}  from {summary.web_files} file(s)",
        f"  Salesforce Tasks    {summary.tasks:>10,}  ({summary.task_versions:,} versions, "
        f"{summary.deleted_tasks:,} deleted; partitions: "
        + (", ".join(f"{k} {v}" for k, v in sorted(summary.task_partitions.items())) or "none") + ")",
        "",
        "  quarantined rows (kept with their reasons, never dropped):",
    ]
    any_q = False
    for dataset, reasons in summary.quarantined.items():
        for reason, count in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"    {dataset:<17} {count:>8,}  {reason}")
            any_q = True
    if not any_q:
        lines.append("    none")
    lines += [
        "",
        "  where things are:",
        f"    landing     {settings.landing_dir}",
        f"    lake        {settings.lake_dir}",
        f"    quarantine  {settings.lake_dir / QUARANTINE}",
        f"    warehouse   {settings.warehouse}",
        f"    airflow     {settings.airflow_home}",
        "",
    ]
    return "\n".join(lines)
