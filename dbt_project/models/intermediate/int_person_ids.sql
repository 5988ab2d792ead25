{#- Every live Lead and Contact Id with the person it stands for (docs/rules.md, People): a
    Contact is itself; a Lead is itself unless it was converted into a Contact present in the data,
    which is the person from then on. -#}

with leads as (

    select * from {{ ref('stg_salesforce__leads') }}

),

contacts as (

    select * from {{ ref('stg_salesforce__contacts') }}

),

contact_ids as (

    select
        contact_id as salesforce_id,
        'contact' as record_type,
        contact_id as person_id,
        email,
        email_normalised,
        account_id,
        created_at
    from contacts

),

lead_ids as (

    select
        leads.lead_id as salesforce_id,
        'lead' as record_type,
        coalesce(converted_into.contact_id, leads.lead_id) as person_id,
        leads.email,
        leads.email_normalised,
        cast(null as {{ dbt.type_string() }}) as account_id,
        leads.created_at
    from leads
    left join contacts as converted_into
        on leads.converted_contact_id = converted_into.contact_id

),

final as (

    select * from contact_ids
    union all
    select * from lead_ids

)

select * from final
