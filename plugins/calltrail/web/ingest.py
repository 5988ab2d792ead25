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

from pathlib import Path

from calltrail.dbt_project import project_var
from calltrail.lake.convert import DEFAULT_MEMORY_LIMIT, Check, Column, Contract
from calltrail.lake.ids import BIZIBLE_ID_PATTERN, normalised_bizible_id_sql
from calltrail.lake.landing import IngestReport, ingest_folder
from calltrail.lake.layout import WEB_EVENTS, WEB_EVENTS_FILE

EVENT_TYPES: tuple[str, ...] = tuple(project_var("calltrail__web_event_types"))

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


def ingest_web_events(
    landing_dir: Path, lake_dir: Path, *, reprocess: bool = False, memory_limit: str = DEFAULT_MEMORY_LIMIT,
    settle_seconds: float = 0.0,
) -> IngestReport:
    """Ingest every web event file in ``landing_dir`` that is not yet in the lake (and complete:
    see :func:`calltrail.lake.landing.settled_files`)."""
    return ingest_folder(landing_dir, lake_dir, CONTRACT, dataset_path=WEB_EVENTS, parquet_name=WEB_EVENTS_FILE,
                         dedupe_against_lake=True, reprocess=reprocess, memory_limit=memory_limit,
                         settle_seconds=settle_seconds)
