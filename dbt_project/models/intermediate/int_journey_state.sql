{#- The identity links, the people and the opportunities the touchpoints and the attribution were
    built with (docs/incremental.md; journey_state_rows). Built after them, so a run that fails
    before leaves the last good run's, and the next run rebuilds the same journeys and
    opportunities again. -#}
{{ config(materialized='table') }}
-- depends_on: {{ ref('fct_attribution') }}

{{ calltrail.journey_state_rows() }}
