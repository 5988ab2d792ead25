"""Helpers for the watermark tests: change Tasks in the fake org, read back what the lake holds."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from calltrail.lake.layout import SALESFORCE_TASK
from tests.fakes.salesforce import FakeSalesforce, FakeSalesforceServer


@contextmanager
def serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page_size: int = 3) -> Iterator[FakeSalesforceServer]:
    """A fake org over HTTPS whose certificate this process trusts."""
    with FakeSalesforceServer(FakeSalesforce(page_size=page_size), tmp_path) as server:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_path))
        yield server


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def modify(records: list[dict[str, Any]], task_id: str, at: datetime, **changes: object) -> None:
    """An edit in Salesforce: the record changes in place and SystemModstamp moves to ``at``."""
    for record in records:
        if record["Id"] == task_id:
            record.update(changes, SystemModstamp=stamp(at), LastModifiedDate=stamp(at))
            return
    raise AssertionError(f"no Task {task_id} in the fake org")


def org_versions(records: list[dict[str, Any]]) -> set[tuple[str, datetime, bool]]:
    """(Id, SystemModstamp, IsDeleted) of every Task the org holds now (queryAll's view)."""
    return {(r["Id"], datetime.fromisoformat(r["SystemModstamp"].replace("+0000", "+00:00")).replace(tzinfo=None),
             bool(r.get("IsDeleted"))) for r in records}


def lake_versions(lake: Path) -> list[tuple[str, datetime, bool]]:
    """Every (Id, SystemModstamp, IsDeleted) row of every committed Task partition, as dbt reads them."""
    files = sorted(lake.glob(f"{SALESFORCE_TASK}/*/*/tasks.parquet"))
    if not files:
        return []
    con = duckdb.connect()
    try:
        listed = ", ".join(f"'{f}'" for f in files)
        return con.execute(f"select Id, SystemModstamp, IsDeleted from read_parquet([{listed}], union_by_name = true) "
                           "order by all").fetchall()
    finally:
        con.close()


def fingerprint(lake: Path) -> dict[str, str]:
    """Content hash of every file in the lake, manifests included."""
    return {p.relative_to(lake).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(lake.rglob("*")) if p.is_file()}
