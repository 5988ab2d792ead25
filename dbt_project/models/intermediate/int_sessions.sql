{#- One row per web session, with the marketing fields of its first page view and its channel. -#}

with session_events as (

    select * from {{ ref('int_session_events') }}

),

search_engines as (

    select
        engine,
        {{ calltrail.rule_cell_regex('host_pattern') }} as host_regex
    from {{ ref('search_engines') }}

),

sessions as (

    select
        session_id,
        bizible_id,
        session_number,
        min(occurred_at) as session_start_at,
        max(occurred_at) as session_last_event_at,
        count(*) as events,
        sum(case when event_type = 'page_view' then 1 else 0 end) as page_views,
        sum(case when event_type = 'form_submit' then 1 else 0 end) as form_submits
    from session_events
    group by session_id, bizible_id, session_number

),

page_views as (

    select
        session_events.*,
        row_number() over (partition by session_id order by event_seq) as page_view_number
    from session_events
    where event_type = 'page_view'

),

first_page_view as (

    select
        session_id,
        page_url as landing_page_raw,
        {{ calltrail.strip_utm('page_url') }} as landing_page,
        referrer_url as referrer_page,
        external_referrer_host as referrer_host,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_content,
        utm_term,
        gclid,
        msclkid,
        fbclid
    from page_views
    where page_view_number = 1

),

engines as (

    select
        first_page_view.session_id,
        min(search_engines.engine) as search_engine
    from first_page_view
    inner join search_engines
        on {{ calltrail.regexp_matches('first_page_view.referrer_host', 'search_engines.host_regex') }}
    group by first_page_view.session_id

),

channel_input as (

    select
        session_id,
        utm_campaign as campaign,
        utm_medium as medium,
        utm_source as source,
        landing_page_raw,
        referrer_host
    from first_page_view

),

channels as (

    {{ calltrail.assign_channel('channel_input', 'session_id') }}

),

final as (

    select
        sessions.session_id,
        sessions.bizible_id,
        sessions.session_number,
        sessions.session_start_at,
        sessions.session_last_event_at,
        sessions.events,
        sessions.page_views,
        sessions.form_submits,
        first_page_view.landing_page,
        first_page_view.landing_page_raw,
        first_page_view.referrer_page,
        first_page_view.referrer_host,
        first_page_view.utm_source,
        first_page_view.utm_medium,
        first_page_view.utm_campaign,
        first_page_view.utm_content,
        first_page_view.utm_term,
        first_page_view.gclid,
        first_page_view.msclkid,
        first_page_view.fbclid,
        engines.search_engine,
        coalesce(first_page_view.utm_source, engines.search_engine, first_page_view.referrer_host, 'Web Direct')
            as touchpoint_source,
        coalesce(channels.marketing_channel, 'Other') as marketing_channel,
        channels.marketing_subchannel
    from sessions
    left join first_page_view
        on sessions.session_id = first_page_view.session_id
    left join engines
        on sessions.session_id = engines.session_id
    left join channels
        on sessions.session_id = channels.session_id

)

select * from final
