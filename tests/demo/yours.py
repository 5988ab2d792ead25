"""A data set of "your own": the demo generator with another seed, written elsewhere and copied into
the landing folder under names a user's export would have. Its Task and event ids are the demo's
(the generator numbers them from 1), its BizibleIds are not: rows are told apart by BizibleId."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from calltrail.demo.generate import generate
from calltrail.lake.convert import parquet_list
from calltrail.settings import Settings

RENAMES = {"demo-tasks.jsonl": "tasks-export-2026-11.jsonl", "demo-task-updates.csv": "task-updates-2026-11.csv"}


@dataclass
class YourData:
    files: list[Path]  # as copied into the landing folder
    bizible_ids: set[str]  # every valid BizibleId of the web events
    truth: dict


def bizible_ids_of(web_files: list[Path]) -> set[str]:
    """The valid BizibleIds of the events (a row with an invalid one is quarantined, not loaded)."""
    ids = set()
    for path in web_files:
        for line in path.read_text().splitlines():
            bid = json.loads(line).get("bizible_id")
            if bid and re.fullmatch(r"[0-9a-f]{32}", normalise(bid)):
                ids.add(bid)
    return ids


def write_your_files(settings: Settings, scratch: Path, *, visitors: int, seed: int = 11) -> YourData:
    generate(scratch, visitors=visitors, seed=seed)
    files = []
    for n, src in enumerate(sorted((scratch / "web_events").glob("*.jsonl")), start=1):
        settings.web_landing_dir.mkdir(parents=True, exist_ok=True)
        files.append(Path(shutil.copy(src, settings.web_landing_dir / f"site-events-2026-11-{n:02d}.jsonl")))
    settings.task_landing_dir.mkdir(parents=True, exist_ok=True)
    for name, new in RENAMES.items():
        files.append(Path(shutil.copy(scratch / "salesforce" / "task" / name, settings.task_landing_dir / new)))
    truth = json.loads((scratch / "_demo" / "truth.json").read_text())
    return YourData(files, bizible_ids_of(sorted((scratch / "web_events").glob("*.jsonl"))), truth)


def normalise(bizible_id: str) -> str:
    """Trim, lower-case, drop hyphens and braces (the rule of the spec, written again here)."""
    return re.sub(r"[-{}]", "", bizible_id.strip().lower())


def lake_bizible_ids(lake_dir: Path) -> tuple[set[str], set[str]]:
    """(web event BizibleIds, Task BizibleIds) of every partition in the lake's active data."""
    import duckdb

    con = duckdb.connect()
    try:
        web = sorted(lake_dir.glob("web_events/file=*/*.parquet"))
        tasks = sorted(lake_dir.glob("salesforce_task/source=*/*/tasks.parquet"))
        web_ids = {r[0] for r in con.execute(f"select distinct bizible_id from read_parquet({parquet_list(web)})")
                   .fetchall()} if web else set()
        task_ids = {normalise(r[0]) for r in con.execute(
            f"select distinct bizible2__BizibleId__c from read_parquet({parquet_list(tasks)}, union_by_name = true)"
        ).fetchall() if r[0] and r[0].strip()} if tasks else set()
        return web_ids, task_ids
    finally:
        con.close()
