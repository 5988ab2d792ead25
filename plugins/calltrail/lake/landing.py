"""Ingest a landing folder, file by file, into one lake dataset.

Each landing file becomes one partition ``<dataset>/file=<content hash>/<name>.parquet``. A file
whose partition exists is skipped, so ingesting it twice adds nothing (under another name too). A
file that cannot be read at all is quarantined whole and the other files still load.

A file still being written is never ingested half:

- temporary names are never read: dot-files, names starting with ``_``, and ``*.tmp``, ``*.part``,
  ``*.partial``, ``*.filepart`` (write under such a name, then rename when complete);
- a file whose size or modification time changed within the settle time (``settle_seconds``,
  setting ``CALLTRAIL_LANDING_SETTLE_SECONDS``) is watched for the rest of that time, once per run;
  if it changes meanwhile it is left for the next run (status ``still_being_written``);
- a file that changes while it is converted is discarded before its partition appears, and is
  left for the next run.

A file's rejected rows go to ``quarantine/<dataset>/<source file name>.<content hash>.jsonl``: the
name says which delivery they came from; the hash keeps two deliveries of one name apart.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from calltrail.lake.convert import (
    DEFAULT_MEMORY_LIMIT,
    FORMATS,
    Contract,
    ConvertResult,
    UnreadableFile,
    convert,
    detect_format,
)
from calltrail.lake.layout import quarantine_dir
from calltrail.lake.partitions import file_digest, replace_partition, sweep_scratch

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    dataset: str
    files: list[dict[str, object]] = field(default_factory=list)

    def add(self, name: str, status: str, result: ConvertResult | None = None, **extra: object) -> None:
        entry: dict[str, object] = {"file": name, "status": status}
        if result is not None:
            entry.update(result.as_dict())
        entry.update(extra)
        self.files.append(entry)

    def total(self, key: str) -> int:
        return sum(int(f.get(key, 0) or 0) for f in self.files)

    def as_dict(self) -> dict[str, object]:
        return {"dataset": self.dataset, "files": self.files,
                "rows_valid": self.total("rows_valid"), "rows_quarantined": self.total("rows_quarantined")}


# Names under which senders write a file before they rename it to its final name.
TEMPORARY_SUFFIXES = (".tmp", ".part", ".partial", ".filepart")
QUARANTINE_STAGED = "_quarantine.jsonl"  # a partition's quarantine, inside its scratch folder until it is in place


def _visible_files(folder: Path) -> list[Path]:
    """Files a sender has finished: hidden (``.``), private (``_``) and partial files are not."""
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith((".", "_")) and p.suffix.lower() not in TEMPORARY_SUFFIXES
    )


@dataclass(frozen=True)
class FileState:
    """What tells a file that is still being written: its size and modification time."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileState:
        st = path.stat()
        return cls(st.st_size, st.st_mtime_ns)


def settled_files(
    files: list[Path], settle_seconds: float, *, sleep: Callable[[float], None] = time.sleep
) -> tuple[dict[Path, FileState], dict[Path, str]]:
    """Split ``files`` into those that are complete and those still being written.

    A file modified within the last ``settle_seconds`` is watched until that much time has passed
    since its last change (one wait for all of them, at most ``settle_seconds``); if its size or
    modification time changes meanwhile, a writer is still at work. Returns the complete files
    with the state they were seen in, and the others with the reason.
    """
    states: dict[Path, FileState] = {}
    for p in files:
        try:
            states[p] = FileState.of(p)
        except FileNotFoundError:  # renamed or removed since the listing
            continue
    now = time.time_ns()
    young = {p: s for p, s in states.items() if now - s.mtime_ns < settle_seconds * 1e9}
    busy: dict[Path, str] = {}
    if young:
        wait = min(settle_seconds, max(settle_seconds - (now - s.mtime_ns) / 1e9 for s in young.values()))
        log.info("%d landing file(s) modified within the last %g s: watching them for %.1f s",
                 len(young), settle_seconds, wait)
        sleep(wait)
        for p, before in young.items():
            try:
                after = FileState.of(p)
            except FileNotFoundError:
                states.pop(p)
                continue
            if after != before:
                states.pop(p)
                busy[p] = (f"changed while calltrail watched it for {wait:.1f} s "
                           f"({before.size:,} -> {after.size:,} bytes): still being written")
    return states, busy


def landing_files(folder: Path) -> list[Path]:
    """Landing files calltrail reads, in name order."""
    return [p for p in _visible_files(folder) if p.suffix.lower() in FORMATS]


def unsupported_files(folder: Path) -> list[Path]:
    return [p for p in _visible_files(folder) if p.suffix.lower() not in FORMATS]


def quarantine_path(lake_dir: Path, dataset_path: str, source: Path, digest: str) -> Path:
    """Where the rejected rows of landing file ``source`` (content hash ``digest``) are kept."""
    return quarantine_dir(lake_dir, dataset_path) / f"{source.name}.{digest}.jsonl"


def quarantine_unreadable(source: Path, quarantine_file: Path, error: Exception) -> None:
    """A file that cannot be read at all is quarantined whole, with the reader's error."""
    quarantine_file.parent.mkdir(parents=True, exist_ok=True)
    with quarantine_file.open("w") as fh:
        fh.write(json.dumps({"source_file": source.name, "row_number": None,
                             "reason": "unreadable_file", "record": str(error)}) + "\n")


def _write_manifest(folder: Path, source: Path, result: ConvertResult) -> None:
    manifest = {"source_file": source.name, "ingested_at": datetime.now(UTC).isoformat(),
                **result.as_dict()}
    (folder / "_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _read_manifest(partition: Path) -> dict[str, object]:
    try:
        return json.loads((partition / "_manifest.json").read_text())
    except (OSError, ValueError):
        return {}


def _place_quarantine(partition: Path, quarantine_file: Path) -> None:
    """Move a partition's quarantine from its folder to the quarantine area (or clear the old one).

    Done after the partition is in place; a run killed in between leaves the file in the partition
    folder (where the lake's readers do not look) and the next run moves it.
    """
    staged = partition / QUARANTINE_STAGED
    if staged.exists():
        quarantine_file.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, quarantine_file)
    elif (partition / "_manifest.json").exists() and not int(_read_manifest(partition).get("rows_quarantined") or 0):
        quarantine_file.unlink(missing_ok=True)


class _ChangedWhileIngesting(RuntimeError):
    pass


def ingest_folder(
    landing_dir: Path,
    lake_dir: Path,
    contract: Contract,
    *,
    dataset_path: str,
    parquet_name: str,
    dedupe_against_lake: bool,
    reprocess: bool = False,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    settle_seconds: float = 0.0,
) -> IngestReport:
    """Ingest every file in ``landing_dir`` that is not yet in the lake.

    ``dataset_path`` is the dataset's folder under the lake (``web_events``,
    ``salesforce_task/source=file``); with ``dedupe_against_lake`` rows whose key is already in
    another partition of the dataset are counted and not written again. ``settle_seconds``: see
    :func:`settled_files` (0 when the caller knows every file is complete).
    """
    report = IngestReport(contract.dataset)
    sweep_scratch(lake_dir)
    listed = landing_files(landing_dir)
    for other in unsupported_files(landing_dir):
        log.warning("%s: not a JSON lines, CSV or Parquet file; left in the landing folder", other)
        report.add(other.name, "unsupported_format")
    states, busy = settled_files(listed, settle_seconds)
    for source, reason in busy.items():
        log.warning("%s: %s; left for the next run", source.name, reason)
        report.add(source.name, "still_being_written", detail=reason)
    files = [p for p in listed if p in states]
    log.info("%s: %d landing file(s) in %s", contract.dataset, len(files), landing_dir)
    dataset_dir = lake_dir / dataset_path
    for n, source in enumerate(files, start=1):
        try:
            digest = file_digest(source)
        except FileNotFoundError:
            log.warning("%s: removed from the landing folder during the run", source.name)
            continue
        partition = dataset_dir / f"file={digest}"
        quarantine_file = quarantine_path(lake_dir, dataset_path, source, digest)
        if partition.exists() and not reprocess:
            _place_quarantine(partition, quarantine_file)
            manifest = _read_manifest(partition)
            first = manifest.get("source_file")
            if first and first != source.name:
                log.info("[%d/%d] %s: same content as %s (ingested %s as %s), skipped", n, len(files),
                         source.name, first, manifest.get("ingested_at"), partition.name)
            else:
                log.info("[%d/%d] %s: already ingested as %s, skipped", n, len(files), source.name, partition.name)
            report.add(source.name, "already_ingested", partition=str(partition), same_content_as=first)
            continue
        existing = (
            [p for p in dataset_dir.glob(f"file=*/{parquet_name}") if p.parent != partition]
            if dedupe_against_lake else None
        )
        try:
            with replace_partition(partition, lake_dir) as work:
                result = convert(source, contract, work / parquet_name, work / QUARANTINE_STAGED,
                                 fmt=detect_format(source), existing_keys=existing,
                                 memory_limit=memory_limit, quarantine_named=quarantine_file)
                _write_manifest(work, source, result)
                if FileState.of(source) != states[source]:
                    raise _ChangedWhileIngesting(source.name)
            _place_quarantine(partition, quarantine_file)
            # Named by content hash alone before quarantine files kept the source's name.
            (quarantine_dir(lake_dir, dataset_path) / f"file={digest}.jsonl").unlink(missing_ok=True)
        except (_ChangedWhileIngesting, FileNotFoundError):
            reason = "changed while it was being ingested: still being written; nothing of it was kept"
            log.warning("%s: %s; left for the next run", source.name, reason)
            report.add(source.name, "still_being_written", detail=reason)
            continue
        except (duckdb.Error, UnreadableFile, UnicodeDecodeError) as exc:
            log.error("%s: cannot be read (%s); quarantined whole", source.name, exc)
            quarantine_unreadable(source, quarantine_file, exc)
            report.add(source.name, "unreadable", rows_quarantined=1,
                       quarantined_by_reason={"unreadable_file": 1}, quarantine=str(quarantine_file))
            continue
        log.info("[%d/%d] %s: %d read, %d loaded, %d quarantined, %d duplicate(s)", n, len(files), source.name,
                 result.rows_read, result.rows_valid, result.rows_quarantined,
                 result.duplicates_in_file + result.duplicates_in_lake)
        report.add(source.name, "ingested", result, partition=str(partition),
                   quarantine=str(quarantine_file) if result.rows_quarantined else None)
    return report
