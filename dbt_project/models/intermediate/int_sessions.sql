{#- One row per web session, with the marketing fields of its first page view and its channel.

    The first page view is flagged in int_session_events (earliest page view, then lowest event
    id, the sessionisation order). Only those events' URLs are read back from stg_web__events and
    taken apart here, with the same macros as staging: parsing every event's URL a second time cost
    more than the rest of the model. Search engines and channels are looked up once per distinct
    value, not once per session. -#}

with session_events as (

    select * from {{ ref('int_session_events') }}

),

event_urls as (

    select event_id, page_url, referrer_url from {{ ref('stg_web__events') }}

),

sessions as (

    {#- Grouped on the visitor and the session number, not on the long session id: the id is
        built once per session, from the event that starts it. -#}
    select
        {{ dbt.concat(["bizible_id", "':'", "max(case when starts_session then event_id end)"]) }} as session_id,
        bizible_id,
        session_number,
        min(occurred_at) as session_start_at,
        max(occurred_at) as session_last_event_at,
        count(*) as events,
        sum(case when event_type = 'page_view' then 1 else 0 end) as page_views,
        sum(case when event_type = 'form_submit' then 1 else 0 end) as form_submits,
        max(case when is_first_page_view then event_id end) as first_page_view_event_id,
        max(case when is_first_form_submit then event_id end) as first_form_submit_event_id,
        max(case when is_first_form_submit then occurred_at end) as first_form_submit_at,
        max(case when is_first_form_submit then form_url end) as first_form_url
    from session_events
    group by bizible_id, session_number

),

first_page_view_parts as (

    {#- Every session with its first page view's URL, in one step: sessions are read once. -#}
    select
        sessions.session_id,
        sessions.bizible_id,
        sessions.session_number,
        sessions.session_start_at,
        sessions.session_last_event_at,
        sessions.events,
        sessions.page_views,
        sessions.form_submits,
        sessions.first_form_submit_event_id,
        sessions.first_form_submit_at,
        sessions.first_form_url,
        event_urls.page_url,
        event_urls.referrer_url,
        {{ calltrail.url_source_fields('event_urls.page_url', 'event_urls.referrer_url') }}
    from sessions
    left join event_urls
        on sessions.first_page_view_event_id = event_urls.event_id

),

first_page_view as (

    select
        session_id,
        bizible_id,
        session_number,
        session_start_at,
        session_last_event_at,
        events,
        page_views,
        form_submits,
        first_form_submit_event_id,
        first_form_submit_at,
        first_form_url,
        page_url as landing_page_raw,
        {{ calltrail.strip_utm('page_url') }} as landing_page,
        referrer_url as referrer_page,
        {{ calltrail.external_referrer_host('page_host', 'referrer_host_any') }} as referrer_host,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_content,
        utm_term,
        gclid,
        msclkid,
        fbclid
    from first_page_view_parts

),

search_engine_patterns as (

    {{ calltrail.explode_cells(ref('search_engines'), 'engine', ['host_pattern']) }}

),

referrer_hosts as (

    select distinct referrer_host from first_page_view where referrer_host is not null

),

engines as (

    select
        referrer_hosts.referrer_host,
        min(search_engine_patterns.rule_key) as search_engine
    from referrer_hosts
    inner join search_engine_patterns
        on {{ calltrail.like_matches('referrer_hosts.referrer_host', 'search_engine_patterns.like_pattern') }}
    group by referrer_hosts.referrer_host

),

channel_input as (

    select
        first_page_view.*,
        utm_campaign as campaign,
        utm_medium as medium,
        utm_source as source
    from first_page_view

),

with_channel as (

    {{ calltrail.assign_channel('channel_input', ['session_id', 'bizible_id', 'session_number', 'session_start_at', 'session_last_event_at', 'events', 'page_views', 'form_submits', 'first_form_submit_event_id', 'first_form_submit_at', 'first_form_url', 'landing_page', 'landing_page_raw', 'referrer_page', 'referrer_host', 'utm_source', 'utm_medium', 'utm_campaign', 'utm_content', 'utm_term', 'gclid', 'msclkid', 'fbclid']) }}

),

final as (

    select
        with_channel.session_id,
        with_channel.bizible_id,
        with_channel.session_number,
        with_channel.session_start_at,
        with_channel.session_last_event_at,
        with_channel.events,
        with_channel.page_views,
        with_channel.form_submits,
        with_channel.first_form_submit_event_id,
        with_channel.first_form_submit_at,
        with_channel.first_form_url,
        with_channel.landing_page,
        with_channel.landing_page_raw,
        with_channel.referrer_page,
        with_channel.referrer_host,
        with_channel.utm_source,
        with_channel.utm_medium,
        with_channel.utm_campaign,
        with_channel.utm_content,
        with_channel.utm_term,
        with_channel.gclid,
        with_channel.msclkid,
        with_channel.fbclid,
        engines.search_engine,
        coalesce(with_channel.utm_source, engines.search_engine, with_channel.referrer_host, 'Web Direct')
            as touchpoint_source,
        with_channel.marketing_channel,
        with_channel.marketing_subchannel
    from with_channel
    left join engines
        on with_channel.referrer_host = engines.referrer_host

)

select * from final
