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
        {#- Sums of integers are HUGEINT on DuckDB (a decimal(38, 0) to Arrow and Parquet readers):
            cast to bigint, as PostgreSQL gives them. -#}
        cast(sum(case when calls.bizible_id_status = 'valid' then 1 else 0 end) as {{ dbt.type_bigint() }}) as calls_with_valid_bizible_id,
        cast(sum(case when calls.bizible_id_status = 'missing' then 1 else 0 end) as {{ dbt.type_bigint() }}) as calls_missing_bizible_id,
        cast(sum(case when calls.bizible_id_status = 'invalid_format' then 1 else 0 end) as {{ dbt.type_bigint() }}) as calls_invalid_bizible_id,
        cast(sum(case when touchpoints.touchpoint_origin = 'task_in_session' then 1 else 0 end) as {{ dbt.type_bigint() }}) as calls_matched_to_session,
        cast(sum(case when touchpoints.touchpoint_origin = 'task_only' then 1 else 0 end) as {{ dbt.type_bigint() }}) as calls_task_only,
        cast(sum(case when matches.match_status = {{ calltrail.match_status('matched') }} then 1 else 0 end) as {{ dbt.type_bigint() }}) as calls_within_window,
        cast(sum(case when matches.match_status = {{ calltrail.match_status('outside_window') }} then 1 else 0 end) as {{ dbt.type_bigint() }}) as calls_outside_window,
        cast(sum(case when matches.match_status = {{ calltrail.match_status('no_session') }} then 1 else 0 end) as {{ dbt.type_bigint() }}) as calls_without_session
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
