{#- One row per live Lead: its latest version (highest SystemModstamp), deleted Leads removed. On a
    tie of SystemModstamp a deleted version wins, then the later load. -#}

with versions as (

    select * from {{ ref('stg_salesforce__lead_versions') }}

),

ranked as (

    select
        versions.*,
        row_number() over (
            partition by lead_id
            order by system_modstamp desc, is_deleted desc, loaded_at desc
        ) as version_rank
    from versions

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
    from ranked
    where version_rank = 1
      and not is_deleted

)

select * from final
