{#- Each opportunity's journey (docs/rules.md, Opportunities): the touchpoints of its
    people up to its cut-off (the end of the CloseDate, UTC, for a closed opportunity; none for
    an open one), in journey order, with the opportunity positions:
    - FT: the first touchpoint; LC: the earliest touchpoint that holds LC for its person;
    - OC: the last touchpoint at or before the opportunity's creation;
    - Closed: the last touchpoint, for won opportunities only.
    Journey order: touchpoint_at; on a tie Tasks, then form submits, then web visits; then the
    source record's id (Task Id, form submit event id, the session's first event id).

    Only the opportunities this run rebuilds (docs/incremental.md): every one on a full run, those
    in int_changed_opportunities on an incremental one. -#}

-- depends_on: {{ ref('int_increment') }}, {{ ref('int_changed_opportunities') }}
with opportunities as (

    select
        opportunity_id,
        created_at as opportunity_created_at,
        is_won,
        {{ calltrail.opportunity_cutoff('is_closed', 'close_date') }} as cutoff_at
    from {{ ref('stg_salesforce__opportunities') }}
    where {{ calltrail.rebuilt('opportunity', 'opportunity_id') }}

),

people as (

    select opportunity_id, person_id from {{ ref('int_opportunity_people') }}
    where {{ calltrail.rebuilt('opportunity', 'opportunity_id') }}

),

touchpoints as (

    select
        touchpoint_id,
        person_id,
        touchpoint_at,
        is_lead_creation,
        case
            when touchpoint_origin in ('task_in_session', 'task_only') then 0
            when touchpoint_origin = 'web_form' then 1
            else 2
        end as kind_priority,
        {#- A session id is the BizibleId, ':' and the session's first event id. #}
        coalesce(task_id, event_id, {{ dbt.split_part('session_id', "':'", 2) }}) as source_record_id
    from {{ ref('fct_touchpoints') }}
    where person_id is not null

),

journey as (

    select
        opportunities.opportunity_id,
        opportunities.opportunity_created_at,
        opportunities.is_won,
        touchpoints.touchpoint_id,
        touchpoints.person_id,
        touchpoints.touchpoint_at,
        touchpoints.is_lead_creation,
        row_number() over (
            partition by opportunities.opportunity_id
            order by touchpoints.touchpoint_at, touchpoints.kind_priority, touchpoints.source_record_id
        ) as journey_order
    from opportunities
    inner join people
        on opportunities.opportunity_id = people.opportunity_id
    inner join touchpoints
        on people.person_id = touchpoints.person_id
    where {{ calltrail.before_cutoff('touchpoints.touchpoint_at', 'opportunities.cutoff_at') }}

),

marks as (

    select
        opportunity_id,
        min(case when is_lead_creation then journey_order end) as lc_order,
        max(case when touchpoint_at <= opportunity_created_at then journey_order end) as oc_order,
        max(journey_order) as last_order
    from journey
    group by opportunity_id

),

final as (

    select
        journey.opportunity_id,
        journey.touchpoint_id,
        journey.person_id,
        journey.touchpoint_at,
        journey.journey_order,
        journey.is_won,
        journey.journey_order = 1 as is_ft,
        coalesce(journey.journey_order = marks.lc_order, false) as is_lc,
        coalesce(journey.journey_order = marks.oc_order, false) as is_oc,
        journey.is_won and journey.journey_order = marks.last_order as is_closed_won,
        marks.lc_order,
        marks.oc_order,
        marks.last_order as journey_touchpoints
    from journey
    inner join marks
        on journey.opportunity_id = marks.opportunity_id

)

select * from final
