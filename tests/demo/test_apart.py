"""The demo never mixes with your data: once your files arrive, the demo's files, lake partitions,
quarantine files and warehouse go, and nothing of yours does; while the scheduler runs on the demo,
ingestion refuses your files instead of loading them next to it."""

from __future__ import annotations

import duckdb
import pytest

from calltrail import settings as settings_module
from calltrail.demo import apart
from calltrail.demo.generate import generate
from calltrail.tasks import ingest
from tests.airflow_env import WRITTEN_WHOLE, calltrail_env
from tests.demo.yours import bizible_ids_of, lake_bizible_ids, write_your_files


@pytest.fixture
def demo_lake(tmp_path):
    """A lake and a warehouse holding only the demo (100 visitors: the 100th has a broken web row),
    as after `make run` on the demo."""
    settings = settings_module.load(calltrail_env(tmp_path, **WRITTEN_WHOLE))
    generate(settings.landing_dir, visitors=100)
    ingest.ingest_web_events(settings)
    ingest.ingest_task_files(settings)
    for object_name in ("Lead", "Contact", "Opportunity", "OpportunityContactRole"):
        ingest.ingest_salesforce_files(settings, object_name)
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.warehouse))
    con.execute("create schema published; create table published.fct_touchpoints as select 'demo' as bizible_id")
    con.close()
    demo_ids = bizible_ids_of(sorted(settings.web_landing_dir.glob("demo-*.jsonl")))
    return settings, demo_ids


def partitions(settings):
    """The lake's file partitions and quarantine files (``<source file name>.<hash>.jsonl``)."""
    found = [*settings.lake_dir.glob("**/file=*"), *settings.lake_dir.glob("quarantine/**/*.jsonl")]
    return sorted({p.relative_to(settings.lake_dir).as_posix() for p in found if ".tmp" not in p.parts})


def test_removing_the_demo_takes_its_files_partitions_quarantine_and_warehouse_and_keeps_all_of_yours(
        demo_lake, tmp_path):
    settings, demo_ids = demo_lake
    demo_partitions = partitions(settings)
    assert any("quarantine" in p for p in demo_partitions), "the demo's broken web row is quarantined"
    mine = write_your_files(settings, tmp_path / "export", visitors=20)
    apart.remove_demo(settings)  # as `make run` does before it ingests your files
    assert partitions(settings) == [], f"demo partitions left in the lake: {partitions(settings)}"

    ingest.ingest_web_events(settings)
    ingest.ingest_task_files(settings)
    before = partitions(settings)
    (settings.web_landing_dir / "demo-web-events-0001.jsonl").write_text("")  # `make demo` by hand ...
    removed = apart.remove_demo(settings)  # ... and removed again: none of yours goes with it

    assert removed.landing_files == 1 and removed.partitions == 0 and removed.warehouse == []
    assert partitions(settings) == before and before, "a partition of your files was removed"
    assert sorted(p.name for p in apart.own_landing_files(settings)) == sorted(f.name for f in mine.files)
    assert all(f.exists() for f in mine.files)
    web_ids, task_ids = lake_bizible_ids(settings.lake_dir)
    assert web_ids and not web_ids & demo_ids, f"demo BizibleIds in the lake: {sorted(web_ids & demo_ids)[:5]}"
    assert task_ids and not task_ids & demo_ids
    assert web_ids <= mine.bizible_ids
    assert not settings.warehouse.exists() and not (settings.landing_dir / "_demo").exists()
    assert apart.describe(settings) == f"your data: {len(mine.files)} landing file(s)"


def test_the_first_removal_takes_the_warehouse_built_on_the_demo(demo_lake, tmp_path):
    settings, _ = demo_lake
    write_your_files(settings, tmp_path / "export", visitors=20)
    assert apart.describe(settings) == "demo data (generated)"
    removed = apart.remove_demo(settings)
    assert settings.warehouse in removed.warehouse and not settings.warehouse.exists()
    # The landing files: web events, Tasks and Task updates, and the six of the CRM objects (Leads
    # and their updates, Contacts, Opportunities, contact roles and their updates).
    # A lake partition per landing file.
    assert (removed.partitions, removed.quarantine_files, removed.landing_files) == (9, 1, 9), removed
    left = [p for p in settings.lake_dir.rglob("file=*") if ".tmp" not in p.parts]
    assert not left, f"demo partitions left in the lake: {left}"
    assert not list((settings.landing_dir / "salesforce").rglob("demo-*"))
    assert not list(settings.lake_dir.glob("quarantine/**/*.jsonl"))
    assert apart.describe(settings) == "no data yet"


def test_while_the_lake_holds_the_demo_ingestion_refuses_your_files_and_writes_nothing(demo_lake, tmp_path):
    """`make airflow` runs on the demo and a file of yours arrives: the scheduled ingestion fails
    with what to do, and loads nothing next to the demo."""
    settings, _ = demo_lake
    before = partitions(settings)
    mine = write_your_files(settings, tmp_path / "export", visitors=20)
    for ingest_files in (ingest.ingest_web_events, ingest.ingest_task_files):
        with pytest.raises(apart.DemoDataInLake) as refused:
            ingest_files(settings)
        assert "make run" in str(refused.value) and mine.files[0].name in str(refused.value)
    assert partitions(settings) == before
    assert all(f.exists() for f in mine.files)


def test_calltrail_demo_always_loads_your_files_beside_the_demo_and_the_summary_says_both(demo_lake, tmp_path):
    settings, _ = demo_lake
    always = settings_module.load({**settings.environ, "CALLTRAIL_DEMO": "always"})
    mine = write_your_files(always, tmp_path / "export", visitors=20)
    ingest.ingest_web_events(always)
    assert apart.describe(always) == (
        f"demo data (generated) and your data: {len(mine.files) - 2} landing file(s)")  # the web file(s) so far


def test_a_file_named_demo_something_is_yours_and_so_is_a_lake_whose_landing_files_were_moved_away(tmp_path):
    settings = settings_module.load(calltrail_env(tmp_path, **WRITTEN_WHOLE))
    settings.task_landing_dir.mkdir(parents=True)
    (settings.task_landing_dir / "demo-export.csv").write_text("Id\n")
    assert [f.name for f in apart.own_landing_files(settings)] == ["demo-export.csv"]
    assert apart.has_own_data(settings)

    write_your_files(settings, tmp_path / "export", visitors=20)
    (settings.task_landing_dir / "demo-export.csv").unlink()
    ingest.ingest_web_events(settings)
    for f in apart.own_landing_files(settings):
        f.unlink()  # loaded, then moved away by the sender
    assert apart.own_landing_files(settings) == []
    assert apart.has_own_data(settings), "the lake holds your data: the demo must not be generated next to it"
