{#- The web events of the visitors an incremental run rebuilds (docs/incremental.md), with the
    columns the sessions read. Written once per run so that int_session_events and int_sessions
    read them three times from this table: each read of stg_web__events normalises every event's
    BizibleId before the visitors' events can be kept (make bench). Empty on a full run, where they
    read stg_web__events whole (calltrail.rebuilt_web_events). -#}
{{ config(materialized='table') }}

-- depends_on: {{ ref('int_increment') }}, {{ ref('int_changed_visitors') }}
with events as (

    select event_id, bizible_id, event_type, occurred_at, form_url, page_url, referrer_url
    from {{ ref('stg_web__events') }} as events
    where (select mode from {{ ref('int_increment') }}) <> 'full'
      and {{ calltrail.rebuilt_visitor('events.bizible_id') }}

),

final as (

    select * from events

)

select * from final
