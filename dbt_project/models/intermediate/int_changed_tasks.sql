{#- The Tasks an incremental run rebuilds in stg_salesforce__tasks (docs/incremental.md): those with
    a version in a lake batch the incremental models were not built from (a new, changed or deleted
    Task). Empty in full mode, where every Task is rebuilt. On Spark with the Task's bucket. -#}
{{ config(materialized='table') }}

{%- set incremental = calltrail.incremental_run() %}

-- depends_on: {{ ref('int_increment') }}
with new_batches as (

    {{ calltrail.new_lake_batches(incremental) }}

),

tasks as (

    select distinct task_id
    from {{ ref('stg_salesforce__task_versions') }}
    where loaded_at in (select loaded_at from new_batches where dataset = 'salesforce_task')

)

select task_id{{ calltrail.bucket_column('task', 'task_id') }}
from tasks
