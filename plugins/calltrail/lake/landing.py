"""Ingest a landing folder, file by file, into one lake dataset.

Each landing file becomes one partition ``<dataset>/file=<content hash>/<name>.parquet``. A file
whose partition exists is skipped, so ingesting it twice adds nothing. A file that cannot be read
at all is quarantined whole and the other files still load.

A file's rejected rows go to ``quarantine/<dataset>/<source file name>.<content hash>.jsonl``: the
name says which delivery they came from; the hash keeps two deliveries of one name apart.
"""

from __future__ import annotations

import json
import logging
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
from calltrail.lake.partitions import QUARANTINE, file_digest, replace_partition

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


def _visible_files(folder: Path) -> list[Path]:
    """Files a sender has finished: hidden (``.``), private (``_``) and partial files are not."""
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith((".", "_")) and p.suffix.lower() not in (".tmp", ".part")
    )


def landing_files(folder: Path) -> list[Path]:
    """Landing files calltrail reads, in name order."""
    return [p for p in _visible_files(folder) if p.suffix.lower() in FORMATS]


def unsupported_files(folder: Path) -> list[Path]:
    return [p for p in _visible_files(folder) if p.suffix.lower() not in FORMATS]


def quarantine_path(lake_dir: Path, dataset_path: str, source: Path, digest: str) -> Path:
    """Where the rejected rows of landing file ``source`` (content hash ``digest``) are kept."""
    return lake_dir / QUARANTINE / dataset_path / f"{source.name}.{digest}.jsonl"


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
) -> IngestReport:
    """Ingest every file in ``landing_dir`` that is not yet in the lake.

    ``dataset_path`` is the dataset's folder under the lake (``web_events``,
    ``salesforce_task/source=file``); with ``dedupe_against_lake`` rows whose key is already in
    another partition of the dataset are counted and not written again.
    """
    report = IngestReport(contract.dataset)
    files = landing_files(landing_dir)
    for other in unsupported_files(landing_dir):
        log.warning("%s: not a JSON lines, CSV or Parquet file; left in the landing folder", other)
        report.add(other.name, "unsupported_format")
    log.info("%s: %d landing file(s) in %s", contract.dataset, len(files), landing_dir)
    dataset_dir = lake_dir / dataset_path
    for n, source in enumerate(files, start=1):
        digest = file_digest(source)
        partition = dataset_dir / f"file={digest}"
        quarantine_file = quarantine_path(lake_dir, dataset_path, source, digest)
        if partition.exists() and not reprocess:
            log.info("[%d/%d] %s: already ingested as %s, skipped", n, len(files), source.name, partition.name)
            report.add(source.name, "already_ingested", partition=str(partition))
            continue
        existing = (
            [p for p in dataset_dir.glob(f"file=*/{parquet_name}") if p.parent != partition]
            if dedupe_against_lake else None
        )
        quarantine_file.unlink(missing_ok=True)
        # Named by content hash alone before quarantine files kept the source's name.
        (lake_dir / QUARANTINE / dataset_path / f"file={digest}.jsonl").unlink(missing_ok=True)
        try:
            with replace_partition(partition, lake_dir) as work:
                result = convert(source, contract, work / parquet_name, quarantine_file,
                                 fmt=detect_format(source), existing_keys=existing,
                                 memory_limit=memory_limit)
                _write_manifest(work, source, result)
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
