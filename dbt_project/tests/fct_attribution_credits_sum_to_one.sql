{#- docs/rules.md, Attribution models: per opportunity and model the credits are non-negative and
    sum to exactly 1, and the attributed amounts to the opportunity's Amount. Returns the
    opportunities and models that break it. -#}

with credits as (

    select
        opportunity_id,
        model,
        sum(credit) as total_credit,
        min(credit) as lowest_credit,
        sum(attributed_amount) as total_amount
    from {{ ref('fct_attribution') }}
    group by opportunity_id, model

),

opportunities as (

    select opportunity_id, amount from {{ ref('stg_salesforce__opportunities') }}

)

select credits.*, opportunities.amount
from credits
inner join opportunities
    on credits.opportunity_id = opportunities.opportunity_id
where credits.total_credit <> 1
   or credits.lowest_credit < 0
   or credits.total_amount <> opportunities.amount
