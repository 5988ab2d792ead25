"""The same landing file delivered twice: the same bytes under another name, and the same name
again. It is ingested once: no duplicate rows in the lake or in staging."""

from __future__ import annotations

import json
import shutil

import duckdb

from calltrail import settings as settings_module
from calltrail import summary
from calltrail.tasks import ingest
from calltrail.transform.dbt import run_dbt
from tests.airflow_env import calltrail_env
from tests.faults.helpers import task, write_events


def by_file(result: dict) -> dict[str, tuple[str, str | None]]:
    return {f["file"]: (f["status"], f.get("same_content_as")) for f in result["files"]}


def test_a_file_delivered_twice_under_another_name_and_again_under_its_own_is_ingested_once(tmp_path):
    s = settings_module.load(calltrail_env(tmp_path, CALLTRAIL_LANDING_SETTLE_SECONDS="0"))
    events = write_events(s.web_landing_dir / "events-0301.jsonl", 500)
    shutil.copyfile(s.web_landing_dir / "events-0301.jsonl", s.web_landing_dir / "events-0301 (1).jsonl")
    s.task_landing_dir.mkdir(parents=True)
    tasks = "".join(json.dumps(task(n)) + "\n" for n in range(40))
    (s.task_landing_dir / "tasks.jsonl").write_text(tasks)
    (s.task_landing_dir / "tasks-resent.jsonl").write_text(tasks)

    web_first, task_first = ingest.ingest_web_events(s), ingest.ingest_task_files(s)
    assert by_file(web_first) == {"events-0301 (1).jsonl": ("ingested", None),
                                  "events-0301.jsonl": ("already_ingested", "events-0301 (1).jsonl")}
    assert by_file(task_first) == {"tasks-resent.jsonl": ("ingested", None),
                                   "tasks.jsonl": ("already_ingested", "tasks-resent.jsonl")}

    # The sender uploads both files again under their own names (same bytes, new modification time).
    for path in (s.web_landing_dir / "events-0301.jsonl", s.task_landing_dir / "tasks.jsonl"):
        path.write_bytes(path.read_bytes())
    web_again, task_again = ingest.ingest_web_events(s), ingest.ingest_task_files(s)
    assert {f: st for f, (st, _) in by_file(web_again).items()} == {
        "events-0301 (1).jsonl": "already_ingested", "events-0301.jsonl": "already_ingested"}
    assert {f: st for f, (st, _) in by_file(task_again).items()} == {
        "tasks-resent.jsonl": "already_ingested", "tasks.jsonl": "already_ingested"}
    assert web_again["rows_valid"] == 0 and task_again["rows_valid"] == 0

    lake = summary.summarise(s.lake_dir)
    assert (lake.web_files, lake.web_events) == (1, 500), "one partition, each event once"
    assert (lake.task_versions, lake.tasks) == (40, 40), "each Task version once"

    run_dbt(s, ["run", "--select", "stg_web__events", "stg_salesforce__task_versions", "stg_salesforce__tasks"], in_process=True)
    con = duckdb.connect(str(s.warehouse), read_only=True)
    try:
        web = con.execute("select count(*), count(distinct event_id) from stg_web__events").fetchone()
        versions = con.execute("select count(*) from stg_salesforce__task_versions").fetchone()[0]
        staged = con.execute("select count(*), count(distinct task_id) from stg_salesforce__tasks").fetchone()
    finally:
        con.close()
    assert web == (len(events), len(events)), f"staging should hold {len(events)} distinct events once, got {web}"
    assert versions == 40, f"staging should hold 40 Task versions, got {versions}"
    assert staged == (40, 40), f"staging should hold 40 Tasks once, got {staged}"
