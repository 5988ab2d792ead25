{#- Revenue by marketing channel (docs/rules.md, Revenue), per attribution model
    and currency, in three groupings of the same figures (column `grouped_by`): `channel` (channel
    and subchannel), `campaign` and `touchpoint_type`; the columns of the other groupings are null.
    Amounts are never converted or added across currencies.

    touchpoints / calls: distinct journey touchpoints (of them, call Tasks) that the model gives a
    share; opportunities_touched: distinct opportunities they belong to; attributed_opportunities:
    the sum of the credits; attributed_pipeline: attributed amounts of every opportunity;
    attributed_won_revenue: those of won opportunities. -#}
{%- set groupings = [
    ('channel', ['marketing_channel', 'marketing_subchannel']),
    ('campaign', ['campaign']),
    ('touchpoint_type', ['touchpoint_type']),
] -%}
{%- set dimensions = ['marketing_channel', 'marketing_subchannel', 'campaign', 'touchpoint_type'] %}

with attribution as (

    select * from {{ ref('fct_attribution') }}
    where credit > 0

),

touchpoints as (

    select touchpoint_id, task_id, marketing_channel, marketing_subchannel, campaign, touchpoint_type
    from {{ ref('fct_touchpoints') }}

),

calls as (

    select task_id, is_call from {{ ref('int_calls_matched_to_sessions') }}

),

opportunities as (

    select opportunity_id, is_won from {{ ref('stg_salesforce__opportunities') }}

),

credited as (

    select
        attribution.opportunity_id,
        attribution.touchpoint_id,
        attribution.model,
        attribution.currency_iso_code,
        attribution.credit,
        attribution.attributed_amount,
        opportunities.is_won,
        coalesce(calls.is_call, false) as is_call,
        touchpoints.marketing_channel,
        touchpoints.marketing_subchannel,
        touchpoints.campaign,
        touchpoints.touchpoint_type
    from attribution
    inner join touchpoints
        on attribution.touchpoint_id = touchpoints.touchpoint_id
    inner join opportunities
        on attribution.opportunity_id = opportunities.opportunity_id
    left join calls
        on touchpoints.task_id = calls.task_id

),

final as (

    {%- for grouping, columns in groupings %}
    select
        '{{ grouping }}' as grouped_by,
        {%- for dimension in dimensions %}
        {{ dimension if dimension in columns else 'cast(null as ' ~ dbt.type_string() ~ ')' }} as {{ dimension }},
        {%- endfor %}
        model,
        currency_iso_code,
        count(distinct case when is_call then touchpoint_id end) as calls,
        count(distinct touchpoint_id) as touchpoints,
        count(distinct opportunity_id) as opportunities_touched,
        {#- Cast to the sums' types on DuckDB, so that every engine gives the same types. -#}
        cast(sum(credit) as decimal(38, 10)) as attributed_opportunities,
        cast(sum(attributed_amount) as decimal(38, 12)) as attributed_pipeline,
        cast(coalesce(sum(case when is_won then attributed_amount end), 0) as decimal(38, 12)) as attributed_won_revenue
    from credited
    group by {{ (columns + ['model', 'currency_iso_code']) | join(', ') }}
    {{ "union all" if not loop.last }}
    {%- endfor %}

)

select * from final
