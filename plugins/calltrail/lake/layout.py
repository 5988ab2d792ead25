"""The lake's layout, in one place: its datasets, their partitions and files, and the globs that
read them (Python here; dbt's sources and the benchmark's floor query through the same values).

```
<lake>/web_events/file=<hash>/events.parquet
<lake>/salesforce_task/source=api/interval=<from>_<until>/tasks.parquet
<lake>/salesforce_task/source=file/file=<hash>/tasks.parquet
<lake>/salesforce_task/source=reconciliation/run=<time>/tasks.parquet
<lake>/quarantine/<dataset>/<source>.<hash>.jsonl
<lake>/.tmp/                       scratch folders of partitions being written
```

The read globs are the dbt vars ``calltrail__lake_web_events_glob`` and
``calltrail__lake_salesforce_task_glob`` (``dbt_project/dbt_project.yml``): dbt's sources read them
there, and the names below are taken from them, so the writers and the readers cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path

from calltrail.dbt_project import project_var

WEB_EVENTS_GLOB: str = project_var("calltrail__lake_web_events_glob")
SALESFORCE_TASK_GLOB: str = project_var("calltrail__lake_salesforce_task_glob")

WEB_EVENTS = WEB_EVENTS_GLOB.split("/")[0]  # web_events
WEB_EVENTS_FILE = WEB_EVENTS_GLOB.split("/")[-1]  # events.parquet
SALESFORCE_TASK = SALESFORCE_TASK_GLOB.split("/")[0]  # salesforce_task
SALESFORCE_TASK_FILE = SALESFORCE_TASK_GLOB.split("/")[-1]  # tasks.parquet
TASK_SOURCES = ("api", "file", "reconciliation")  # salesforce_task/source=<one of these>/
QUARANTINE = "quarantine"
SCRATCH = ".tmp"


def task_source(source: str) -> str:
    """The dataset path of one Task source, e.g. ``salesforce_task/source=api``."""
    if source not in TASK_SOURCES:
        raise ValueError(f"unknown Task source {source!r}: one of {', '.join(TASK_SOURCES)}")
    return f"{SALESFORCE_TASK}/source={source}"


def web_event_files(lake_dir: Path) -> list[Path]:
    """Every web events partition's Parquet file."""
    return sorted(lake_dir.glob(WEB_EVENTS_GLOB))


def task_files(lake_dir: Path) -> list[Path]:
    """Every Task partition's Parquet file, whatever its source."""
    return sorted(lake_dir.glob(SALESFORCE_TASK_GLOB))


def quarantine_dir(lake_dir: Path, dataset: str) -> Path:
    return lake_dir / QUARANTINE / dataset
