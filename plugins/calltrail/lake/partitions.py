"""The atomic replacement of one partition of the lake.

A partition is written into a scratch folder and swapped into place only when it is complete, so a
failed run leaves the previous partition (or none) and never a partial one. Re-running the same
interval or file replaces its own partition and adds no duplicates.

Scratch folders live in ``<lake>/.tmp/`` (hidden from the lake's readers), each with a lock file
that its process holds while it writes. A process killed mid-write (SIGKILL, out of memory, a lost
machine) cannot remove its folder, but the kernel releases its lock: :func:`sweep_scratch` removes
every folder whose lock nobody holds, and leaves those of writers that are still running.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from calltrail.lake.layout import SCRATCH

log = logging.getLogger(__name__)



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


RETIRED = "retired-"  # a replaced partition on its way out: <lake>/.tmp/retired-<name of the scratch folder>
LOCK = ".lock"


@contextmanager
def scratch_dir(lake_dir: Path) -> Iterator[Path]:
    """A fresh private folder inside the lake (same file system, so renames are atomic), locked
    for as long as this process works in it."""
    root = lake_dir / SCRATCH
    root.mkdir(parents=True, exist_ok=True)
    while True:  # the lock exists before the folder and goes after it
        name = uuid.uuid4().hex
        lock_path = root / f"{name}{LOCK}"
        lock = lock_path.open("w")
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if os.stat(lock_path).st_ino == os.fstat(lock.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        lock.close()  # a sweep took the new lock file for an abandoned one before it was locked
    with lock:
        try:
            path = root / name
            path.mkdir()
            yield path
        finally:
            shutil.rmtree(root / name, ignore_errors=True)
            shutil.rmtree(root / f"{RETIRED}{name}", ignore_errors=True)
            lock_path.unlink(missing_ok=True)


def sweep_scratch(lake_dir: Path) -> list[str]:
    """Remove the scratch folders of writers that died mid-write; returns their names.

    A folder counts as abandoned when nobody holds its lock (its process has ended) or when it has
    no lock file at all (left by a calltrail before the lock existed).
    """
    root = lake_dir / SCRATCH
    if not root.is_dir():
        return []
    removed = []
    for lock_path in sorted(root.glob(f"*{LOCK}")):
        name = lock_path.name.removesuffix(LOCK)
        try:
            lock = lock_path.open("a")
        except FileNotFoundError:  # its writer just finished
            continue
        with lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a running writer
            for folder in (root / name, root / f"{RETIRED}{name}"):
                if folder.exists():
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder.name)
            lock_path.unlink(missing_ok=True)
    for folder in sorted(root.iterdir()):
        owner = folder.name.removeprefix(RETIRED)
        if folder.is_dir() and not (root / f"{owner}{LOCK}").exists():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    if removed:
        log.warning("removed %d scratch folder(s) that a killed or failed run left in %s: %s",
                    len(removed), root, ", ".join(removed))
    return removed


@contextmanager
def replace_partition(final_dir: Path, lake_dir: Path) -> Iterator[Path]:
    """Yield a scratch folder; on success it becomes ``final_dir``, on error it is discarded."""
    with scratch_dir(lake_dir) as work:
        yield work
        final_dir.parent.mkdir(parents=True, exist_ok=True)
        if final_dir.exists():
            retired = work.with_name(f"{RETIRED}{work.name}")
            os.replace(final_dir, retired)
            os.replace(work, final_dir)
            shutil.rmtree(retired, ignore_errors=True)
            log.info("replaced partition %s", final_dir)
        else:
            os.replace(work, final_dir)
            log.info("wrote partition %s", final_dir)
