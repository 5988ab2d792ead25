{#- An opportunity's people (docs/rules.md, Opportunities): the Contacts of its live
    OpportunityContactRole rows that are live Contacts in the data. An opportunity without any
    live role takes the Contacts of its Account when var calltrail__opportunity_people_fallback is
    `account` (the default), nobody when it is `roles`. -#}
{%- set fallback = var('calltrail__opportunity_people_fallback') -%}
{%- if fallback not in ['roles', 'account'] -%}
  {{ exceptions.raise_compiler_error("calltrail__opportunity_people_fallback must be roles or account, got '" ~ fallback ~ "'") }}
{%- endif %}

with opportunities as (

    select opportunity_id, account_id from {{ ref('stg_salesforce__opportunities') }}

),

roles as (

    select opportunity_id, contact_id from {{ ref('stg_salesforce__opportunity_contact_roles') }}

),

contacts as (

    select contact_id, account_id from {{ ref('stg_salesforce__contacts') }}

),

role_people as (

    select distinct
        roles.opportunity_id,
        contacts.contact_id as person_id,
        'roles' as people_source
    from roles
    inner join contacts
        on roles.contact_id = contacts.contact_id

),

account_people as (

    {%- if fallback == 'account' %}
    select
        opportunities.opportunity_id,
        contacts.contact_id as person_id,
        'account' as people_source
    from opportunities
    inner join contacts
        on opportunities.account_id = contacts.account_id
    where not exists (
        select 1 from roles where roles.opportunity_id = opportunities.opportunity_id
    )
    {%- else %}
    select opportunity_id, person_id, people_source from role_people where 1 = 0
    {%- endif %}

),

final as (

    select role_people.opportunity_id, role_people.person_id, role_people.people_source
    from role_people
    inner join opportunities
        on role_people.opportunity_id = opportunities.opportunity_id

    union all

    select opportunity_id, person_id, people_source from account_people

)

select * from final
