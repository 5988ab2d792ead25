{#- One row per live Lead: its latest version (highest SystemModstamp), deleted Leads removed. On a
    tie of SystemModstamp a deleted version wins, then the later load. -#}

with latest as (

    {{ calltrail.latest_live_versions(ref('stg_salesforce__lead_versions'), 'lead_id') }}

),

final as (

    select
        lead_id,
        email,
        lower(trim(email)) as email_normalised,
        created_at,
        is_converted,
        case when is_converted then converted_contact_id end as converted_contact_id,
        converted_date,
        system_modstamp,
        loaded_at
    from latest

)

select * from final
