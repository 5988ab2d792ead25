"""The process killed (SIGKILL, with dbt and DuckDB in it) while it publishes the marts.

Write-audit-publish copies the consumer marts into schema ``published`` in one DuckDB
transaction. Killed inside it, the consumers must still see the previous publish whole; killed
while it commits, the previous or the new publish whole, never a mix; and the next publish must
complete."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from calltrail import settings as settings_module
from calltrail import summary
from tests.airflow_env import calltrail_env
from tests.faults.helpers import fingerprint, kill_group, run_python, start_python, wait_for

# What the publish task of the transformation DAG runs.
PUBLISH = "from calltrail import settings; from calltrail.tasks import publish; print(publish.publish(settings.load()))"
PUBLISHED = ("fct_touchpoints", "dq_calls_missing_bizible_id", "rpt_touchpoints_by_channel", "rpt_call_match_rates",
             "dim_people", "fct_attribution", "rpt_revenue_by_channel", "dq_opportunities_unattributed")
COPIES = 8_000


def published(fp: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    return {k: v for k, v in fp.items() if k.startswith("published.")}


def wal_written(warehouse: Path) -> bool:
    """DuckDB is committing: it writes the transaction into the write-ahead log beside the file."""
    try:
        return Path(f"{warehouse}.wal").stat().st_size > 0
    except FileNotFoundError:
        return False


def test_a_kill_during_publish_leaves_the_previous_marts_whole_for_consumers_and_the_next_publish_completes(
        small_build, tmp_path):
    shutil.copytree(small_build, tmp_path / "data")
    env = calltrail_env(tmp_path)
    s = settings_module.load(env)
    previous = fingerprint(s.warehouse)
    touchpoints_before = summary.summarise_marts(s).touchpoints
    assert touchpoints_before == previous["published.fct_touchpoints"][0] > 0

    # A new audited build in schema main: fct_touchpoints grows to 3.2 million rows (copies of the
    # built rows under new ids), so that copying it takes the publish transaction several seconds.
    con = duckdb.connect(str(s.warehouse))
    con.execute("create or replace table main.fct_touchpoints as select * replace "
                f"(touchpoint_id || '-' || r.range as touchpoint_id) from main.fct_touchpoints, range({COPIES}) r")
    con.close()
    new_build = fingerprint(s.warehouse)
    assert new_build["main.fct_touchpoints"][0] == COPIES * touchpoints_before
    size_before = s.warehouse.stat().st_size

    proc = start_python(PUBLISH, env)
    # DuckDB writes a large insert's blocks into the file before the commit: once the file has
    # grown by 8 MB the transaction is copying fct_touchpoints, and nothing is committed yet.
    wait_for(lambda: s.warehouse.stat().st_size >= size_before + 8_000_000, proc,
             "the publish transaction was writing the new tables")
    kill_group(proc)
    assert proc.returncode == -9, f"expected the publish killed mid-transaction, it ended with {proc.returncode}"

    after_kill = fingerprint(s.warehouse)  # reads every row of every table, as a consumer would
    assert published(after_kill) == published(previous), \
        "consumers must see the previous publish, every table whole (row counts and content)"
    assert summary.summarise_marts(s).touchpoints == touchpoints_before

    again = run_python(PUBLISH, env)
    assert again.returncode == 0, again.stderr[-3000:]
    final = fingerprint(s.warehouse)
    expected = {f"published.{name}": new_build[f"main.{name}"] for name in PUBLISHED}
    assert published(final) == expected, "the next publish must copy the audited build whole"
    assert summary.summarise_marts(s).touchpoints == COPIES * touchpoints_before


def test_a_kill_while_the_publish_commits_leaves_the_previous_or_the_new_marts_whole_never_a_mix(
        small_build, tmp_path):
    shutil.copytree(small_build, tmp_path / "data")
    env = calltrail_env(tmp_path)
    s = settings_module.load(env)
    previous = fingerprint(s.warehouse)
    con = duckdb.connect(str(s.warehouse))
    con.execute("create or replace table main.fct_touchpoints as select * replace "
                f"(touchpoint_id || '-' || r.range as touchpoint_id) from main.fct_touchpoints, range({COPIES}) r")
    con.close()
    new_build = fingerprint(s.warehouse)
    new = {f"published.{name}": new_build[f"main.{name}"] for name in PUBLISHED}

    proc = start_python(PUBLISH, env)
    wait_for(lambda: wal_written(s.warehouse), proc, "the publish was committing (write-ahead log being written)",
             poll=0.001)
    kill_group(proc)
    assert proc.returncode == -9, f"expected the publish killed while committing, it ended with {proc.returncode}"

    seen = published(fingerprint(s.warehouse))
    assert seen in (published(previous), new), \
        f"consumers must see the previous or the new publish whole; saw {seen}, previous {published(previous)}, new {new}"

    again = run_python(PUBLISH, env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert published(fingerprint(s.warehouse)) == new, "the next publish must copy the audited build whole"
