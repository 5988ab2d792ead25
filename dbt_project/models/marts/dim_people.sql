{#- One row per person (docs/rules.md, People): every live Contact, and every live Lead not
    converted into a Contact in the data. A converted Lead is listed under its Contact. -#}

with person_ids as (

    select * from {{ ref('int_person_ids') }}

),

links as (

    select person_id, count(*) as linked_bizible_ids
    from {{ ref('int_person_links') }}
    group by person_id

),

converted_leads as (

    select
        person_id,
        {{ dbt.listagg('salesforce_id', "','", 'order by salesforce_id') }} as converted_lead_ids
    from person_ids
    where record_type = 'lead'
      and salesforce_id <> person_id
    group by person_id

),

people as (

    select * from person_ids
    where salesforce_id = person_id

),

final as (

    select
        people.person_id,
        people.record_type as person_type,
        people.email,
        people.account_id,
        people.created_at,
        converted_leads.converted_lead_ids,
        coalesce(links.linked_bizible_ids, 0) as linked_bizible_ids
    from people
    left join converted_leads
        on people.person_id = converted_leads.person_id
    left join links
        on people.person_id = links.person_id

)

select * from final
