"""The lake's layout, in one place: its datasets, their partitions and files, and the globs that
read them (Python here; dbt's sources and the benchmark's floor query through the same values).

```
<lake>/web_events/file=<hash>/events.parquet
<lake>/salesforce_task/source=api/interval=<from>_<until>/tasks.parquet
<lake>/salesforce_task/source=file/file=<hash>/tasks.parquet
<lake>/salesforce_task/source=reconciliation/run=<time>/tasks.parquet
<lake>/salesforce_lead/...                        the same three sources, leads.parquet
<lake>/salesforce_contact/...                     contacts.parquet
<lake>/salesforce_opportunity/...                 opportunities.parquet
<lake>/salesforce_opportunity_contact_role/...    opportunity_contact_roles.parquet
<lake>/quarantine/<dataset>/<source>.<hash>.jsonl
<lake>/.tmp/                       scratch folders of partitions being written
```

The read globs are the dbt vars ``calltrail__lake_web_events_glob`` and
``calltrail__lake_salesforce_<object>_glob`` (``dbt_project/dbt_project.yml``): dbt's sources read them
there, and the names below are taken from them, so the writers and the readers cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from calltrail.dbt_project import project_var

WEB_EVENTS_GLOB: str = project_var("calltrail__lake_web_events_glob")
SALESFORCE_TASK_GLOB: str = project_var("calltrail__lake_salesforce_task_glob")

WEB_EVENTS = WEB_EVENTS_GLOB.split("/")[0]  # web_events
WEB_EVENTS_FILE = WEB_EVENTS_GLOB.split("/")[-1]  # events.parquet
SALESFORCE_TASK = SALESFORCE_TASK_GLOB.split("/")[0]  # salesforce_task
SALESFORCE_TASK_FILE = SALESFORCE_TASK_GLOB.split("/")[-1]  # tasks.parquet
TASK_SOURCES = ("api", "file", "reconciliation")  # salesforce_<object>/source=<one of these>/
QUARANTINE = "quarantine"
SCRATCH = ".tmp"


@dataclass(frozen=True)
class SalesforceDataset:
    """Where one Salesforce object lives in the lake: its dataset folder and its Parquet file name."""

    glob: str  # the dbt var's value, e.g. salesforce_lead/*/*/leads.parquet

    @property
    def name(self) -> str:  # salesforce_lead
        return self.glob.split("/")[0]

    @property
    def file(self) -> str:  # leads.parquet
        return self.glob.split("/")[-1]

    def source(self, source: str) -> str:
        """The dataset path of one source, e.g. ``salesforce_lead/source=api``."""
        if source not in TASK_SOURCES:
            raise ValueError(f"unknown Salesforce source {source!r}: one of {', '.join(TASK_SOURCES)}")
        return f"{self.name}/source={source}"

    def files(self, lake_dir: Path) -> list[Path]:
        """Every partition's Parquet file, whatever its source."""
        return sorted(lake_dir.glob(self.glob))


TASKS = SalesforceDataset(SALESFORCE_TASK_GLOB)
LEADS = SalesforceDataset(project_var("calltrail__lake_salesforce_lead_glob"))
CONTACTS = SalesforceDataset(project_var("calltrail__lake_salesforce_contact_glob"))
OPPORTUNITIES = SalesforceDataset(project_var("calltrail__lake_salesforce_opportunity_glob"))
OPPORTUNITY_CONTACT_ROLES = SalesforceDataset(project_var("calltrail__lake_salesforce_opportunity_contact_role_glob"))
SALESFORCE_DATASETS = (TASKS, LEADS, CONTACTS, OPPORTUNITIES, OPPORTUNITY_CONTACT_ROLES)


def datasets() -> dict[str, str]:
    """Every lake dataset and the read glob of its partition files."""
    return {WEB_EVENTS: WEB_EVENTS_GLOB, **{d.name: d.glob for d in SALESFORCE_DATASETS}}


def task_source(source: str) -> str:
    """The dataset path of one Task source, e.g. ``salesforce_task/source=api``."""
    return TASKS.source(source)


def web_event_files(lake_dir: Path) -> list[Path]:
    """Every web events partition's Parquet file."""
    return sorted(lake_dir.glob(WEB_EVENTS_GLOB))


def task_files(lake_dir: Path) -> list[Path]:
    """Every Task partition's Parquet file, whatever its source."""
    return sorted(lake_dir.glob(SALESFORCE_TASK_GLOB))


def quarantine_dir(lake_dir: Path, dataset: str) -> Path:
    return lake_dir / QUARANTINE / dataset
