"""Keep the demo data apart from your own data.

The demo is generated into the landing folder only while calltrail has no data of yours (no
Salesforce connection, no landing file of your own; ``CALLTRAIL_DEMO``). Once your data arrives,
:func:`remove_demo` takes out everything the demo left: its landing files, the lake partitions and
quarantine files made from them, and the warehouse (the marts and the trend history built on the
demo; all of it is rebuilt from the lake). Nothing made from your files or from the API is
touched: a lake partition is the demo's only when its manifest names a demo file.

While ``make airflow`` runs on the demo, the scheduler cannot clear the warehouse safely (a
transform may hold it), so :func:`refuse_to_mix` stops ingestion before it writes anything of yours
next to the demo, and says how to switch.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from calltrail.demo.crm import FILES as CRM_FILES
from calltrail.demo.generate import DEMO_FILES
from calltrail.lake.layout import QUARANTINE, SALESFORCE_DATASETS, SCRATCH, WEB_EVENTS
from calltrail.settings import Settings

log = logging.getLogger(__name__)

DEMO_FILE_NAMES = tuple(Path(p).name for p in DEMO_FILES if "/" in p)  # demo-web-events-*.jsonl, ...
DEMO_TRUTH_DIR = "_demo"  # the generator's truth, beside its files in the landing folder


class DemoDataInLake(RuntimeError):
    """Files of your own arrived while the lake holds the demo: nothing is ingested until you switch."""


def is_demo_file(name: str) -> bool:
    """A file the demo generator writes (by its exact name patterns; ``demo-export.csv`` is yours)."""
    return any(fnmatch(name, pattern) for pattern in DEMO_FILE_NAMES)


def _landing_files(settings: Settings) -> list[Path]:
    """The files in the web events and Salesforce landing folders (Tasks and the CRM objects)."""
    from calltrail.lake.landing import landing_files

    crm = sorted({settings.landing_dir / Path(f).parent for f in CRM_FILES})
    return [f for folder in (settings.web_landing_dir, settings.task_landing_dir, *crm) for f in landing_files(folder)]


def own_landing_files(settings: Settings) -> list[Path]:
    return [f for f in _landing_files(settings) if not is_demo_file(f.name)]


def demo_landing_files(settings: Settings) -> list[Path]:
    return [f for f in _landing_files(settings) if is_demo_file(f.name)]


@dataclass
class LakeOrigin:
    """Where the lake's partitions come from: demo files, your landing files, the Salesforce API."""

    demo_partitions: list[Path] = field(default_factory=list)
    own_file_partitions: list[Path] = field(default_factory=list)
    api_partitions: list[Path] = field(default_factory=list)
    demo_quarantine: list[Path] = field(default_factory=list)


def _source_file(manifest: Path) -> str | None:
    try:
        return json.loads(manifest.read_text()).get("source_file")
    except (OSError, ValueError):
        return None


def _quarantine_source(path: Path) -> str | None:
    try:
        with path.open() as fh:
            return json.loads(fh.readline()).get("source_file")
    except (OSError, ValueError, AttributeError):
        return None


def lake_origin(lake_dir: Path) -> LakeOrigin:
    """Classify the lake's partitions. A file partition whose manifest cannot be read counts as
    yours: nothing is removed that is not known to be the demo's."""
    origin = LakeOrigin()
    for dataset in (WEB_EVENTS, *(d.source("file") for d in SALESFORCE_DATASETS)):
        for partition in sorted((lake_dir / dataset).glob("file=*")):
            source = _source_file(partition / "_manifest.json")
            (origin.demo_partitions if source and is_demo_file(source) else origin.own_file_partitions).append(partition)
    for salesforce in SALESFORCE_DATASETS:
        for source_dir in sorted((lake_dir / salesforce.name).glob("source=*")):
            if source_dir.name != "source=file":
                origin.api_partitions += sorted(p for p in source_dir.iterdir() if p.is_dir())
    for path in sorted((lake_dir / QUARANTINE).rglob("*.jsonl")):
        source = _quarantine_source(path)
        if source and is_demo_file(source):
            origin.demo_quarantine.append(path)
    return origin


def demo_present(settings: Settings) -> bool:
    return bool(demo_landing_files(settings) or (settings.landing_dir / DEMO_TRUTH_DIR).exists()
                or lake_origin(settings.lake_dir).demo_partitions)


def has_own_data(settings: Settings) -> bool:
    """Landing files of yours, or lake partitions made from your files or the API (you may have
    moved the files away once they were loaded)."""
    if own_landing_files(settings):
        return True
    origin = lake_origin(settings.lake_dir)
    return bool(origin.own_file_partitions or origin.api_partitions)


@dataclass
class Removed:
    landing_files: int = 0
    partitions: int = 0
    quarantine_files: int = 0
    warehouse: list[Path] = field(default_factory=list)

    def describe(self) -> str:
        parts = [f"{self.landing_files} landing file(s)", f"{self.partitions} lake partition(s)",
                 f"{self.quarantine_files} quarantine file(s)"]
        if self.warehouse:
            parts.append("the warehouse built on it (marts, trend history, Data Docs, report page)")
        return ", ".join(parts)


def _retire(path: Path, lake_dir: Path) -> None:
    """Take a partition out of the lake in one rename (readers see it whole or not at all)."""
    retired = lake_dir / SCRATCH / f"retired-{uuid.uuid4().hex}"
    retired.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, retired)
    shutil.rmtree(retired, ignore_errors=True)


def remove_demo(settings: Settings) -> Removed:
    """Remove the demo's landing files, its lake partitions and quarantine files, and the warehouse.

    The warehouse goes first (when the lake holds demo partitions): should this stop half-way, the demo partitions still in the lake make
    the next run remove the rest, and no mart built on the demo survives. Only DuckDB's warehouse
    file is removed; on another dbt target the published schema is replaced by the next publish.
    """
    removed = Removed()
    origin = lake_origin(settings.lake_dir)
    # Demo files that never reached the lake left nothing in the warehouse: it is kept then.
    derived = [settings.warehouse, settings.warehouse.with_name(settings.warehouse.name + ".wal"),
               settings.missing_bizible_id_csv, settings.data_docs_dir, settings.report_dir] if origin.demo_partitions else []
    for path in derived:
        if path.is_dir():
            shutil.rmtree(path)
            removed.warehouse.append(path)
        elif path.exists():
            path.unlink()
            removed.warehouse.append(path)
    for partition in origin.demo_partitions:
        _retire(partition, settings.lake_dir)
    for path in origin.demo_quarantine:
        path.unlink(missing_ok=True)
    removed.partitions, removed.quarantine_files = len(origin.demo_partitions), len(origin.demo_quarantine)
    for path in demo_landing_files(settings):
        path.unlink()
        removed.landing_files += 1
    shutil.rmtree(settings.landing_dir / DEMO_TRUTH_DIR, ignore_errors=True)
    log.info("removed the demo data: %s", removed.describe())
    return removed


def refuse_to_mix(settings: Settings, *, salesforce_connected: bool = False) -> None:
    """Raise :class:`DemoDataInLake` when data of yours (landing files, or the Salesforce API when
    ``salesforce_connected``) would be loaded next to the demo's partitions. ``CALLTRAIL_DEMO=always``
    asks for the demo whatever else is there, so it is not refused."""
    if settings.demo_mode == "always":
        return
    own = own_landing_files(settings)
    if not own and not salesforce_connected:
        return
    demo = lake_origin(settings.lake_dir).demo_partitions
    if not demo:
        return
    what = (f"{len(own)} landing file(s) of yours ({', '.join(f.name for f in own[:3])}"
            f"{', ...' if len(own) > 3 else ''}) in {settings.landing_dir}" if own
            else f"the Salesforce connection {settings.salesforce.conn_id!r}")
    raise DemoDataInLake(
        f"{what} arrived while the lake holds the demo data ({len(demo)} partition(s)): nothing was ingested, "
        "so the demo and your data never mix. Switch to your data: `make airflow-stop`, then `make run` "
        "(it removes the demo data and loads yours), then `make airflow`.")


def describe(settings: Settings) -> str:
    """Which data the lake, and so the marts built from it, hold: for the summary."""
    origin = lake_origin(settings.lake_dir)
    yours = []
    if origin.own_file_partitions:
        yours.append(f"{len(origin.own_file_partitions)} landing file(s)")
    if origin.api_partitions:
        yours.append(f"Salesforce connection {settings.salesforce.conn_id!r}")
    parts = (["demo data (generated)"] if origin.demo_partitions else []) + (
        [f"your data: {', '.join(yours)}"] if yours else [])
    return " and ".join(parts) or "no data yet"
