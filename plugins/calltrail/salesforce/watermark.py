"""The Salesforce watermark: the highest ``SystemModstamp`` that a successful extraction stored.

Each object has its own (its dataset's API partitions; Task's by default).

There is no separate watermark file to keep in step with the data. Every API partition carries its
own ``_manifest.json`` inside the partition folder, and :func:`calltrail.lake.partitions.replace_partition`
swaps that folder into place in one rename: the partition and the watermark it records appear
together or not at all. The watermark is the maximum ``max_system_modstamp`` over the committed
partitions, so

- a failed or killed extraction commits nothing and leaves the watermark where it was: the next run
  reads everything since;
- a partition whose manifest or Parquet file is gone no longer counts; when none is left, the next
  run is a full load (a lost watermark can only make calltrail read more, never less).

Reconciliation tombstones (``source=reconciliation``) and landing files (``source=file``) never move
the watermark: only what the API extraction read does.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from calltrail.lake.layout import SALESFORCE_TASK_FILE, TASKS, SalesforceDataset, task_source

log = logging.getLogger(__name__)

API_DATASET = task_source("api")  # Task's
MANIFEST = "_manifest.json"
PARQUET = SALESFORCE_TASK_FILE  # Task's


@dataclass(frozen=True)
class Watermark:
    at: datetime  # UTC
    partition: Path  # the committed partition that holds it

    def as_dict(self) -> dict[str, str]:
        return {"at": self.at.isoformat(), "partition": str(self.partition)}


@dataclass(frozen=True)
class CommittedPartition:
    path: Path
    min_system_modstamp: datetime | None
    max_system_modstamp: datetime | None


def parse_utc(value: str) -> datetime:
    """An ISO 8601 time with an offset (``Z``, ``+00:00`` or Salesforce's ``+0000``), in UTC."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no offset")
    return parsed.astimezone(UTC)


def committed_partitions(lake_dir: Path, dataset: SalesforceDataset = TASKS) -> list[CommittedPartition]:
    """API partitions that hold their Parquet file and a manifest with the ``SystemModstamp`` range.

    Partitions written before calltrail recorded the range (or with an unreadable manifest) are
    skipped, with a warning: they hold data, but say nothing about how far it reaches.
    """
    found = []
    for manifest in sorted((lake_dir / dataset.source("api")).glob(f"*/{MANIFEST}")):
        if not (manifest.parent / dataset.file).is_file():
            log.warning("%s: no %s beside the manifest; the partition does not count for the watermark",
                        manifest.parent, dataset.file)
            continue
        try:
            data = json.loads(manifest.read_text())
            low, high = data.get("min_system_modstamp"), data.get("max_system_modstamp")
            found.append(CommittedPartition(manifest.parent, parse_utc(low) if low else None,
                                            parse_utc(high) if high else None))
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("%s: unreadable manifest (%s); the partition does not count for the watermark",
                        manifest, exc)
    return found


def read_watermark(lake_dir: Path, dataset: SalesforceDataset = TASKS) -> Watermark | None:
    """The highest ``SystemModstamp`` any committed API partition stored; None when there is none."""
    best: Watermark | None = None
    for part in committed_partitions(lake_dir, dataset):
        if part.max_system_modstamp is not None and (best is None or part.max_system_modstamp > best.at):
            best = Watermark(part.max_system_modstamp, part.path)
    return best


def partitions_reaching(lake_dir: Path, since: datetime, dataset: SalesforceDataset = TASKS) -> list[Path]:
    """Parquet files of committed API partitions with rows at or after ``since``: the only ones an
    incremental window starting at ``since`` can repeat."""
    return [p.path / dataset.file for p in committed_partitions(lake_dir, dataset)
            if p.max_system_modstamp is not None and p.max_system_modstamp >= since]
