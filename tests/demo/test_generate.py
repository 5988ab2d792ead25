"""The demo generator is deterministic and its recorded truth matches what it wrote."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

from calltrail.demo.generate import generate, iter_truth_tasks


def digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path):
    generate(tmp_path / "a", visitors=120, seed=3)
    generate(tmp_path / "b", visitors=120, seed=3)
    generate(tmp_path / "c", visitors=120, seed=4)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_truth_counts_match_the_files_written(tmp_path):
    truth = generate(tmp_path, visitors=600).as_dict()
    web_lines = [json.loads(x) for f in sorted((tmp_path / "web_events").glob("*.jsonl"))
                 for x in f.read_text().splitlines()]
    assert len(web_lines) == truth["web_rows_written"]
    assert sum(1 for r in web_lines if r["event_type"] == "page_view") >= truth["page_views"]
    tasks = (tmp_path / "salesforce" / "task" / "demo-tasks.jsonl").read_text().splitlines()
    assert len(tasks) == truth["task_records_written"]
    with (tmp_path / "salesforce" / "task" / "demo-task-updates.csv").open() as fh:
        assert sum(1 for _ in csv.DictReader(fh)) == truth["task_versions_in_updates"]
    per_task = list(iter_truth_tasks(tmp_path))
    assert len(per_task) == truth["tasks"]["call_tasks"]


def test_the_demo_covers_every_case_the_pipeline_must_handle(tmp_path):
    truth = generate(tmp_path, visitors=400).as_dict()
    tasks = truth["tasks"]
    for key in ("live_calls_matched", "live_calls_outside_window", "live_calls_no_session", "live_calls_missing",
                "live_calls_invalid_format", "live_calls_blank_type", "deleted",
                "live_calls_touchpoint_task_only_same_session"):
        assert tasks.get(key, 0) > 0, f"the demo has no {key}"
    assert truth["scenarios"]["call_in_window_then_form"] > 0 and truth["scenarios"]["call_gains_bizible_id_later"] > 0
    web = "".join(
        f.read_text() for f in (tmp_path / "web_events").glob("*.jsonl"))
    for marker in ("gclid=", "utm_medium=email", "utm_medium=paid_social", "https://www.google.com/",
                   "https://www.linkedin.com/feed/", "https://www.g2.example/", '"referrer_url":null'):
        assert marker in web, f"no visitor arrives with {marker}"
    assert truth["web_rows_bad"] and truth["web_duplicate_rows"] > 0
