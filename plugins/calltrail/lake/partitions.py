"""Lake paths and the atomic replacement of one partition.

A partition is written into a scratch folder and swapped into place only when it is complete, so a
failed run leaves the previous partition (or none) and never a partial one. Re-running the same
interval or file replaces its own partition and adds no duplicates.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

WEB_EVENTS = "web_events"
SALESFORCE_TASK = "salesforce_task"
QUARANTINE = "quarantine"
SCRATCH = ".tmp"


def file_digest(path: Path, length: int = 20) -> str:
    """Content hash of a landing file: the same bytes give the same partition, whatever the name."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def interval_key(start: datetime, end: datetime) -> str:
    """Partition value for a time window ``[start, end)`` (an API extraction reads from its watermark less
    the overlap up to its start), e.g. ``20260301T084500Z_20260301T100000Z``."""
    fmt = "%Y%m%dT%H%M%SZ"
    return f"{_utc(start).strftime(fmt)}_{_utc(end).strftime(fmt)}"


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone; calltrail compares times in UTC only")
    return value.astimezone(UTC)


def scratch_dir(lake_dir: Path) -> Path:
    """A fresh private folder inside the lake (same file system, so renames are atomic)."""
    path = lake_dir / SCRATCH / uuid.uuid4().hex
    path.mkdir(parents=True)
    return path


@contextmanager
def replace_partition(final_dir: Path, lake_dir: Path) -> Iterator[Path]:
    """Yield a scratch folder; on success it becomes ``final_dir``, on error it is discarded."""
    work = scratch_dir(lake_dir)
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    if final_dir.exists():
        retired = lake_dir / SCRATCH / f"retired-{uuid.uuid4().hex}"
        os.replace(final_dir, retired)
        os.replace(work, final_dir)
        shutil.rmtree(retired, ignore_errors=True)
        log.info("replaced partition %s", final_dir)
    else:
        os.replace(work, final_dir)
        log.info("wrote partition %s", final_dir)
