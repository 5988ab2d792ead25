"""Ingest web event files from the landing folder into the lake.

Contract (one row per event; JSON lines, CSV or Parquet):

======================  ========  =======================================================
column                  required  meaning
======================  ========  =======================================================
``event_id``            yes       unique id of the event; duplicates are loaded once
``bizible_id``          yes       the ``_biz_uid`` cookie (32 hex characters once normalised)
``event_type``          yes       ``page_view`` or ``form_submit``
``occurred_at``         yes       ISO 8601 with an offset; stored as UTC
``page_url``            yes       the page (with its query string)
``referrer_url``        no        the referrer of the page view
``email``               no        e-mail address given in a form
``form_url``            no        the form's page, for form submits
======================  ========  =======================================================

Each landing file becomes one lake partition ``web_events/file=<content hash>/events.parquet``.
A file already in the lake is skipped, so ingesting it twice adds nothing; an event id that is
already in the lake (from another file) is counted and not written again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from calltrail.lake.convert import Check, Column, Contract, ConvertResult, convert, detect_format, FORMATS
from calltrail.lake.ids import BIZIBLE_ID_PATTERN, normalised_bizible_id_sql
from calltrail.lake.partitions import QUARANTINE, WEB_EVENTS, file_digest, replace_partition

log = logging.getLogger(__name__)

EVENT_TYPES = ("page_view", "form_submit")

CONTRACT = Contract(
    dataset=WEB_EVENTS,
    columns=(
        Column("event_id", required=True),
        Column("bizible_id", required=True),
        Column("event_type", required=True),
        Column("occurred_at", "timestamp", required=True),
        Column("page_url", required=True),
        Column("referrer_url"),
        Column("email"),
        Column("form_url"),
    ),
    key=("event_id",),
    checks=(
        Check(
            "invalid_bizible_id",
            f"nullif(trim(bizible_id), '') is not null and not regexp_matches("
            f"{normalised_bizible_id_sql('bizible_id')}, '{BIZIBLE_ID_PATTERN}')",
        ),
        Check(
            "invalid_event_type",
            "nullif(trim(event_type), '') is not null and trim(event_type) not in "
            + "(" + ", ".join(f"'{t}'" for t in EVENT_TYPES) + ")",
        ),
    ),
)


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


def landing_files(folder: Path) -> list[Path]:
    """Landing files in name order; hidden and partial (``.tmp``/``.part``) files are ignored."""
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith((".", "_")) and p.suffix.lower() in FORMATS
    )


def unsupported_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith((".", "_")) and p.suffix.lower() not in FORMATS
        and p.suffix.lower() not in (".tmp", ".part")
    )


def quarantine_unreadable(source: Path, quarantine_file: Path, error: Exception) -> None:
    """A file that cannot be read at all is quarantined whole, with the reader's error."""
    quarantine_file.parent.mkdir(parents=True, exist_ok=True)
    with quarantine_file.open("w") as fh:
        fh.write(json.dumps({"source_file": source.name, "row_number": None,
                             "reason": "unreadable_file", "record": str(error)}) + "\n")


def _write_manifest(folder: Path, source: Path, result: ConvertResult) -> None:
    manifest = {"source_file": source.name, "ingested_at": datetime.now(timezone.utc).isoformat(),
                **result.as_dict()}
    (folder / "_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def ingest_web_events(landing_dir: Path, lake_dir: Path, *, reprocess: bool = False) -> IngestReport:
    """Ingest every web event file in ``landing_dir`` that is not yet in the lake."""
    report = IngestReport(WEB_EVENTS)
    files = landing_files(landing_dir)
    for other in unsupported_files(landing_dir):
        log.warning("%s: not a JSON lines, CSV or Parquet file; left in the landing folder", other)
        report.add(other.name, "unsupported_format")
    log.info("web events: %d landing file(s) in %s", len(files), landing_dir)
    dataset_dir = lake_dir / WEB_EVENTS
    for n, source in enumerate(files, start=1):
        digest = file_digest(source)
        partition = dataset_dir / f"file={digest}"
        quarantine_file = lake_dir / QUARANTINE / WEB_EVENTS / f"file={digest}.jsonl"
        if partition.exists() and not reprocess:
            log.info("[%d/%d] %s: already ingested as %s, skipped", n, len(files), source.name, partition.name)
            report.add(source.name, "already_ingested", partition=str(partition))
            continue
        existing = [p for p in dataset_dir.glob("file=*/events.parquet") if p.parent != partition]
        quarantine_file.unlink(missing_ok=True)
        try:
            with replace_partition(partition, lake_dir) as work:
                result = convert(source, CONTRACT, work / "events.parquet", quarantine_file,
                                 fmt=detect_format(source), existing_keys=existing)
                _write_manifest(work, source, result)
        except duckdb.Error as exc:
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
