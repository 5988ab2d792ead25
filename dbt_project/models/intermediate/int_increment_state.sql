{#- What the incremental models were built from (docs/incremental.md): the lake's batches of this
    run and the rules' fingerprint. Built after them, so a run that fails before leaves the state of
    the last good run and the next run rebuilds the same visitors again. -#}
{{ config(materialized='table') }}
-- depends_on: {{ ref('fct_attribution') }}

select
    batches.dataset,
    batches.loaded_at,
    batches.row_count,
    increment.fingerprint
from {{ ref('int_lake_batches') }} as batches
cross join {{ ref('int_increment') }} as increment
