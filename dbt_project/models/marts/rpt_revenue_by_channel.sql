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

{#- Each touchpoint once per model and currency, with its sums: a grouping then counts its
    touchpoints and calls, where counting them distinct over every credit cost twice as long
    (make bench). -#}
touchpoint_credits as (

    select
        touchpoint_id,
        model,
        currency_iso_code,
        {{ dimensions | join(', ') }},
        is_call,
        sum(credit) as credit,
        sum(attributed_amount) as attributed_amount,
        sum(case when is_won then attributed_amount end) as won_amount
    from credited
    group by touchpoint_id, model, currency_iso_code, {{ dimensions | join(', ') }}, is_call

),

{#- Each grouping's touchpoint figures, then its opportunities, as rows that final adds up. -#}
grouped as (

    {%- for grouping, columns in groupings %}
    {%- set group_columns %}
        '{{ grouping }}' as grouped_by,
        {%- for dimension in dimensions %}
        {{ dimension if dimension in columns else 'cast(null as ' ~ dbt.type_string() ~ ')' }} as {{ dimension }},
        {%- endfor %}
        model,
        currency_iso_code,
    {%- endset %}
    select
        {{- group_columns }}
        sum(case when is_call then 1 else 0 end) as calls,
        count(*) as touchpoints,
        0 as opportunities_touched,
        sum(credit) as credit,
        sum(attributed_amount) as attributed_amount,
        sum(won_amount) as won_amount
    from touchpoint_credits
    group by {{ (columns + ['model', 'currency_iso_code']) | join(', ') }}

    union all

    select
        {{- group_columns }}
        0 as calls,
        0 as touchpoints,
        count(distinct opportunity_id) as opportunities_touched,
        null as credit,
        null as attributed_amount,
        null as won_amount
    from credited
    group by {{ (columns + ['model', 'currency_iso_code']) | join(', ') }}
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

final as (

    {#- Cast to the sums' types on DuckDB, so that every engine gives the same types. -#}
    select
        grouped_by,
        {{ dimensions | join(', ') }},
        model,
        currency_iso_code,
        cast(sum(calls) as {{ dbt.type_bigint() }}) as calls,
        cast(sum(touchpoints) as {{ dbt.type_bigint() }}) as touchpoints,
        cast(sum(opportunities_touched) as {{ dbt.type_bigint() }}) as opportunities_touched,
        cast(sum(credit) as decimal(38, 10)) as attributed_opportunities,
        cast(sum(attributed_amount) as decimal(38, 12)) as attributed_pipeline,
        cast(coalesce(sum(won_amount), 0) as decimal(38, 12)) as attributed_won_revenue
    from grouped
    group by grouped_by, {{ dimensions | join(', ') }}, model, currency_iso_code

)

select * from final
