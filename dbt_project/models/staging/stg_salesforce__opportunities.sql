{#- One row per live Opportunity: its latest version (highest SystemModstamp), deleted ones removed.
    The currency is CurrencyIsoCode, or var calltrail__default_currency when the org has no
    multi-currency. -#}

with latest as (

    {{ calltrail.latest_live_versions(ref('stg_salesforce__opportunity_versions'), 'opportunity_id') }}

),

final as (

    select
        opportunity_id,
        opportunity_name,
        account_id,
        amount,
        coalesce(currency_iso_code, '{{ var("calltrail__default_currency") }}') as currency_iso_code,
        stage_name,
        created_at,
        close_date,
        is_closed,
        is_won,
        system_modstamp,
        loaded_at
    from latest

)

select * from final
