"""`make run` on the demo, then your own files arrive, then `make run` again (real Airflow, `airflow
dags test`): the demo's rows are gone from the lake's active data and from the published marts,
yours are there, and the summary says which data the marts hold."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from calltrail import settings as settings_module
from calltrail import summary
from tests.airflow_env import BIN, calltrail_env, run
from tests.demo.yours import bizible_ids_of, lake_bizible_ids, normalise, write_your_files


@pytest.fixture(scope="module")
def switched(demo_run, tmp_path_factory):
    """The shared demo run (tests/conftest.py), copied; then your files arrive and `make run` again."""
    source, _, first, _ = demo_run
    tmp = tmp_path_factory.mktemp("demo-then-yours")
    shutil.copytree(source / "data", tmp / "data", ignore=shutil.ignore_patterns("logs"))
    env = calltrail_env(tmp)
    settings = settings_module.load(env)
    demo_ids = bizible_ids_of(sorted(settings.web_landing_dir.glob("demo-web-events-*.jsonl")))
    assert demo_ids and published_bizible_ids(settings) & demo_ids, "the first run published the demo"
    mine = write_your_files(settings, tmp / "export", visitors=150)
    assert not mine.bizible_ids & demo_ids
    second = run([str(BIN / "calltrail"), "run"], env, timeout=1800)
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    return settings, demo_ids, mine, first, second


def published_bizible_ids(settings) -> set[str]:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return {normalise(r[0]) for r in con.execute(
            "select distinct bizible_id from published.fct_touchpoints where bizible_id is not null").fetchall()}
    finally:
        con.close()


def test_once_your_files_arrive_no_demo_row_is_in_the_lake_or_the_published_marts_and_yours_are(switched):
    settings, demo_ids, mine, _, second = switched
    assert "removed the demo data so the two never mix" in second.stdout, second.stdout[-3000:]
    web_ids, task_ids = lake_bizible_ids(settings.lake_dir)
    assert not web_ids & demo_ids, f"demo web events in the lake: {sorted(web_ids & demo_ids)[:5]}"
    assert not task_ids & demo_ids, f"demo Tasks in the lake: {sorted(task_ids & demo_ids)[:5]}"
    assert web_ids == mine.bizible_ids, "every BizibleId of your web events is in the lake"
    published = published_bizible_ids(settings)
    assert not published & demo_ids, f"demo touchpoints in the published marts: {sorted(published & demo_ids)[:5]}"
    assert published and published <= mine.bizible_ids | task_ids

    t = mine.truth["tasks"]  # the generator's own record of what it wrote into your files
    marts = summary.summarise_marts(settings)
    assert marts.calls == t["call_tasks"] - t["deleted"], (marts, t)
    assert marts.matched_to_session == t["live_calls_touchpoint_session"], (marts, t)
    assert not list(settings.landing_dir.rglob("demo-*")), "the demo's landing files are gone"
    assert all(f.exists() for f in mine.files), "your landing files are where you put them"


def test_the_summary_says_which_data_the_marts_hold(switched):
    _, _, mine, first, second = switched
    assert "data                        demo data (generated)" in first.stdout, first.stdout[-3000:]
    assert f"data                        your data: {len(mine.files)} landing file(s)" in second.stdout, \
        second.stdout[-3000:]
    assert "demo data (generated)" not in second.stdout
