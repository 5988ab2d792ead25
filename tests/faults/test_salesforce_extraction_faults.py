"""Faults during a Salesforce extraction: whatever breaks, the next successful run leaves the lake
with every version Salesforce has, each once, and a failed run never moves the watermark.

The fake Salesforce speaks HTTPS and the real wire format; faults are injected at a given page of a
REST ``queryAll`` (page 1 is the query's own answer, page n follows ``nextRecordsUrl``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from calltrail.lake.layout import SCRATCH
from calltrail.salesforce.client import (
    FieldNotReadable,
    RequestLimitExceeded,
    SalesforceUnavailable,
    SessionRejected,
)
from calltrail.salesforce.extract import extract_tasks
from calltrail.salesforce.watermark import API_DATASET, read_watermark
from tests.salesforce.lake_versions import lake_versions, modify, org_versions, serving
from tests.salesforce.test_extract import SF, SF_FIELDS_WITHOUT_BIZIBLE_ID, client_for, task

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PAGE = 3


@pytest.fixture
def fake(tmp_path, monkeypatch):
    with serving(tmp_path, monkeypatch, page_size=PAGE) as server:
        yield server


def prepared(fake, lake: Path) -> datetime:
    """A lake with a first full load, then 10 Task changes after it (four REST pages of three)."""
    fake.state.records = [task(i, T0 - timedelta(days=20 - i)) for i in range(8)]
    extract_tasks(client_for(fake), SF, lake, until=T0)
    mark = read_watermark(lake).at
    for i in range(8):
        modify(fake.state.records, f"00T5e00000ABC{i:03d}AAA", T0 + timedelta(minutes=5 * i), Subject=f"edit {i}")
    fake.state.records += [task(20, T0 + timedelta(minutes=41)), task(21, T0 + timedelta(minutes=42))]
    return mark


def assert_complete_and_once(fake, lake: Path) -> None:
    versions = lake_versions(lake)
    twice = sorted({v for v in versions if versions.count(v) > 1})
    assert not twice, f"versions stored twice: {twice}"
    missing = org_versions(fake.state.records) - set(versions)
    assert not missing, f"versions Salesforce has that the lake lacks: {sorted(missing)}"


def committed(lake: Path) -> list[str]:
    return sorted(p.name for p in (lake / API_DATASET).iterdir())


@pytest.mark.parametrize(("status", "code", "error"), [
    (500, "UNKNOWN_EXCEPTION", SalesforceUnavailable),
    (503, "SERVER_UNAVAILABLE", SalesforceUnavailable),
    (403, "REQUEST_LIMIT_EXCEEDED", RequestLimitExceeded),
], ids=["500", "503", "403-request-limit"])
def test_a_run_failing_mid_pagination_then_a_good_run_leaves_nothing_missing_and_nothing_twice(
        fake, tmp_path, status, code, error):
    lake = tmp_path / "lake"
    mark = prepared(fake, lake)
    before = committed(lake)
    fake.state.fail_page(3, status, code, "injected at page 3", times=SF.max_attempts)

    with pytest.raises(error):
        extract_tasks(client_for(fake), SF, lake, until=T0 + timedelta(hours=1))

    assert committed(lake) == before, "the failed run committed a partition"
    assert read_watermark(lake).at == mark, "the failed run moved the watermark"
    assert not any((lake / SCRATCH).iterdir()), "the failed run left scratch files"

    out = extract_tasks(client_for(fake), SF, lake, until=T0 + timedelta(hours=2))
    assert out.kind == "incremental" and out.pages == 4
    assert_complete_and_once(fake, lake)


def test_session_ending_mid_pagination_is_re_authenticated_and_the_run_completes(fake, tmp_path):
    lake = tmp_path / "lake"
    prepared(fake, lake)
    fake.state.expire_session_at_page(3, new_token="token-2")
    client = client_for(fake, tokens=["token-1", "token-2"])

    extract_tasks(client, SF, lake, until=T0 + timedelta(hours=1))

    assert client.reauthentications == 1
    assert_complete_and_once(fake, lake)


def test_session_rejected_after_re_authentication_mid_pagination_fails_then_the_next_run_reads_everything(
        fake, tmp_path):
    lake = tmp_path / "lake"
    mark = prepared(fake, lake)
    before = committed(lake)
    fake.state.expire_session_at_page(2, new_token="token-2")

    with pytest.raises(SessionRejected):  # logs in again, but gets a token the org no longer accepts
        extract_tasks(client_for(fake, tokens=["token-1", "token-1"]), SF, lake, until=T0 + timedelta(hours=1))
    assert committed(lake) == before and read_watermark(lake).at == mark

    extract_tasks(client_for(fake, tokens=["token-2"]), SF, lake, until=T0 + timedelta(hours=2))
    assert_complete_and_once(fake, lake)


def test_invalid_field_fails_without_moving_the_watermark_and_the_run_after_the_fix_reads_everything(
        fake, tmp_path):
    lake = tmp_path / "lake"
    mark = prepared(fake, lake)
    fake.state.readable_fields = set(SF_FIELDS_WITHOUT_BIZIBLE_ID)  # field permission removed

    with pytest.raises(FieldNotReadable, match="bizible2__BizibleId__c"):
        extract_tasks(client_for(fake), SF, lake, until=T0 + timedelta(hours=1))
    assert read_watermark(lake).at == mark

    fake.state.readable_fields = None  # permission granted again, hours later
    extract_tasks(client_for(fake), SF, lake, until=T0 + timedelta(hours=5))
    assert_complete_and_once(fake, lake)


KILLED_EXTRACTION = """
import sys
from datetime import datetime
from pathlib import Path

from simple_salesforce import Salesforce

from calltrail.salesforce.client import ResilientSalesforce
from calltrail.salesforce.extract import extract_tasks
from calltrail.settings import SalesforceSettings

instance_url, lake, until = sys.argv[1:4]
client = ResilientSalesforce(lambda: Salesforce(instance_url=instance_url, session_id="token-1"), max_attempts=1)
extract_tasks(client, SalesforceSettings(), Path(lake), until=datetime.fromisoformat(until))
"""


def test_process_killed_during_the_lake_write_leaves_no_partial_partition_and_the_next_run_completes(
        tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    with serving(tmp_path, monkeypatch, page_size=40) as fake:
        fake.state.records = [task(i, T0 - timedelta(days=300) + timedelta(hours=i)) for i in range(50)]
        extract_tasks(client_for(fake), SF, lake, until=T0)
        mark, before = read_watermark(lake).at, committed(lake)
        fake.state.records += [task(100 + i, T0 + timedelta(seconds=10 * i)) for i in range(200)]
        reached, release = fake.state.hold_page(4)  # pages 1-3 are spooled into the lake when it is asked for

        env = {**os.environ, "REQUESTS_CA_BUNDLE": str(fake.ca_path)}
        child = subprocess.Popen([sys.executable, "-c", KILLED_EXTRACTION, fake.instance_url, str(lake),
                                  (T0 + timedelta(hours=1)).isoformat()], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert reached.wait(timeout=120), "the extraction never asked for page 4"
            spools = list((lake / SCRATCH).glob("*/_spool.jsonl"))
            assert spools and spools[0].stat().st_size > 0, "the kill must land while the lake is being written"
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
        finally:
            release.set()
            if child.poll() is None:
                child.kill()
        assert child.returncode == -signal.SIGKILL, child.stdout.read() if child.stdout else ""

        assert committed(lake) == before, "a killed run must not commit a partition"
        assert read_watermark(lake).at == mark, "a killed run must not move the watermark"
        assert len(lake_versions(lake)) == 50, "what dbt reads must not see the half-written data"

        out = extract_tasks(client_for(fake), SF, lake, until=T0 + timedelta(hours=1))
        assert out.result.rows_valid == 200
        assert_complete_and_once(fake, lake)
        assert read_watermark(lake).at == T0 + timedelta(seconds=10 * 199)

