{#- One row per live OpportunityContactRole: its latest version (highest SystemModstamp), deleted
    roles removed. -#}

with versions as (

    select * from {{ ref('stg_salesforce__opportunity_contact_role_versions') }}

),

ranked as (

    select
        versions.*,
        row_number() over (
            partition by opportunity_contact_role_id
            order by system_modstamp desc, is_deleted desc, loaded_at desc
        ) as version_rank
    from versions

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
    from ranked
    where version_rank = 1
      and not is_deleted

)

select * from final
