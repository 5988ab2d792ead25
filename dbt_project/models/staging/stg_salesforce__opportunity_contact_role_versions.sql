{#- Every version of every OpportunityContactRole, renamed and typed once. -#}

with source as (

    select * from {{ calltrail.lake_source('salesforce_opportunity_contact_role') }}

),

renamed as (

    select
        cast({{ adapter.quote('Id') }} as {{ dbt.type_string() }}) as opportunity_contact_role_id,
        cast({{ adapter.quote('OpportunityId') }} as {{ dbt.type_string() }}) as opportunity_id,
        cast({{ adapter.quote('ContactId') }} as {{ dbt.type_string() }}) as contact_id,
        cast({{ adapter.quote('Role') }} as {{ dbt.type_string() }}) as role,
        coalesce(cast({{ adapter.quote('IsPrimary') }} as {{ dbt.type_boolean() }}), false) as is_primary,
        cast({{ adapter.quote('SystemModstamp') }} as {{ dbt.type_timestamp() }}) as system_modstamp,
        coalesce(cast({{ adapter.quote('IsDeleted') }} as {{ dbt.type_boolean() }}), false) as is_deleted,
        {{ calltrail.lake_loaded_at() }} as loaded_at
    from source

)

select * from renamed
