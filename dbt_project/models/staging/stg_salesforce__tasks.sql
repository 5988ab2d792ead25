{#- One row per live Task: its latest version (highest SystemModstamp), deletes removed, the
    BizibleId normalised with a status, and whether it is a call. -#}
{#- A table, unlike the other staging models (views): the latest-version window over every Task
    version is read by the call matching, the missing-BizibleId list, the match-rate report and the
    data-quality gate, and was computed again for each of them as a view. An incremental one
    (docs/incremental.md): a run rebuilds the Tasks with a version in a new lake batch
    (int_changed_tasks), each from all its versions, not every Task. It is the one staging model
    that reads the incremental bookkeeping (the run's mode and those Tasks). -#}
{{ config(**calltrail.incremental_config('task')) }}

-- depends_on: {{ ref('int_increment') }}, {{ ref('int_changed_tasks') }}
with versions as (

    select * from {{ ref('stg_salesforce__task_versions') }} as versions
    {%- if is_incremental() %}
    where {{ calltrail.rebuilt('task', 'versions.task_id') }}
    {%- endif %}

),

ranked as (

    select
        versions.*,
        row_number() over (
            partition by task_id
            order by system_modstamp desc, last_modified_at desc, is_deleted desc
        ) as version_rank
    from versions

),

latest as (

    select * from ranked
    where version_rank = 1
      and not is_deleted

),

checked as (

    select
        latest.*,
        {{ calltrail.bizible_id_status('bizible_id_raw') }} as bizible_id_status
    from latest

),

final as (

    select
        task_id,
        who_id,
        what_id,
        subject,
        task_type,
        nullif(trim(task_type), '') as task_type_clean,
        task_subtype,
        call_type,
        call_duration_seconds,
        call_object,
        call_disposition,
        status,
        activity_date,
        created_at,
        last_modified_at,
        system_modstamp,
        touchpoint_date_at,
        call_at,
        bizible_id_raw,
        bizible_id_status,
        case
            when bizible_id_status = 'valid'
                then {{ calltrail.normalise_bizible_id('bizible_id_raw') }}
        end as bizible_id,
        coalesce({{ var('calltrail__call_filter') }}, false) as is_call,
        loaded_at
        {{- calltrail.bucket_column('task', 'task_id') }}
    from checked

)

select * from final
{{ calltrail.kept_rows() }}
