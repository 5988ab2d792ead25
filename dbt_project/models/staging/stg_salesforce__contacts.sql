{#- One row per live Contact: its latest version (highest SystemModstamp), deleted Contacts removed. -#}

with versions as (

    select * from {{ ref('stg_salesforce__contact_versions') }}

),

ranked as (

    select
        versions.*,
        row_number() over (
            partition by contact_id
            order by system_modstamp desc, is_deleted desc, loaded_at desc
        ) as version_rank
    from versions

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
    from ranked
    where version_rank = 1
      and not is_deleted

)

select * from final
