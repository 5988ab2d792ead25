{#- One row per live Contact: its latest version (highest SystemModstamp), deleted Contacts removed. -#}

with latest as (

    {{ calltrail.latest_live_versions(ref('stg_salesforce__contact_versions'), 'contact_id') }}

),

final as (

    select
        contact_id,
        email,
        lower(trim(email)) as email_normalised,
        account_id,
        created_at,
        system_modstamp,
        loaded_at
    from latest

)

select * from final
