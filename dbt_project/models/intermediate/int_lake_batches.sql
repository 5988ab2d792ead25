{#- The lake's batches of web events and Task versions: each load writes its rows with one
    _loaded_at, so a batch is a dataset, a _loaded_at and its row count. int_changed_visitors and
    int_changed_tasks compare them with the batches the incremental models were built from
    (int_increment_state): a batch that is new, or whose count changed, holds new rows
    (docs/incremental.md). Read from the lake itself, as the staging models read it, not through
    them: a failed data test of the web events then stops the web side of the build, and the Tasks
    are still built. -#}
{{ config(materialized='table') }}

with web_events as (

    select {{ calltrail.lake_loaded_at() }} as loaded_at
    from {{ calltrail.lake_source('web_events') }}

),

task_versions as (

    select {{ calltrail.lake_loaded_at() }} as loaded_at
    from {{ calltrail.lake_source('salesforce_task') }}

)

select 'web_events' as dataset, loaded_at, count(*) as row_count
from web_events
group by loaded_at

union all

select 'salesforce_task' as dataset, loaded_at, count(*) as row_count
from task_versions
group by loaded_at
