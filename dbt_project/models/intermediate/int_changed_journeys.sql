{#- The journeys an incremental run rebuilds (docs/incremental.md). A journey is a person's
    touchpoints over every BizibleId linked to them, or an anonymous visitor's own (its key: the
    person's Id or the BizibleId). Rebuilt are:
    - the journeys of the visitors this run rebuilds (int_changed_visitors): the one each visitor's
      touchpoints were in (fct_touchpoints as built, and its link as built) and the one they are in
      now (its link now, and the WhoId people of its Tasks);
    - the journeys whose identity changed since the last good run (journey_state_rows against
      int_journey_state): a BizibleId linked to another person, or no longer linked (both people and
      the visitor's own journey), a Lead converted into a Contact (both people).
    Empty in full mode, where every journey is rebuilt. On Spark with the journey's bucket. -#}
{{ config(materialized='table') }}

{%- set incremental = calltrail.incremental_run() %}

-- depends_on: {{ ref('int_increment') }}
with visitors as (

    select bizible_id from {{ ref('int_changed_visitors') }}

),

{{ calltrail.journey_state_ctes(incremental) }},

journeys as (

    select bizible_id as journey_key
    from visitors

    union

    select links.person_id as journey_key
    from {{ ref('int_person_links') }} as links
    inner join visitors
        on links.bizible_id = visitors.bizible_id

    union

    select person_ids.person_id as journey_key
    from {{ ref('int_calls_matched_to_sessions') }} as calls
    inner join {{ ref('int_person_ids') }} as person_ids
        on calls.who_id = person_ids.salesforce_id
    where calls.bizible_id in (select bizible_id from visitors)

    union

    select state_value as journey_key
    from changed_state
    where kind in ('link', 'person')

    union

    select record_id as journey_key
    from changed_state
    where kind = 'link'

    {% if incremental -%}
    union

    select coalesce(person_id, bizible_id) as journey_key
    from {{ calltrail.sibling('fct_touchpoints') }}
    where bizible_id in (select bizible_id from visitors)

    union

    select state_value as journey_key
    from {{ calltrail.sibling('int_journey_state') }}
    where kind = 'link'
      and record_id in (select bizible_id from visitors)
    {%- endif %}

)

select journey_key{{ calltrail.bucket_column('journey', 'journey_key') }}
from journeys
where journey_key is not null
