{#- The lake's batches of web events and Task versions: each load writes its rows with one
    _loaded_at, so a batch is a dataset, a _loaded_at and its row count. int_changed_visitors
    compares them with the batches the incremental models were built from (int_increment_state):
    a batch that is new, or whose count changed, holds new rows (docs/incremental.md). -#}
{{ config(materialized='table') }}

select 'web_events' as dataset, loaded_at, count(*) as row_count
from {{ ref('stg_web__events') }}
group by loaded_at

union all

select 'salesforce_task' as dataset, loaded_at, count(*) as row_count
from {{ ref('stg_salesforce__task_versions') }}
group by loaded_at
