"""Web event ingestion: formats, quarantine with reasons, idempotency, UTC."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from calltrail.web.ingest import ingest_web_events

BID = "7059e81415f34f7bbaf40fe32fdcba21"
COLUMNS = ["event_id", "bizible_id", "event_type", "occurred_at", "page_url", "referrer_url", "email", "form_url"]
GOOD = [
    {"event_id": "e1", "bizible_id": BID, "event_type": "page_view", "occurred_at": "2026-03-01T12:17:00Z",
     "page_url": "https://acme.example/?utm_source=google&gclid=abc", "referrer_url": "https://www.google.com/",
     "email": None, "form_url": None},
    {"event_id": "e2", "bizible_id": BID, "event_type": "form_submit", "occurred_at": "2026-03-01T13:20:00+01:00",
     "page_url": "https://acme.example/contact", "referrer_url": None, "email": "a@b.example",
     "form_url": "https://acme.example/contact"},
]


def write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".csv":
        import csv
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def lake(lake_dir: Path) -> list[tuple]:
    files = sorted(lake_dir.glob("web_events/file=*/events.parquet"))
    if not files:
        return []
    paths = ", ".join(f"'{p}'" for p in files)
    return duckdb.connect().execute(
        f"select event_id, occurred_at, event_type from read_parquet([{paths}]) order by event_id").fetchall()


def quarantine(lake_dir: Path) -> list[dict[str, object]]:
    rows = []
    for f in sorted(lake_dir.glob("quarantine/web_events/*.jsonl")):
        rows += [json.loads(line) for line in f.read_text().splitlines()]
    return rows


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_every_format_loads_the_same_events_in_utc(tmp_path, suffix):
    write(tmp_path / "landing" / f"events{suffix}", GOOD)
    report = ingest_web_events(tmp_path / "landing", tmp_path / "lake")
    assert lake(tmp_path / "lake") == [
        ("e1", datetime(2026, 3, 1, 12, 17), "page_view"),
        ("e2", datetime(2026, 3, 1, 12, 20), "form_submit"),
    ]
    assert report.total("rows_valid") == 2 and report.total("rows_quarantined") == 0


def test_bad_rows_are_quarantined_with_their_reasons_and_good_rows_still_load(tmp_path, caplog):
    bad = [
        {**GOOD[0], "event_id": "no-offset", "occurred_at": "2026-03-01T12:17:00"},
        {**GOOD[0], "event_id": "bad-date", "occurred_at": "2026-02-30T12:17:00Z"},
        {**GOOD[0], "event_id": "", "bizible_id": None},
        {**GOOD[0], "event_id": "bad-type", "event_type": "click"},
        {**GOOD[0], "event_id": "bad-id", "bizible_id": "not-a-cookie"},
        {**GOOD[0], "event_id": "no-page", "page_url": None},
    ]
    path = write(tmp_path / "landing" / "mixed.jsonl", GOOD + bad)
    with path.open("a") as fh:
        fh.write("{this is not json\n")
    ingest_web_events(tmp_path / "landing", tmp_path / "lake")
    assert [r[0] for r in lake(tmp_path / "lake")] == ["e1", "e2"]
    reasons = {q["row_number"]: q["reason"] for q in quarantine(tmp_path / "lake")}
    assert reasons == {
        3: "timestamp_without_offset:occurred_at",
        4: "invalid_timestamp:occurred_at",
        5: "missing_event_id;missing_bizible_id",
        6: "invalid_event_type",
        7: "invalid_bizible_id",
        8: "missing_page_url",
        9: "invalid_json",
    }
    assert json.loads(quarantine(tmp_path / "lake")[0]["record"])["event_id"] == "no-offset"
    # the log names the quarantine file where it is (before: the partition's scratch file, gone by then)
    [placed] = (tmp_path / "lake").glob("quarantine/web_events/*.jsonl")
    said = [r.getMessage() for r in caplog.records if "quarantined in" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(f"mixed.jsonl: 7 row(s) quarantined in {placed}: {{"), said


def test_upper_case_and_hyphenated_bizible_id_is_accepted_as_raw(tmp_path):
    hyphenated = "{7059E814-15F3-4F7B-BAF4-0FE32FDCBA21}"
    write(tmp_path / "landing" / "a.jsonl", [{**GOOD[0], "bizible_id": hyphenated}])
    ingest_web_events(tmp_path / "landing", tmp_path / "lake")
    assert [r[0] for r in lake(tmp_path / "lake")] == ["e1"]


def test_a_file_ingested_twice_adds_nothing_even_under_another_name(tmp_path):
    write(tmp_path / "landing" / "a.jsonl", GOOD)
    ingest_web_events(tmp_path / "landing", tmp_path / "lake")
    (tmp_path / "landing" / "copy-of-a.jsonl").write_bytes((tmp_path / "landing" / "a.jsonl").read_bytes())
    report = ingest_web_events(tmp_path / "landing", tmp_path / "lake")
    assert [f["status"] for f in report.files] == ["already_ingested", "already_ingested"]
    assert len(lake(tmp_path / "lake")) == 2


def test_reprocessing_a_file_replaces_its_partition_without_duplicates(tmp_path):
    write(tmp_path / "landing" / "a.jsonl", GOOD)
    ingest_web_events(tmp_path / "landing", tmp_path / "lake")
    ingest_web_events(tmp_path / "landing", tmp_path / "lake", reprocess=True)
    assert len(lake(tmp_path / "lake")) == 2


def test_event_ids_are_deduplicated_within_a_file_and_across_files(tmp_path):
    write(tmp_path / "landing" / "a.jsonl", GOOD + [GOOD[0]])
    write(tmp_path / "landing" / "b.csv", [GOOD[1], {**GOOD[0], "event_id": "e3"}])
    report = ingest_web_events(tmp_path / "landing", tmp_path / "lake")
    assert [r[0] for r in lake(tmp_path / "lake")] == ["e1", "e2", "e3"]
    assert [(f["duplicates_in_file"], f["duplicates_in_lake"]) for f in report.files] == [(1, 0), (0, 1)]


def test_an_unreadable_file_is_quarantined_whole_and_the_others_load(tmp_path):
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "broken.parquet").write_bytes(b"PAR1 not really")
    write(tmp_path / "landing" / "good.jsonl", GOOD)
    report = ingest_web_events(tmp_path / "landing", tmp_path / "lake")
    assert {f["file"]: f["status"] for f in report.files} == {"broken.parquet": "unreadable", "good.jsonl": "ingested"}
    assert [q["reason"] for q in quarantine(tmp_path / "lake")] == ["unreadable_file"]
    assert len(lake(tmp_path / "lake")) == 2


def test_a_malformed_csv_line_is_quarantined_with_its_line_number(tmp_path):
    path = write(tmp_path / "landing" / "a.csv", GOOD)
    with path.open("a") as fh:
        fh.write("e9,too,many,columns,in,this,row,for,the,header\n")
    ingest_web_events(tmp_path / "landing", tmp_path / "lake")
    q = quarantine(tmp_path / "lake")
    assert [(r["row_number"], r["reason"]) for r in q] == [(4, "malformed_csv_row: too many columns")]
    assert len(lake(tmp_path / "lake")) == 2


def test_unsupported_files_are_reported_and_left_in_place(tmp_path):
    write(tmp_path / "landing" / "a.jsonl", GOOD)
    (tmp_path / "landing" / "notes.txt").write_text("hello")
    report = ingest_web_events(tmp_path / "landing", tmp_path / "lake")
    assert ("notes.txt", "unsupported_format") in [(f["file"], f["status"]) for f in report.files]
    assert (tmp_path / "landing" / "notes.txt").exists()


def test_quarantine_files_keep_the_source_file_name_with_reasons_and_line_numbers(tmp_path):
    bad = {**GOOD[0], "event_id": "bad", "occurred_at": "2026-03-01T12:17:00"}
    write(tmp_path / "landing" / "events-0301.csv", [GOOD[0], bad])
    write(tmp_path / "landing" / "events-0302.jsonl", [{**GOOD[1], "event_type": "scroll"}])
    ingest_web_events(tmp_path / "landing", tmp_path / "lake")
    files = sorted(p.name for p in (tmp_path / "lake" / "quarantine" / "web_events").iterdir())
    assert [name.split(".")[0] for name in files] == ["events-0301", "events-0302"], files
    assert all(name.startswith(("events-0301.csv.", "events-0302.jsonl.")) for name in files), files
    rows = {(q["source_file"], q["row_number"], q["reason"]) for q in quarantine(tmp_path / "lake")}
    assert rows == {("events-0301.csv", 3, "timestamp_without_offset:occurred_at"),
                    ("events-0302.jsonl", 1, "invalid_event_type")}
