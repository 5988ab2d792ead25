{#- One row per live OpportunityContactRole: its latest version (highest SystemModstamp), deleted
    roles removed. -#}

with latest as (

    {{ calltrail.latest_live_versions(ref('stg_salesforce__opportunity_contact_role_versions'), 'opportunity_contact_role_id') }}

),

final as (

    select
        opportunity_contact_role_id,
        opportunity_id,
        contact_id,
        role,
        is_primary,
        system_modstamp,
        loaded_at
    from latest

)

select * from final
