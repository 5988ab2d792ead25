{#- One row per live Opportunity: its latest version (highest SystemModstamp), deleted ones removed.
    The currency is CurrencyIsoCode, or var calltrail__default_currency when the org has no
    multi-currency. -#}

with versions as (

    select * from {{ ref('stg_salesforce__opportunity_versions') }}

),

ranked as (

    select
        versions.*,
        row_number() over (
            partition by opportunity_id
            order by system_modstamp desc, is_deleted desc, loaded_at desc
        ) as version_rank
    from versions

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
    from ranked
    where version_rank = 1
      and not is_deleted

)

select * from final
