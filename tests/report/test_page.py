"""The report page's generator on a small hand-made publish schema (no pipeline run): a warehouse
without the revenue marts and without run history says so, text from the data cannot break out of
the page, and the page loads nothing from another host."""

from __future__ import annotations

import re

import duckdb

from calltrail import settings as settings_module
from calltrail.report import page
from tests.airflow_env import calltrail_env

HOSTILE = "</script><script>alert(1)</script>"

PUBLISHED = f"""
create schema published;
create table published.rpt_call_match_rates as select
    10 as tasks, 8 as calls, 6 as calls_with_valid_bizible_id, 1 as calls_missing_bizible_id,
    1 as calls_invalid_bizible_id, 3 as calls_matched_to_session, 3 as calls_task_only, 4 as calls_within_window,
    1 as calls_outside_window, 1 as calls_without_session, 0.5 as match_rate, 0.25 as missing_bizible_id_rate;
create table published.fct_touchpoints (
    touchpoint_id varchar, touchpoint_origin varchar, task_id varchar, session_id varchar, bizible_id varchar,
    person_id varchar, touchpoint_type varchar, marketing_channel varchar, marketing_subchannel varchar,
    touchpoint_source varchar, campaign varchar, ad_content varchar, touchpoint_at timestamp,
    touchpoint_position varchar, match_status varchar, seconds_after_session_start bigint);
insert into published.fct_touchpoints values
    ('tp1', 'task_in_session', 'T1', 's1', '{"a" * 32}', 'P1', 'Call', 'Paid Search', 'Google', 'google',
     '{HOSTILE}', null, '2026-11-02 10:10:00', 'FT, LC', 'matched', 600),
    ('tp2', 'task_only', 'T2', null, '{"a" * 32}', 'P1', 'Call', 'Other', null, 'CRM Activity',
     null, 'Inbound call', '2026-11-03 12:00:00', 'Post LC', 'outside_window', 3000),
    ('tp3', 'web_visit', null, 's3', '{"b" * 32}', null, 'Web Visit', 'Direct', null, 'Web Direct',
     null, null, '2026-11-04 09:00:00', 'FT', null, null);
create table published.rpt_touchpoints_by_channel as
    select marketing_channel, touchpoint_type, count(*) as touchpoints, count(task_id) as calls
    from published.fct_touchpoints group by 1, 2;
create table published.dq_calls_missing_bizible_id as select
    'T9' as task_id, '' as bizible_id_raw, 'missing' as reason, 'Call' as task_type, 'no id' as subject,
    timestamp '2026-11-05 08:00:00' as call_at;
"""


def test_without_revenue_marts_and_history_the_page_says_so_and_escapes_what_the_data_holds(tmp_path):
    s = settings_module.load(calltrail_env(tmp_path))
    s.warehouse.parent.mkdir(parents=True)
    con = duckdb.connect(str(s.warehouse))
    con.execute(PUBLISHED)
    con.close()

    written = page.write(s)

    text = written.index.read_text()
    assert 'data-note="revenue-not-built"' in text and "are not built yet" in text
    assert "No run has recorded its figures yet." in text
    assert HOSTILE not in text, "text from the data must not close the page's script"
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in text  # in the campaign table
    assert re.search(r'<tr data-key="30 min to 60 min"><td>30 min to 60 min</td><td>1</td></tr>', text)
    assert '<tr data-key="T9">' in text  # the newest example of a call missing its BizibleId
    sources = re.findall(r'(?:src|href)="([^"#]+)"', text)
    assert sources and all(src.startswith("assets/") for src in sources), sources
    for src in sources:
        assert (written.index.parent / src).stat().st_size > 0, src
    assert (written.index.parent / "assets" / "vega-lite-5.23.0.LICENSE").exists()


def test_before_anything_is_published_the_page_says_so(tmp_path):
    s = settings_module.load(calltrail_env(tmp_path))
    s.warehouse.parent.mkdir(parents=True)
    duckdb.connect(str(s.warehouse)).close()

    text = page.write(s).index.read_text()

    assert "Nothing published yet" in text
