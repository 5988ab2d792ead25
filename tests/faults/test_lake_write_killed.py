"""The process killed (SIGKILL) while it writes a lake partition from a landing file."""

from __future__ import annotations

import json

from calltrail import settings as settings_module
from tests.airflow_env import calltrail_env
from tests.faults.helpers import (
    backdate,
    kill_group,
    lake_event_ids,
    quarantined,
    run_python,
    start_python,
    wait_for,
    write_events,
)

# What the web-events ingestion task of the DAG runs.
INGEST = ("import json; from calltrail import settings; from calltrail.tasks import ingest; "
          "print(json.dumps(ingest.ingest_web_events(settings.load())))")


def test_a_kill_during_a_partition_write_leaves_no_partial_partition_and_the_next_run_loads_everything(tmp_path):
    env = calltrail_env(tmp_path)
    s = settings_module.load(env)
    small = write_events(s.web_landing_dir / "a-small.jsonl", 1_000, prefix="a")
    big = write_events(s.web_landing_dir / "b-big.jsonl", 400_000, prefix="b")
    with (s.web_landing_dir / "b-big.jsonl").open("a") as fh:  # two rows for the quarantine
        fh.write('{"event_id": "bad-1", "event_type": "click"}\n{not json\n')
    for f in s.web_landing_dir.iterdir():
        backdate(f)  # delivered an hour ago: complete

    proc = start_python(INGEST, env)
    scratch = s.lake_dir / ".tmp"
    # a-small.jsonl is in the lake, and the Parquet file of b-big.jsonl is being written
    wait_for(lambda: len(lake_event_ids(s.lake_dir)) == len(small) and list(scratch.glob("*/events.parquet")),
             proc, "the second file's Parquet file was being written")
    kill_group(proc)
    assert proc.returncode == -9, f"expected the ingestion killed mid-write, it ended with {proc.returncode}"

    seen = lake_event_ids(s.lake_dir)
    assert seen == small, (f"after the kill the lake's readers should see only the first file's {len(small)} "
                           f"events, saw {len(seen)}")
    partitions = sorted(p.name for p in (s.lake_dir / "web_events").iterdir())
    assert len(partitions) == 1, f"one partition (the first file's) expected, found {partitions}"
    assert quarantined(s.lake_dir) == [], "no quarantine of a file that is not in the lake"

    again = run_python(INGEST, env)
    assert again.returncode == 0, again.stderr[-3000:]
    report = json.loads(again.stdout.splitlines()[-1])
    assert {f["file"]: f["status"] for f in report["files"]} == {
        "a-small.jsonl": "already_ingested", "b-big.jsonl": "ingested"}, report["files"]
    assert lake_event_ids(s.lake_dir) == sorted(small + big), "the next run must load every event exactly once"
    assert [(q["source_file"], q["row_number"]) for q in quarantined(s.lake_dir)] == [
        ("b-big.jsonl", 400_001), ("b-big.jsonl", 400_002)], "the second file's bad rows, quarantined once"
    left = sorted(p.name for p in scratch.iterdir()) if scratch.exists() else []
    assert left == [], f"the killed run's scratch files should be cleared by the next run, found {left}"
