{#- Live opportunities without any journey touchpoint, so without credit rows (docs/rules.md,
    Opportunities and revenue), with the first reason that applies:
    - no_people: no contact role (and, with the account fallback, no Contact on its Account);
    - no_touchpoints: its people have no touchpoints at all;
    - no_touchpoints_before_cutoff: its people's touchpoints all come after its cut-off. -#}

with opportunities as (

    select
        opportunity_id,
        opportunity_name,
        account_id,
        amount,
        currency_iso_code,
        stage_name,
        created_at,
        close_date,
        is_closed,
        is_won,
        {{ calltrail.opportunity_cutoff('is_closed', 'close_date') }} as cutoff_at
    from {{ ref('stg_salesforce__opportunities') }}

),

people as (

    select opportunity_id, person_id from {{ ref('int_opportunity_people') }}

),

touchpoints as (

    select person_id, touchpoint_at from {{ ref('fct_touchpoints') }}
    where person_id is not null

),

counted as (

    select
        opportunities.opportunity_id,
        count(distinct people.person_id) as people,
        count(touchpoints.touchpoint_at) as people_touchpoints,
        sum(
            case
                when touchpoints.touchpoint_at is not null
                 and {{ calltrail.before_cutoff('touchpoints.touchpoint_at', 'opportunities.cutoff_at') }}
                    then 1
                else 0
            end
        ) as journey_touchpoints
    from opportunities
    left join people
        on opportunities.opportunity_id = people.opportunity_id
    left join touchpoints
        on people.person_id = touchpoints.person_id
    group by opportunities.opportunity_id

),

final as (

    select
        opportunities.opportunity_id,
        opportunities.opportunity_name,
        opportunities.account_id,
        opportunities.amount,
        opportunities.currency_iso_code,
        opportunities.stage_name,
        opportunities.created_at,
        opportunities.close_date,
        opportunities.is_closed,
        opportunities.is_won,
        counted.people,
        counted.people_touchpoints,
        case
            when counted.people = 0 then 'no_people'
            when counted.people_touchpoints = 0 then 'no_touchpoints'
            else 'no_touchpoints_before_cutoff'
        end as reason
    from opportunities
    inner join counted
        on opportunities.opportunity_id = counted.opportunity_id
    where counted.journey_touchpoints = 0

)

select * from final
