"""A landing file still being written while ingestion runs: never ingested half."""

from __future__ import annotations

import json
import time

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

INGEST = ("import json; from calltrail import settings; from calltrail.tasks import ingest; "
          "print(json.dumps(ingest.ingest_web_events(settings.load())))")

# A sender that uploads events slowly: each line in two writes, so the file often ends mid-line.
# It stops after the line it is writing when the stop file appears, and prints how many it wrote.
WRITER = """
import json, sys, time
from pathlib import Path
from tests.faults.helpers import event
path, stop, pause = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
n = 0
with path.open("w") as fh:
    while not stop.exists():
        line = json.dumps(event(n, "w"))
        fh.write(line[:40]); fh.flush(); time.sleep(pause)
        fh.write(line[40:] + "\\n"); fh.flush(); time.sleep(pause)
        n += 1
    fh.flush()
    final = path.with_name(sys.argv[4]) if len(sys.argv) > 4 else None
if final:
    path.rename(final)
print(n, flush=True)
"""


def ingest(env: dict[str, str]) -> dict:
    done = run_python(INGEST, env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def statuses(report: dict) -> dict[str, str]:
    return {f["file"]: f["status"] for f in report["files"]}


def start_writer(env: dict[str, str], path, stop, final: str | None = None, pause: float = 0.01):
    import subprocess
    import sys

    from tests.airflow_env import BIN

    path.parent.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-c", WRITER, str(path), str(stop), str(pause), *([final] if final else [])]
    return subprocess.Popen(args, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=BIN.parent.parent, start_new_session=True)


def test_a_file_a_sender_is_still_appending_to_is_left_alone_and_ingested_whole_once_it_is_complete(tmp_path):
    env = calltrail_env(tmp_path, CALLTRAIL_LANDING_SETTLE_SECONDS="2")
    s = settings_module.load(env)
    done = write_events(s.web_landing_dir / "done.jsonl", 100, prefix="d")
    backdate(s.web_landing_dir / "done.jsonl")
    live, stop = s.web_landing_dir / "live.jsonl", tmp_path / "stop"
    writer = start_writer(env, live, stop)
    try:
        wait_for(lambda: live.exists() and live.stat().st_size > 2000, writer, "the sender has written a few lines")
        during = ingest(env)
        assert writer.poll() is None, "the sender must still be writing while ingestion ran"
    finally:
        stop.touch()
    written = int(writer.communicate(timeout=30)[0].strip())
    assert writer.returncode == 0

    assert statuses(during) == {"done.jsonl": "ingested", "live.jsonl": "still_being_written"}, during["files"]
    assert lake_event_ids(s.lake_dir) == done, "nothing of the file being written may reach the lake"
    assert quarantined(s.lake_dir) == [], "a line cut mid-write must not be quarantined as bad data"

    after = ingest(env)
    assert statuses(after) == {"done.jsonl": "already_ingested", "live.jsonl": "ingested"}, after["files"]
    wrote = [f"w{n:08d}" for n in range(written)]
    assert lake_event_ids(s.lake_dir) == sorted(done + wrote), \
        f"the complete file's {written} events and the first file's {len(done)} expected once each"
    assert quarantined(s.lake_dir) == []


def test_a_slow_sender_that_pauses_between_writes_is_seen_by_the_settle_time_and_left_alone(tmp_path):
    # Half a line every 0.7 s: the conversion of a few lines takes far less, so only the watch over
    # the settle time (3 s) sees the file change.
    env = calltrail_env(tmp_path, CALLTRAIL_LANDING_SETTLE_SECONDS="3")
    s = settings_module.load(env)
    live, stop = s.web_landing_dir / "slow.jsonl", tmp_path / "stop"
    writer = start_writer(env, live, stop, pause=0.7)
    try:
        wait_for(lambda: live.exists() and live.stat().st_size > 600, writer, "the sender has written two lines")
        during = ingest(env)
        assert writer.poll() is None, "the sender must still be writing while ingestion ran"
    finally:
        stop.touch()
    written = int(writer.communicate(timeout=30)[0].strip())
    [entry] = during["files"]
    assert (entry["file"], entry["status"]) == ("slow.jsonl", "still_being_written"), entry
    assert entry["detail"].startswith("changed while calltrail watched it for"), entry
    assert lake_event_ids(s.lake_dir) == [] and quarantined(s.lake_dir) == []

    time.sleep(3)
    after = ingest(env)
    assert statuses(after) == {"slow.jsonl": "ingested"}, after["files"]
    assert lake_event_ids(s.lake_dir) == [f"w{n:08d}" for n in range(written)]


def test_a_file_that_changes_while_it_is_converted_is_discarded_and_ingested_whole_on_the_next_run(tmp_path):
    env = calltrail_env(tmp_path, CALLTRAIL_LANDING_SETTLE_SECONDS="2")
    s = settings_module.load(env)
    path = s.web_landing_dir / "resumed.jsonl"
    first = write_events(path, 400_000, prefix="r")
    backdate(path)  # unchanged for an hour: the sender paused, and resumes while calltrail reads it
    proc = start_python(INGEST, env)
    try:
        wait_for(lambda: list((s.lake_dir / ".tmp").glob("*/events.parquet")), proc, "the conversion started")
        more = [json.dumps({"event_id": f"x{n}", "bizible_id": f"{n:032x}", "event_type": "page_view",
                            "occurred_at": "2026-03-02T10:00:00Z", "page_url": "https://www.acme.example/"})
                for n in range(3)]
        with path.open("a") as fh:
            fh.write("\n".join(more) + "\n")
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.returncode is None:
            kill_group(proc)
    assert proc.returncode == 0, err[-3000:]
    report = json.loads(out.splitlines()[-1])
    assert statuses(report) == {"resumed.jsonl": "still_being_written"}, report["files"]
    assert lake_event_ids(s.lake_dir) == [], "the partition of a file that changed under the reader must not appear"

    time.sleep(2)
    after = ingest(env)
    assert statuses(after) == {"resumed.jsonl": "ingested"}, after["files"]
    assert lake_event_ids(s.lake_dir) == sorted(first + [f"x{n}" for n in range(3)])
    assert quarantined(s.lake_dir) == []


def test_a_file_written_under_a_temporary_name_is_read_only_after_the_rename_without_waiting(tmp_path):
    env = calltrail_env(tmp_path, CALLTRAIL_LANDING_SETTLE_SECONDS="0")
    s = settings_module.load(env)
    part, stop = s.web_landing_dir / "upload.jsonl.part", tmp_path / "stop"
    writer = start_writer(env, part, stop, final="upload.jsonl")
    try:
        wait_for(lambda: part.exists() and part.stat().st_size > 2000, writer, "the sender has written a few lines")
        during = ingest(env)
        assert writer.poll() is None, "the sender must still be writing while ingestion ran"
    finally:
        stop.touch()
    written = int(writer.communicate(timeout=30)[0].strip())
    assert during["files"] == [], f"a *.part file is neither read nor reported, got {during['files']}"
    assert lake_event_ids(s.lake_dir) == []

    after = ingest(env)
    assert statuses(after) == {"upload.jsonl": "ingested"}, after["files"]
    assert lake_event_ids(s.lake_dir) == [f"w{n:08d}" for n in range(written)]
