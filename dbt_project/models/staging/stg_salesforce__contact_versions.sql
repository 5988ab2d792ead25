{#- Every version of every Contact, renamed and typed once. -#}

with source as (

    select * from {{ calltrail.lake_source('salesforce_contact') }}

),

renamed as (

    select
        cast({{ adapter.quote('Id') }} as {{ dbt.type_string() }}) as contact_id,
        cast({{ adapter.quote('Email') }} as {{ dbt.type_string() }}) as email,
        cast({{ adapter.quote('AccountId') }} as {{ dbt.type_string() }}) as account_id,
        cast({{ adapter.quote('CreatedDate') }} as {{ dbt.type_timestamp() }}) as created_at,
        cast({{ adapter.quote('SystemModstamp') }} as {{ dbt.type_timestamp() }}) as system_modstamp,
        coalesce(cast({{ adapter.quote('IsDeleted') }} as {{ dbt.type_boolean() }}), false) as is_deleted,
        {{ calltrail.lake_loaded_at() }} as loaded_at
    from source

)

select * from renamed
