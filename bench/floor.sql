-- The floor: one hand-written DuckDB query over the same lake that computes the same sessions
-- and the same call matches as the dbt models (inactivity and source splits, latest session at or
-- before the call, the call window from the session start). DuckDB-only syntax is fine here.
-- bench.py sets the variables: the lake's globs, the dbt project's inactivity gap and call window
-- (minutes), and the configured Task fields for the BizibleId and the touchpoint date.
create or replace table floor_matches as
with events as (
    select
        event_id,
        regexp_replace(lower(trim(bizible_id)), '[-{}]', '', 'g') as bid,
        event_type,
        occurred_at,
        nullif(regexp_extract(page_url, '[?&]utm_source=([^&#]*)', 1), '') as utm_source,
        nullif(regexp_extract(page_url, '[?&]utm_medium=([^&#]*)', 1), '') as utm_medium,
        nullif(regexp_extract(page_url, '[?&]utm_campaign=([^&#]*)', 1), '') as utm_campaign,
        nullif(regexp_extract(page_url, '[?&]utm_content=([^&#]*)', 1), '') as utm_content,
        nullif(regexp_extract(page_url, '[?&]utm_term=([^&#]*)', 1), '') as utm_term,
        nullif(regexp_extract(page_url, '[?&](gclid|msclkid|fbclid)=([^&#]*)', 2), '') as click_id,
        regexp_replace(lower(nullif(regexp_extract(page_url, '^[a-z]+://([^/?#:]+)', 1), '')), '^www[.]', '') as page_host,
        regexp_replace(lower(nullif(regexp_extract(referrer_url, '^[a-z]+://([^/?#:]+)', 1), '')), '^www[.]', '') as ref_host
    from read_parquet(getvariable('web_glob'))
),
signed as (
    select *,
        case when ref_host is not null and ref_host <> coalesce(page_host, '') then ref_host end as ext_ref,
    from events
),
flagged as (
    select *,
        event_type = 'page_view' and (coalesce(utm_source, utm_medium, utm_campaign, utm_content, utm_term, click_id, ext_ref) is not null) as brings,
        concat_ws('|', utm_source, utm_medium, utm_campaign, utm_content, utm_term, click_id, ext_ref) as sig,
        occurred_at > lag(occurred_at) over w + to_minutes(getvariable('inactivity_minutes')) or lag(occurred_at) over w is null as gap
    from signed
    window w as (partition by bid order by occurred_at, event_type desc, event_id)
),
starts as (
    select *,
        gap or (brings and sig <> coalesce(lag(case when gap or brings then sig end ignore nulls) over w, '')) as starts_session
    from flagged
    window w as (partition by bid order by occurred_at, event_type desc, event_id)
),
sessions as (
    select bid, session_number, min(occurred_at) as session_start
    from (select bid, occurred_at, sum(starts_session::int) over (partition by bid order by occurred_at, event_type desc, event_id) as session_number from starts)
    group by all
),
task_versions as (
    select Id, SystemModstamp, IsDeleted, CreatedDate,
           columns(lambda c: c = getvariable('bizible_id_field')) as bizible_id,
           columns(lambda c: c = getvariable('touchpoint_date_field')) as touchpoint_date
    from read_parquet(getvariable('task_glob'), union_by_name = true)
),
tasks as (
    select Id as task_id,
           regexp_replace(lower(trim(arg_max(bizible_id, SystemModstamp))), '[-{}]', '', 'g') as bid,
           arg_max(coalesce(touchpoint_date, CreatedDate), SystemModstamp) as call_at,
           arg_max(IsDeleted, SystemModstamp) as deleted
    from task_versions
    group by Id
)
select t.task_id, t.bid, t.call_at, s.session_number, s.session_start,
       case when s.session_start is null then 'no_session'
            when t.call_at <= s.session_start + to_minutes(getvariable('call_window_minutes')) then 'matched'
            else 'outside_window' end as match_status
from tasks t
asof left join sessions s on t.bid = s.bid and t.call_at >= s.session_start
where not t.deleted and regexp_full_match(t.bid, '[0-9a-f]{32}');
