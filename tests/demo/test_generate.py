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


def test_call_share_sets_the_share_of_visitors_who_call(tmp_path):
    visitors = 3000
    demo = generate(tmp_path / "demo", visitors=visitors).as_dict()
    third = generate(tmp_path / "third", visitors=visitors, call_share=0.33).as_dict()
    nobody = generate(tmp_path / "none", visitors=visitors, call_share=0.0).as_dict()

    def calling(truth):
        return sum(n for s, n in truth["scenarios"].items() if s not in ("browse_only", "form_only")) / visitors

    assert abs(calling(demo) - 0.64) < 0.03
    assert abs(calling(third) - 0.33) < 0.03
    assert calling(nobody) == 0 and nobody["tasks"].get("call_tasks", 0) == 0
    # Fewer callers, fewer Tasks; the visitors who do not call keep their mix (browse : form = 26 : 10).
    assert third["tasks"]["call_tasks"] < 0.6 * demo["tasks"]["call_tasks"]
    assert abs(third["scenarios"]["browse_only"] / third["scenarios"]["form_only"] - 2.6) < 0.4
    recorded = json.loads((tmp_path / "third" / "_demo" / "truth.json").read_text())
    assert recorded["call_share"] == 0.33


def test_a_call_share_outside_0_to_1_is_refused_before_anything_is_cleared(tmp_path):
    import pytest

    generate(tmp_path, visitors=50)
    before = digest(tmp_path)
    with pytest.raises(ValueError, match="call_share must be between 0 and 1"):
        generate(tmp_path, visitors=50, call_share=1.5)
    assert digest(tmp_path) == before


def test_calltrail_demo_takes_a_call_share_and_refuses_one_outside_0_to_1(tmp_path):
    from tests.airflow_env import BIN, calltrail_env, run

    env = calltrail_env(tmp_path)
    ok = run([str(BIN / "calltrail"), "demo", "--visitors", "40", "--call-share", "0.2"], env)
    assert ok.returncode == 0, ok.stderr
    truth = json.loads((tmp_path / "data" / "landing" / "_demo" / "truth.json").read_text())
    assert truth["visitors"] == 40 and truth["call_share"] == 0.2
    bad = run([str(BIN / "calltrail"), "demo", "--visitors", "40", "--call-share", "64"], env)
    assert bad.returncode == 2 and "--call-share must be between 0 and 1, got 64.0" in bad.stderr
