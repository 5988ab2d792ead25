{#- The opportunities an incremental run rebuilds (docs/incremental.md): those of the people whose
    journeys it rebuilds (int_changed_journeys), by their people now and as the last good run had
    them, and those whose record (the fields the attribution reads) or people changed since then
    (journey_state_rows against int_journey_state), including deleted ones. Empty in full mode,
    where every opportunity is rebuilt. On Spark with the opportunity's bucket. -#}
{{ config(materialized='table') }}

{%- set incremental = calltrail.incremental_run() %}

-- depends_on: {{ ref('int_increment') }}
with journeys as (

    select journey_key from {{ ref('int_changed_journeys') }}

),

{{ calltrail.journey_state_ctes(incremental) }},

opportunities as (

    select record_id as opportunity_id
    from current_state
    where kind = 'opportunity_person'
      and state_value in (select journey_key from journeys)

    union

    select record_id as opportunity_id
    from changed_state
    where kind in ('opportunity', 'opportunity_person')

    {% if incremental -%}
    union

    select record_id as opportunity_id
    from {{ calltrail.sibling('int_journey_state') }}
    where kind = 'opportunity_person'
      and state_value in (select journey_key from journeys)
    {%- endif %}

)

select opportunity_id{{ calltrail.bucket_column('opportunity', 'opportunity_id') }}
from opportunities
