{#- How many calls came in, how many could be joined to a web session, and why the others could not. -#}

with calls as (

    select * from {{ ref('stg_salesforce__tasks') }}
    where is_call

),

touchpoints as (

    select task_id, touchpoint_origin from {{ ref('fct_touchpoints') }}
    where task_id is not null

),

matches as (

    select task_id, match_status from {{ ref('int_calls_matched_to_sessions') }}

),

counted as (

    select
        (select count(*) from {{ ref('stg_salesforce__tasks') }}) as tasks,
        count(*) as calls,
        sum(case when calls.bizible_id_status = 'valid' then 1 else 0 end) as calls_with_valid_bizible_id,
        sum(case when calls.bizible_id_status = 'missing' then 1 else 0 end) as calls_missing_bizible_id,
        sum(case when calls.bizible_id_status = 'invalid_format' then 1 else 0 end) as calls_invalid_bizible_id,
        sum(case when touchpoints.touchpoint_origin = 'task_in_session' then 1 else 0 end) as calls_matched_to_session,
        sum(case when touchpoints.touchpoint_origin = 'task_only' then 1 else 0 end) as calls_task_only,
        sum(case when matches.match_status = {{ calltrail.match_status('matched') }} then 1 else 0 end) as calls_within_window,
        sum(case when matches.match_status = {{ calltrail.match_status('outside_window') }} then 1 else 0 end) as calls_outside_window,
        sum(case when matches.match_status = {{ calltrail.match_status('no_session') }} then 1 else 0 end) as calls_without_session
    from calls
    left join touchpoints
        on calls.task_id = touchpoints.task_id
    left join matches
        on calls.task_id = matches.task_id

),

final as (

    select
        counted.*,
        case when calls_with_valid_bizible_id > 0
            then cast(calls_matched_to_session as {{ calltrail.type_double() }}) / calls_with_valid_bizible_id
        end as match_rate,
        case when calls > 0
            then cast(calls_missing_bizible_id + calls_invalid_bizible_id as {{ calltrail.type_double() }}) / calls
        end as missing_bizible_id_rate
    from counted

)

select * from final
