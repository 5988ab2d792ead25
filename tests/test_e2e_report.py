"""The report page of the demo run (the shared ``demo_run`` fixture: no run of its own), opened
from ``file://`` in a real headless Chromium with every request to another host blocked and
counted. Every number is read from the page's DOM and compared with the warehouse, queried here
with SQL of the test's own (never with the generator's code). One screenshot goes to the docs."""

from __future__ import annotations

import json
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.airflow_env import BIN, run
from tests.offline_browser import block_remote, chromium

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "report.png"
CHARTS = ("channels", "subchannels", "types", "campaigns", "revenue", "trend_match_rate", "trend_missing",
          "trend_quarantine", "not_merged", "outside_minutes", "journey")
OTHER_MODEL = "u_shaped"  # the page opens on full_path (CALLTRAIL_SUMMARY_MODEL's default)

# Everything the page shows: the tables as text (by their data-table and data-key), the charts'
# SVG marks, what the journey search found.
READ = """() => {
  const tables = {};
  document.querySelectorAll('table[data-table]').forEach((t) => {
    if (t.hidden) return;
    tables[t.getAttribute('data-table')] = [...t.tBodies[0].rows].map((r) => ({
      key: r.getAttribute('data-key'), cells: [...r.cells].map((c) => c.innerText.trim())}));
  });
  const charts = {};
  document.querySelectorAll('[data-chart]').forEach((el) => {
    const svg = el.querySelector('svg');
    const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    charts[el.getAttribute('data-chart')] = {
      rendered: el.getAttribute('data-rendered'), error: el.getAttribute('data-error'),
      width: box.width, height: box.height,
      bars: el.querySelectorAll('g.mark-rect.role-mark path').length,
      points: el.querySelectorAll('g.mark-symbol.role-mark path').length,
      lines: el.querySelectorAll('g.mark-line.role-mark path').length,
      rules: el.querySelectorAll('g.mark-rule.role-mark line').length,
    };
  });
  return {tables, charts, title: document.getElementById('journey-title')?.innerText || '',
          status: document.getElementById('journey-status')?.innerText || '',
          tiles: Object.fromEntries([...document.querySelectorAll('[data-tile]')].map(
            (t) => [t.getAttribute('data-tile'), t.querySelector('.value').innerText])),
          text: document.body.innerText};
}"""


def _n(text: str) -> int:
    return int(text.replace(",", ""))


def _money(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def _pct(value) -> str:
    return f"{100 * value:.1f}%"


@pytest.fixture(scope="module")
def warehouse(demo_run):
    tmp, _, _, _ = demo_run
    con = duckdb.connect(str(tmp / "data" / "warehouse" / "calltrail.duckdb"), read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="module")
def picks(warehouse):
    """Journeys the test searches for: the newest opportunity (by its latest touchpoint) and a
    BizibleId of the newest person with a web touchpoint (the page carries the newest 30 of each)."""
    opportunity = warehouse.execute("""
        select a.opportunity_id from published.fct_attribution as a
        join published.fct_touchpoints as t on a.touchpoint_id = t.touchpoint_id
        where a.model = 'full_path' group by 1 order by max(t.touchpoint_at) desc, 1 limit 1""").fetchone()[0]
    person, bizible_id = warehouse.execute("""
        with newest as (
            select person_id, max(touchpoint_at) as last_at from published.fct_touchpoints
            where person_id is not null group by 1 order by last_at desc, person_id limit 30
        )
        select newest.person_id, min(t.bizible_id) from newest
        join published.fct_touchpoints as t on t.person_id = newest.person_id and t.touchpoint_origin <> 'task_only'
        group by newest.person_id, newest.last_at order by newest.last_at desc, newest.person_id limit 1""").fetchone()
    return {"opportunity": opportunity, "person": person, "bizible_id": bizible_id}


@pytest.fixture(scope="module")
def seen(demo_run, picks):
    """One browser for the module: the page as it opens, after the model switch, after two searches."""
    tmp, _, _, _ = demo_run
    index = tmp / "data" / "report" / "index.html"
    assert index.exists(), "the publish of the demo run did not write the report page"
    out: dict = {"folder_bytes": sum(p.stat().st_size for p in index.parent.rglob("*") if p.is_file())}
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1500})
        blocked = block_remote(context)
        page = context.new_page()
        failed: list[str] = []
        errors: list[str] = []
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(index.as_uri(), wait_until="load", timeout=90_000)
        page.wait_for_selector("body[data-charts=done]", timeout=90_000)
        out["open"] = page.evaluate(READ)
        page.screenshot(path=str(SCREENSHOT))  # the top of the page: the headline, channels, types
        page.select_option("#model", OTHER_MODEL)
        page.wait_for_function("document.querySelector('[data-chart=revenue]').getAttribute('data-rendered') === 'yes'"
                               " && document.querySelector('table[data-model=u_shaped]').hidden === false")
        out["switched"] = page.evaluate(READ)
        for name in ("opportunity", "bizible_id"):
            page.fill("#journey-search", picks[name])
            page.wait_for_function(f"document.querySelector('table[data-table=journey]').getAttribute('data-journey')"
                                   f".endsWith({json.dumps(picks['opportunity' if name == 'opportunity' else 'person'])})"
                                   " && document.querySelector('[data-chart=journey]').getAttribute('data-rendered')"
                                   " === 'yes'")
            out[name] = page.evaluate(READ)
        page.fill("#journey-search", "0" * 32)
        out["not_found"] = page.evaluate(READ)
        context.close()
    out.update(blocked=blocked, failed=failed, errors=errors)
    return out


def test_the_page_loads_offline_from_file_with_no_request_leaving_the_machine(seen):
    assert seen["blocked"] == [], f"expected no request to leave the machine, saw {seen['blocked']}"
    assert seen["failed"] == [] and seen["errors"] == [], (seen["failed"], seen["errors"])
    assert seen["folder_bytes"] < 5_000_000, f"the page and its assets take {seen['folder_bytes']:,} bytes"


def test_every_chart_is_drawn_as_a_non_empty_svg(seen, warehouse):
    charts = seen["open"]["charts"]
    assert set(charts) == set(CHARTS), charts
    for name, c in charts.items():
        assert c["rendered"] == "yes" and c["error"] is None, (name, c)
        assert c["width"] > 100 and c["height"] > 30, (name, c)
        assert c["bars"] + c["points"] + c["lines"] > 0, (name, c)
    channels = warehouse.execute("select count(distinct marketing_channel) from published.rpt_touchpoints_by_channel"
                                 ).fetchone()[0]
    assert charts["channels"]["bars"] == 2 * channels, "a bar for touchpoints and one for calls per channel"
    assert charts["trend_match_rate"]["lines"] == 1 and charts["trend_match_rate"]["points"] >= 1


def test_the_headline_and_the_channel_type_and_campaign_tables_are_the_marts(seen, warehouse):
    page = seen["open"]
    rates = warehouse.execute("select calls, calls_matched_to_session, match_rate, missing_bizible_id_rate "
                              "from published.rpt_call_match_rates").fetchone()
    touchpoints = warehouse.execute("select count(*) from published.fct_touchpoints").fetchone()[0]
    assert page["tiles"] == {"calls": f"{rates[0]:,}", "matched": f"{rates[1]:,}", "match_rate": _pct(rates[2]),
                             "missing": _pct(rates[3]), "touchpoints": f"{touchpoints:,}"}

    def table(name):
        return {r["key"]: [_n(c) for c in r["cells"][-2:]] for r in page["tables"][name]}

    task_only = dict(warehouse.execute("select marketing_channel, count(*) from published.fct_touchpoints "
                                       "where touchpoint_origin = 'task_only' group by 1").fetchall())
    expected = {c: [tp, calls, task_only.get(c, 0)] for c, tp, calls in warehouse.execute(
        "select marketing_channel, sum(touchpoints), sum(calls) from published.rpt_touchpoints_by_channel group by 1"
    ).fetchall()}
    assert {r["key"]: [_n(c) for c in r["cells"][1:]] for r in page["tables"]["channels"]} == expected
    assert f"Other holds {task_only['Other']:,} task-only touchpoint(s)" in page["text"]
    expected = {t: [tp, calls] for t, tp, calls in warehouse.execute(
        "select touchpoint_type, sum(touchpoints), sum(calls) from published.rpt_touchpoints_by_channel group by 1"
    ).fetchall()}
    assert table("types") == expected
    expected = {f"{c} / {s or '(none)'}": [tp, tasks] for c, s, tp, tasks in warehouse.execute(
        "select marketing_channel, marketing_subchannel, count(*), count(task_id) from published.fct_touchpoints "
        "group by 1, 2").fetchall()}
    assert table("subchannels") == expected
    campaigns = {c or "(no campaign)": [tp, tasks] for c, tp, tasks in warehouse.execute(
        "select campaign, count(*), count(task_id) from published.fct_touchpoints group by 1").fetchall()}
    shown = table("campaigns")
    assert len(shown) == min(20, len(campaigns)) and all(campaigns[k] == v for k, v in shown.items()), shown
    assert min(v[0] for v in shown.values()) >= max([v[0] for k, v in campaigns.items() if k not in shown] or [0])
    if len(campaigns) > 20:
        rest = sum(v[0] for k, v in campaigns.items() if k not in shown)
        assert f"{len(campaigns) - 20:,} more campaign(s) with {rest:,} touchpoint(s)" in page["text"]


def _revenue(warehouse, model: str) -> dict[str, list[Decimal]]:
    rows = warehouse.execute(
        "select marketing_channel, currency_iso_code, coalesce(sum(attributed_pipeline), 0), "
        "coalesce(sum(attributed_won_revenue), 0) from published.rpt_revenue_by_channel "
        "where grouped_by = 'channel' and model = ? group by 1, 2", [model]).fetchall()
    return {f"{c} / {cur}": [Decimal(str(p)).quantize(Decimal("0.01")), Decimal(str(w)).quantize(Decimal("0.01"))]
            for c, cur, p, w in rows}


def test_revenue_by_channel_follows_the_model_switch(seen, warehouse):
    for state, model in (("open", "full_path"), ("switched", OTHER_MODEL)):
        shown = {r["key"]: [_money(c) for c in r["cells"][2:]] for r in seen[state]["tables"]["revenue"]}
        expected = _revenue(warehouse, model)
        assert shown == expected, (model, shown, expected)
        assert seen[state]["charts"]["revenue"]["bars"] == 2 * len(expected), model
    assert _revenue(warehouse, "full_path") != _revenue(warehouse, OTHER_MODEL), "the switch must show other numbers"


def test_the_trend_table_is_the_run_history_and_its_latest_figures_are_the_published_ones(seen, warehouse, demo_run):
    tmp, _, _, _ = demo_run
    history = warehouse.execute("""
        select run_id, max(case when metric = 'match_rate_all' then value end),
               max(case when metric = 'missing_bizible_id_share_all' then value end),
               max(case when metric = 'quarantined_rows_new' then value end), max(measured_at)
        from quality.run_metrics group by run_id order by 5""").fetchall()
    shown = seen["open"]["tables"]["trend"]
    assert [r["key"] for r in shown] == [h[0] for h in history]
    for row, (_, match_rate, missing, quarantined, _) in zip(shown, history, strict=True):
        assert row["cells"][3:] == [_pct(match_rate), _pct(missing), f"{int(quarantined):,}"], row
    published = warehouse.execute("select match_rate, missing_bizible_id_rate from published.rpt_call_match_rates"
                                  ).fetchone()
    assert shown[-1]["cells"][3:5] == [_pct(published[0]), _pct(published[1])]
    lake_quarantine = sum(1 for p in (tmp / "data" / "lake" / "quarantine").rglob("*.jsonl")
                          for line in p.read_text().splitlines() if line.strip())
    assert lake_quarantine > 0 and _n(shown[0]["cells"][5]) == lake_quarantine, "the first run quarantined them all"
    assert seen["open"]["charts"]["trend_quarantine"]["points"] == len(history)


def test_why_calls_did_not_merge_counts_minutes_and_newest_examples(seen, warehouse):
    tables = seen["open"]["tables"]
    r = warehouse.execute("select calls_outside_window, calls_without_session, calls_within_window - "
                          "calls_matched_to_session, calls_missing_bizible_id, calls_invalid_bizible_id "
                          "from published.rpt_call_match_rates").fetchone()
    assert [(row["key"], _n(row["cells"][1])) for row in tables["not_merged"]] == list(zip(
        ("outside_window", "no_session", "session_converted", "missing", "invalid_format"), r, strict=True))
    assert all(r), f"the demo shows every reason: {r}"
    seconds = [s for (s,) in warehouse.execute(
        "select seconds_after_session_start from published.fct_touchpoints "
        "where touchpoint_origin = 'task_only' and match_status = 'outside_window'").fetchall()]
    assert seconds and all(s is not None and s > 30 * 60 for s in seconds), "outside the 30-minute window"
    edges = [30, 60, 120, 240, 480, 1440, 2880, 10080]
    buckets = Counter(next((i for i, high in enumerate(edges[1:]) if s / 60 <= high), len(edges) - 1)
                      for s in seconds)
    assert [_n(row["cells"][1]) for row in tables["outside_minutes"]] == [buckets[i] for i in range(len(edges))]
    newest = [t for (t,) in warehouse.execute(
        "select task_id from published.fct_touchpoints where touchpoint_origin = 'task_only' "
        "and match_status = 'outside_window' order by touchpoint_at desc, task_id limit 10").fetchall()]
    assert [row["key"] for row in tables["examples_outside_window"]] == newest
    missing = [t for (t,) in warehouse.execute(
        "select task_id from published.dq_calls_missing_bizible_id where reason = 'missing' "
        "order by call_at desc nulls last, task_id limit 10").fetchall()]
    assert [row["key"] for row in tables["examples_missing"]] == missing


def test_a_journey_found_by_opportunity_and_by_bizible_id_shows_its_touchpoints_positions_and_time_line(
        seen, warehouse, picks):
    opportunity = warehouse.execute("""
        select t.touchpoint_id, a.opportunity_positions, a.credit from published.fct_attribution as a
        join published.fct_touchpoints as t on a.touchpoint_id = t.touchpoint_id
        where a.model = 'full_path' and a.opportunity_id = ? order by t.touchpoint_at, t.touchpoint_id""",
                                    [picks["opportunity"]]).fetchall()
    rows = seen["opportunity"]["tables"]["journey"]
    assert [(r["key"], r["cells"][1]) for r in rows] == [(tp, positions or "") for tp, positions, _ in opportunity[:60]]
    assert all(abs(float(r["cells"][9]) - float(credit)) < 0.00006 for r, (_, _, credit) in zip(
        rows, opportunity[:60], strict=True)), rows
    assert picks["opportunity"] in seen["opportunity"]["title"]
    assert seen["opportunity"]["charts"]["journey"]["points"] == len(opportunity[:60])

    person = warehouse.execute("""
        select touchpoint_id, touchpoint_position, touchpoint_type from published.fct_touchpoints
        where person_id = ? order by touchpoint_at, touchpoint_id""", [picks["person"]]).fetchall()
    rows = seen["bizible_id"]["tables"]["journey"]
    assert [(r["key"], r["cells"][1], r["cells"][2]) for r in rows] == [tuple(p) for p in person[:60]]
    assert re.search(rf"person {re.escape(picks['person'])}: {len(person[:60])} touchpoint", seen["bizible_id"]["title"])
    assert seen["bizible_id"]["charts"]["journey"]["points"] == len(person[:60])
    assert "no journey on this page for " + "0" * 32 in seen["not_found"]["status"]


def test_a_screenshot_of_the_page_is_in_the_docs_and_the_readme_shows_it(seen):
    assert SCREENSHOT.stat().st_size > 20_000
    assert "docs/report.png" in (ROOT / "README.md").read_text()


def test_make_run_ends_with_where_the_report_page_is(demo_run):
    tmp, _, first, _ = demo_run
    index = tmp / "data" / "report" / "index.html"
    tail = [line.strip() for line in first.stdout.strip().splitlines()[-4:]]
    assert tail[0] == "calltrail: the report page" and tail[2] == index.as_uri(), first.stdout[-2000:]
    assert tail[3].startswith("written ") and "Browse > calltrail report" in tail[3], tail
    assert "by an earlier run" not in first.stdout


def test_calltrail_report_writes_the_page_again_from_what_is_published(demo_run, seen):
    tmp, env, _, _ = demo_run
    index = tmp / "data" / "report" / "index.html"
    before = index.stat().st_mtime_ns
    out = run([str(BIN / "calltrail"), "report"], env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert f"report page written: {index.as_uri()}" in out.stdout
    assert "report page written" not in out.stderr, out.stderr  # said once, not again as a log line
    assert index.stat().st_mtime_ns > before
    assert 'data-chart="journey"' in index.read_text()
