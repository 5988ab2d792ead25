{#- Every version of every Opportunity, renamed and typed once. -#}

with source as (

    select * from {{ calltrail.lake_source('salesforce_opportunity') }}

),

renamed as (

    select
        cast({{ adapter.quote('Id') }} as {{ dbt.type_string() }}) as opportunity_id,
        cast({{ adapter.quote('Name') }} as {{ dbt.type_string() }}) as opportunity_name,
        cast({{ adapter.quote('AccountId') }} as {{ dbt.type_string() }}) as account_id,
        cast({{ adapter.quote('Amount') }} as decimal(18, 2)) as amount,
        nullif(trim(cast({{ adapter.quote('CurrencyIsoCode') }} as {{ dbt.type_string() }})), '') as currency_iso_code,
        cast({{ adapter.quote('StageName') }} as {{ dbt.type_string() }}) as stage_name,
        cast({{ adapter.quote('CreatedDate') }} as {{ dbt.type_timestamp() }}) as created_at,
        cast({{ adapter.quote('CloseDate') }} as date) as close_date,
        coalesce(cast({{ adapter.quote('IsClosed') }} as {{ dbt.type_boolean() }}), false) as is_closed,
        coalesce(cast({{ adapter.quote('IsWon') }} as {{ dbt.type_boolean() }}), false) as is_won,
        cast({{ adapter.quote('SystemModstamp') }} as {{ dbt.type_timestamp() }}) as system_modstamp,
        coalesce(cast({{ adapter.quote('IsDeleted') }} as {{ dbt.type_boolean() }}), false) as is_deleted,
        {{ calltrail.lake_loaded_at() }} as loaded_at
    from source

)

select * from renamed
