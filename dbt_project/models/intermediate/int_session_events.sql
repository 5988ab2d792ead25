{#- Web events with the session they belong to (docs/rules.md, Web sessions).

    A new session starts at a visitor's first event, at an event more than
    calltrail__session_inactivity_minutes after the previous one (exactly that long does not
    split), and at a page view that brings a source whose signature differs from the current
    session's. A page view brings a source when it has a utm_* value, an ad click id or an external
    referrer; its signature is those values. The current session's signature is the signature of
    the latest "anchor" (an event that starts after a gap, or that brings a source), so every step
    is a window over the visitor's events in one order. Form submits split only on inactivity.

    Each event also gets its position in the visitor's order (1, 2, 3, ...: earliest first, a page
    view before a form submit at the same moment, then the lowest event id), so that int_sessions
    picks each session's first page view (whose URL gives the session its marketing fields) and
    first form submit (the only one that can own the session) in its GROUP BY, with no join of
    every event back to its session. Running counts and last values over the windows for the same
    flags cost 2 s more at the make bench size.

    A view: int_sessions is its only reader, so the events are sessionised inside that model's
    query and never written out (writing and re-reading 10 M rows cost more than the windows).
    On Spark a table: Spark analyses a view's query where it is created and again inside each
    query that reads it, about 20 s each time on the demo. The windows carry only narrow columns:
    the source signature is built before the first window, not from the utm_* columns carried
    through it.

    Only the visitors this run rebuilds (docs/incremental.md): every visitor on a full run, those
    with new lake rows on an incremental one. -#}
{{ config(materialized='table' if target.type == 'spark' else 'view') }}
{%- set visitor = 'bizible_id' -%}
{%- set in_order = 'occurred_at, event_type_rank, event_id' -%}
{#- After the first pass, the position is the same order in one integer: the later passes sort on
    it instead of on the time, the type and the event id (a string). -#}
{%- set by_position = 'event_position' -%}

-- depends_on: {{ ref('int_increment') }}, {{ ref('int_rebuilt_web_events') }}, {{ ref('stg_web__events') }}
with rebuilt_events as (

    {#- The URLs are parsed here, after the rebuilt visitors' events are kept, with the same macros
        as stg_web__events' columns: reading those columns parsed every event's URLs before the
        filter (11 M events for the 0.8 M of an incremental run at the make bench size). -#}
    {{ calltrail.rebuilt_web_events('event_id, bizible_id, event_type, occurred_at, form_url, page_url, referrer_url') }}

),

url_fields as (

    select
        event_id,
        bizible_id,
        event_type,
        occurred_at,
        form_url,
        {{ calltrail.url_source_fields('page_url', 'referrer_url') }}
    from rebuilt_events

),

source_fields as (

    select
        *,
        {{ calltrail.external_referrer_host('page_host', 'referrer_host_any') }} as external_referrer_host
    from url_fields

),

parsed as (

    select
        event_id,
        bizible_id,
        event_type,
        occurred_at,
        form_url,
        case when event_type = {{ calltrail.web_event_type('page_view') }} then 0 else 1 end as event_type_rank,
        (
            event_type = {{ calltrail.web_event_type('page_view') }}
            and (
                {%- for field in calltrail.source_signature_columns() %}
                {{ field }} is not null{{ " or" if not loop.last }}
                {%- endfor %}
            )
        ) as brings_source,
        {%- for field in calltrail.source_signature_columns() %}
        {{ field }}{{ "," if not loop.last }}
        {%- endfor %}
    from source_fields

),

events as (

    {#- Only what the windows need: sorting wide columns costs more than everything else here. -#}
    select
        event_id,
        bizible_id,
        event_type,
        occurred_at,
        form_url,
        event_type_rank,
        brings_source,
        case
            when brings_source then {{ calltrail.source_signature() }}
            else ''
        end as source_signature
    from parsed

),

gaps as (

    select
        event_id,
        bizible_id,
        event_type,
        occurred_at,
        event_type_rank,
        form_url,
        brings_source,
        source_signature,
        lag(occurred_at) over (partition by {{ visitor }} order by {{ in_order }}) as previous_event_at,
        row_number() over (partition by {{ visitor }} order by {{ in_order }}) as event_position
    from events

),

anchors as (

    select
        gaps.*,
        (
            previous_event_at is null
            or occurred_at > {{ dbt.dateadd('minute', var('calltrail__session_inactivity_minutes'), 'previous_event_at') }}
        ) as starts_after_gap
    from gaps

),

starts as (

    select
        anchors.*,
        (
            starts_after_gap
            or (
                brings_source
                and source_signature <> coalesce({{ calltrail.last_non_null(
                    "case when starts_after_gap or brings_source then source_signature end",
                    visitor, by_position) }}, '')
            )
        ) as starts_session
    from anchors

),

numbered as (

    select
        starts.*,
        {#- Cast to an integer: DuckDB sums into 128-bit integers, which the GROUP BY would carry. #}
        cast(sum(case when starts_session then 1 else 0 end) over (
            partition by {{ visitor }} order by {{ by_position }} rows between unbounded preceding and current row
        ) as {{ dbt.type_int() }}) as session_number,
        {{ calltrail.last_non_null("case when starts_session then event_id end", visitor, by_position,
                                   include_current=true) }} as session_first_event_id
    from starts

),

final as (

    select
        {{ calltrail.session_key('bizible_id', 'session_first_event_id') }} as session_id,
        bizible_id,
        session_number,
        event_id,
        event_type,
        occurred_at,
        form_url,
        brings_source,
        source_signature,
        starts_session,
        event_position
    from numbered

)

select * from final
