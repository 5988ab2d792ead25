{#- Every version of every Task, renamed and typed once. Nothing downstream sees API names. -#}
{%- set call_time_fields = var('calltrail__call_time_fields') -%}

with source as (

    select * from {{ calltrail.lake_source('salesforce_task') }}

),

renamed as (

    select
        cast({{ adapter.quote('Id') }} as {{ dbt.type_string() }}) as task_id,
        cast({{ adapter.quote('WhoId') }} as {{ dbt.type_string() }}) as who_id,
        cast({{ adapter.quote('WhatId') }} as {{ dbt.type_string() }}) as what_id,
        cast({{ adapter.quote('Subject') }} as {{ dbt.type_string() }}) as subject,
        cast({{ adapter.quote('Type') }} as {{ dbt.type_string() }}) as task_type,
        cast({{ adapter.quote('TaskSubtype') }} as {{ dbt.type_string() }}) as task_subtype,
        cast({{ adapter.quote('CallType') }} as {{ dbt.type_string() }}) as call_type,
        cast({{ adapter.quote('CallDurationInSeconds') }} as {{ dbt.type_bigint() }}) as call_duration_seconds,
        cast({{ adapter.quote('CallObject') }} as {{ dbt.type_string() }}) as call_object,
        cast({{ adapter.quote('CallDisposition') }} as {{ dbt.type_string() }}) as call_disposition,
        cast({{ adapter.quote('Status') }} as {{ dbt.type_string() }}) as status,
        cast({{ adapter.quote('ActivityDate') }} as date) as activity_date,
        cast({{ adapter.quote('CreatedDate') }} as {{ dbt.type_timestamp() }}) as created_at,
        cast({{ adapter.quote('LastModifiedDate') }} as {{ dbt.type_timestamp() }}) as last_modified_at,
        cast({{ adapter.quote('SystemModstamp') }} as {{ dbt.type_timestamp() }}) as system_modstamp,
        coalesce(cast({{ adapter.quote('IsDeleted') }} as {{ dbt.type_boolean() }}), false) as is_deleted,
        cast({{ adapter.quote(var('calltrail__bizible_id_field')) }} as {{ dbt.type_string() }}) as bizible_id_raw,
        cast({{ adapter.quote(var('calltrail__touchpoint_date_field')) }} as {{ dbt.type_timestamp() }}) as touchpoint_date_at,
        {% if call_time_fields | length > 1 -%}
        coalesce(
            {%- for f in call_time_fields %}
            cast({{ adapter.quote(f) }} as {{ dbt.type_timestamp() }}){{ "," if not loop.last }}
            {%- endfor %}
        ) as call_at
        {%- else -%}
        cast({{ adapter.quote(call_time_fields[0]) }} as {{ dbt.type_timestamp() }}) as call_at
        {%- endif %},
        {{ calltrail.lake_loaded_at() }} as loaded_at
    from source

)

select * from renamed
