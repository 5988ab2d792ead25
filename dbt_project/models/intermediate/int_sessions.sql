{#- One row per web session, with the marketing fields of its first page view and its channel.

    The sessions are grouped from int_session_events (a view, so the sessionisation runs inside
    this model's query). The first page view is the session's page view with the lowest position
    there (earliest, then lowest event id: the sessionisation order). Its utm_* values, click ids
    and external referrer come out of its source signature: parsing the URLs of 3.5 million first
    page views again cost more than the sessionisation's windows (make bench). Only those events'
    URLs are read back, for the landing and referrer pages. Search engines and channels are looked
    up once per distinct value, not once per session.

    Incremental (docs/incremental.md): int_session_events holds the events of the visitors this run
    rebuilds, whose sessions replace theirs. The URLs and the pages of the lookups are read from the
    same events (calltrail.rebuilt_web_events): on an incremental run int_rebuilt_web_events, on a
    full one stg_web__events. -#}
{{ config(**calltrail.visitor_incremental_config()) }}

{%- set page_view_position = "case when event_type = " ~ calltrail.web_event_type('page_view') ~ " then event_position end" -%}
{%- set form_submit_position = "case when event_type = " ~ calltrail.web_event_type('form_submit') ~ " then event_position end" -%}

-- depends_on: {{ ref('int_increment') }}, {{ ref('int_changed_visitors') }}
with session_events as (

    select * from {{ ref('int_session_events') }}

),

event_urls as (

    {{ calltrail.rebuilt_web_events('event_id, page_url, referrer_url') }}

),

sessions as (

    {#- Grouped on the visitor and the session number, not on the long session id: the id is
        built once per session, from the event that starts it. -#}
    select
        {{ calltrail.session_key('bizible_id', 'max(case when starts_session then event_id end)') }} as session_id,
        bizible_id,
        session_number,
        min(occurred_at) as session_start_at,
        max(occurred_at) as session_last_event_at,
        count(*) as events,
        sum(case when event_type = {{ calltrail.web_event_type('page_view') }} then 1 else 0 end) as page_views,
        sum(case when event_type = {{ calltrail.web_event_type('form_submit') }} then 1 else 0 end) as form_submits,
        {#- The session's first page view and first form submit: the value on the row with the
            lowest position among the session's page views (form submits). #}
        {{ calltrail.first_by('event_id', page_view_position) }} as first_page_view_event_id,
        {{ calltrail.first_by('source_signature', page_view_position) }} as first_page_view_signature,
        {{ calltrail.first_by('event_id', form_submit_position) }} as first_form_submit_event_id,
        {{ calltrail.first_by('occurred_at', form_submit_position) }} as first_form_submit_at,
        {{ calltrail.first_by('form_url', form_submit_position) }} as first_form_url
    from session_events
    group by bizible_id, session_number

),

first_page_view as (

    {#- Every session with its first page view's URL (the landing page and the referrer page) and
        the marketing fields from that page view's source signature, which int_session_events
        built from the same URL. -#}
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
        event_urls.page_url as landing_page_raw,
        {{ calltrail.strip_utm('event_urls.page_url') }} as landing_page,
        event_urls.referrer_url as referrer_page,
        {{ calltrail.source_signature_fields('sessions.first_page_view_signature', 'referrer_host') }}
    {#- A right join, so that the sessions are the build side (the right side; see profiles.yml)
        and the events are streamed past them: building on all 10 M events cost more (make bench). #}
    from event_urls
    right join sessions
        on sessions.first_page_view_event_id = event_urls.event_id

),

search_engine_patterns as (

    select name as engine, {{ calltrail.like_pattern('host_pattern') }} as like_pattern
    from {{ ref('referrer_hosts') }}
    where category in ('search', 'ai')

),

signature_values as (

    {#- The lookups below read narrow, distinct values: the sessions' signatures and the pages that
        were viewed, not the wide session rows, which are read once, by final. -#}
    select
        {{ calltrail.source_signature_fields('first_page_view_signature', 'referrer_host') }}
    from (select distinct first_page_view_signature from sessions) as signatures

),

channel_signatures as (

    select utm_campaign as campaign, utm_medium as medium, utm_source as source, referrer_host
    from signature_values

),

viewed_pages as (

    {#- Every event's page (a superset of the first page views), so that the lookups do not read
        the joined session rows. -#}
    {{ calltrail.rebuilt_web_events('page_url as landing_page_raw') }}

),

{{ calltrail.channel_lookup_ctes('session', 'channel_signatures', 'viewed_pages') }},

referrer_hosts as (

    select distinct referrer_host from signature_values where referrer_host is not null

),

engines as (

    {#- The engine of the most specific pattern a host matches (the longest; then the first name),
        as the rule 'list:search:NAME' that comes first in channel_rules would usually pick. -#}
    select referrer_host, search_engine
    from (
        select
            referrer_hosts.referrer_host,
            search_engine_patterns.engine as search_engine,
            row_number() over (
                partition by referrer_hosts.referrer_host
                order by {{ dbt.length('search_engine_patterns.like_pattern') }} desc, search_engine_patterns.engine
            ) as specificity
        from referrer_hosts
        inner join search_engine_patterns
            on {{ calltrail.like_matches('referrer_hosts.referrer_host', 'search_engine_patterns.like_pattern') }}
    ) as matches
    where specificity = 1

),

final as (

    select
        first_page_view.session_id,
        first_page_view.bizible_id,
        first_page_view.session_number,
        first_page_view.session_start_at,
        first_page_view.session_last_event_at,
        first_page_view.events,
        first_page_view.page_views,
        first_page_view.form_submits,
        first_page_view.first_form_submit_event_id,
        first_page_view.first_form_submit_at,
        first_page_view.first_form_url,
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
        coalesce(session_channels.channel, 'Other') as marketing_channel,
        session_channels.subchannel as marketing_subchannel
        {{- calltrail.visitor_bucket_column('first_page_view.bizible_id') }}
    from first_page_view
    left join engines
        on first_page_view.referrer_host = engines.referrer_host
    {{ calltrail.channel_joins('session', 'first_page_view', {
        'campaign': 'first_page_view.utm_campaign',
        'medium': 'first_page_view.utm_medium',
        'source': 'first_page_view.utm_source'}) }}

)

select * from final
{{ calltrail.kept_rows() }}
