{#- Touchpoints and calls by marketing channel and touchpoint type. -#}

with touchpoints as (

    select * from {{ ref('fct_touchpoints') }}

),

tasks as (

    select * from {{ ref('int_calls_matched_to_sessions') }}

),

final as (

    select
        touchpoints.marketing_channel,
        touchpoints.touchpoint_type,
        count(*) as touchpoints,
        {#- bigint on every engine: DuckDB sums integers into HUGEINT. -#}
        cast(sum(case when tasks.is_call then 1 else 0 end) as {{ dbt.type_bigint() }}) as calls,
        cast(sum(case when tasks.is_call and touchpoints.touchpoint_origin = 'task_in_session' then 1 else 0 end) as {{ dbt.type_bigint() }})
            as calls_with_web_session,
        cast(sum(case when touchpoints.is_lead_creation then 1 else 0 end) as {{ dbt.type_bigint() }}) as lead_creation_touchpoints
    from touchpoints
    left join tasks
        on touchpoints.task_id = tasks.task_id
    group by touchpoints.marketing_channel, touchpoints.touchpoint_type

)

select * from final
