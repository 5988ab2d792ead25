{#- Every version of every Lead, renamed and typed once. -#}

with source as (

    select * from {{ calltrail.lake_source('salesforce_lead') }}

),

renamed as (

    select
        cast({{ adapter.quote('Id') }} as {{ dbt.type_string() }}) as lead_id,
        cast({{ adapter.quote('Email') }} as {{ dbt.type_string() }}) as email,
        cast({{ adapter.quote('CreatedDate') }} as {{ dbt.type_timestamp() }}) as created_at,
        coalesce(cast({{ adapter.quote('IsConverted') }} as {{ dbt.type_boolean() }}), false) as is_converted,
        cast({{ adapter.quote('ConvertedContactId') }} as {{ dbt.type_string() }}) as converted_contact_id,
        cast({{ adapter.quote('ConvertedDate') }} as date) as converted_date,
        cast({{ adapter.quote('SystemModstamp') }} as {{ dbt.type_timestamp() }}) as system_modstamp,
        coalesce(cast({{ adapter.quote('IsDeleted') }} as {{ dbt.type_boolean() }}), false) as is_deleted,
        {{ calltrail.lake_loaded_at() }} as loaded_at
    from source

)

select * from renamed
