{#- The visitors (BizibleIds) an incremental run rebuilds (docs/incremental.md): those with rows in
    a lake batch the incremental models were not built from (int_lake_batches against
    int_increment_state): a new web event, or a new version of a Task, for the BizibleId the Task
    has in that version and for the one it had in int_calls_matched_to_sessions. Empty in full mode,
    where every visitor is rebuilt. On Spark with the visitor's bucket, the partition it is in. -#}
{{ config(materialized='table') }}

{%- set incremental = calltrail.incremental_run() %}

-- depends_on: {{ ref('int_increment') }}
with new_batches as (

    {{ calltrail.new_lake_batches(incremental) }}

),

new_task_versions as (

    select task_id, bizible_id_raw
    from {{ ref('stg_salesforce__task_versions') }}
    where loaded_at in (select loaded_at from new_batches where dataset = 'salesforce_task')

),

visitors as (

    select bizible_id
    from {{ ref('stg_web__events') }}
    where loaded_at in (select loaded_at from new_batches where dataset = 'web_events')

    union

    select {{ calltrail.normalise_bizible_id('bizible_id_raw') }} as bizible_id
    from new_task_versions
    where {{ calltrail.bizible_id_status('bizible_id_raw') }} = 'valid'

    {% if incremental -%}
    union

    select bizible_id
    from {{ calltrail.sibling('int_calls_matched_to_sessions') }}
    where task_id in (select task_id from new_task_versions)
    {%- endif %}

)

select bizible_id{{ calltrail.visitor_bucket_column() }}
from visitors
