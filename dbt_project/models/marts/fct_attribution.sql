{#- One row per opportunity, journey touchpoint and attribution model (docs/rules.md,
    Attribution models): the touchpoint's share of the opportunity (credit) and of its amount.

    A model gives each of its positions (FT, LC, OC, Closed) a weight and the middle touchpoints a
    weight they share equally. Weights are held as integers in units of 1/10000 of a percent point
    (22.5 -> 225000), so every share is an exact fraction numerator / denominator:
    - a touchpoint gets the weights of the model's positions it holds (coinciding positions add);
    - a middle touchpoint (it holds none of the model's positions and lies in the model's middle
      range) gets the middle weight / the number of middle touchpoints;
    - the weight of a missing position, and the middle weight when there is no middle touchpoint,
      is split equally among the distinct touchpoints holding the model's positions; when none
      holds any, FT takes it.
    Each credit is rounded half-even to 10 places with integer arithmetic, and the remainder goes
    to the last touchpoint (journey order) with a non-zero share, so the credits of an opportunity
    and model sum to exactly 1. attributed_amount = Amount x credit, unrounded. -#}

{#- Incremental (docs/incremental.md): int_opportunity_journeys holds the opportunities this run
    rebuilds, whose rows replace theirs. -#}
{{ config(**calltrail.incremental_config('opportunity')) }}
{%- set middle_ranges = {'first_touch': 'none', 'lead_creation': 'none', 'u_shaped': 'ft_to_lc',
                         'w_shaped': 'ft_to_oc', 'full_path': 'all', 'custom': 'all'} -%}
{%- set fixed_weights = {
    'first_touch':   {'FT': 100, 'LC': 0, 'OC': 0, 'Closed': 0, 'middle': 0},
    'lead_creation': {'FT': 0, 'LC': 100, 'OC': 0, 'Closed': 0, 'middle': 0},
    'u_shaped':      {'FT': 40, 'LC': 40, 'OC': 0, 'Closed': 0, 'middle': 20},
    'w_shaped':      {'FT': 30, 'LC': 30, 'OC': 30, 'Closed': 0, 'middle': 10},
    'full_path':     {'FT': 22.5, 'LC': 22.5, 'OC': 22.5, 'Closed': 22.5, 'middle': 10},
} -%}
{%- set unit = 10000 -%}
{%- for model in var('calltrail__attribution_models') if model not in middle_ranges -%}
  {{ exceptions.raise_compiler_error("var calltrail__attribution_models lists " ~ model ~ ", which fct_attribution does not know") }}
{%- endfor %}

with journeys as (

    select * from {{ ref('int_opportunity_journeys') }}

),

opportunities as (

    select opportunity_id, amount, currency_iso_code from {{ ref('stg_salesforce__opportunities') }}

),

custom_weights as (

    select
        position,
        cast(round(weight * {{ unit }}, 0) as {{ dbt.type_bigint() }}) as weight_units
    from {{ ref('attribution_custom_weights') }}

),

models as (

    {%- for model in var('calltrail__attribution_models') %}
    {%- if model == 'custom' %}
    select
        'custom' as model,
        coalesce(sum(case when position = 'FT' then weight_units end), 0) as w_ft,
        coalesce(sum(case when position = 'LC' then weight_units end), 0) as w_lc,
        coalesce(sum(case when position = 'OC' then weight_units end), 0) as w_oc,
        coalesce(sum(case when position = 'Closed' then weight_units end), 0) as w_closed,
        coalesce(sum(case when position = 'middle' then weight_units end), 0) as w_middle,
        '{{ middle_ranges[model] }}' as middle_range
    from custom_weights
    {%- else %}
    {%- set w = fixed_weights[model] %}
    select
        '{{ model }}' as model,
        {%- for position, column in [('FT', 'w_ft'), ('LC', 'w_lc'), ('OC', 'w_oc'), ('Closed', 'w_closed'), ('middle', 'w_middle')] %}
        cast({{ (w[position] * unit) | int }} as {{ dbt.type_bigint() }}) as {{ column }},
        {%- endfor %}
        '{{ middle_ranges[model] }}' as middle_range
    {%- endif %}
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

held as (

    select
        journeys.opportunity_id,
        journeys.touchpoint_id,
        journeys.person_id,
        journeys.journey_order,
        journeys.is_ft,
        journeys.is_lc,
        journeys.is_oc,
        journeys.is_closed_won,
        models.model,
        models.w_ft + models.w_lc + models.w_oc + models.w_closed + models.w_middle as w_total,
        models.w_middle,
        (case when journeys.is_ft then models.w_ft else 0 end
         + case when journeys.is_lc then models.w_lc else 0 end
         + case when journeys.is_oc then models.w_oc else 0 end
         + case when journeys.is_closed_won then models.w_closed else 0 end) as held_weight,
        (journeys.is_ft and models.w_ft > 0)
            or (journeys.is_lc and models.w_lc > 0)
            or (journeys.is_oc and models.w_oc > 0)
            or (journeys.is_closed_won and models.w_closed > 0) as holds_position,
        {#- The weights of the positions this journey has (FT always; Closed when won). #}
        models.w_ft
            + case when journeys.lc_order is not null then models.w_lc else 0 end
            + case when journeys.oc_order is not null then models.w_oc else 0 end
            + case when journeys.is_won then models.w_closed else 0 end as present_weight,
        case models.middle_range
            when 'all' then true
            when 'ft_to_lc' then journeys.lc_order is not null and journeys.journey_order > 1 and journeys.journey_order < journeys.lc_order
            when 'ft_to_oc' then journeys.oc_order is not null and journeys.journey_order > 1 and journeys.journey_order < journeys.oc_order
            else false
        end as in_middle_range
    from journeys
    cross join models

),

classified as (

    select
        held.*,
        not holds_position and in_middle_range and w_middle > 0 as is_middle
    from held

),

counted as (

    select
        classified.*,
        sum(case when holds_position then 1 else 0 end) over (partition by opportunity_id, model) as holders,
        sum(case when is_middle then 1 else 0 end) over (partition by opportunity_id, model) as middles
    from classified

),

shares as (

    {#- The exact share numerator / denominator, denominator = w_total x middles x takers (both at
        least 1). takers: the touchpoints holding the model's positions, or FT when none does;
        they split the weight left over (missing positions, a middle share without middle
        touchpoints). #}
    select
        opportunity_id,
        touchpoint_id,
        person_id,
        journey_order,
        is_ft,
        is_lc,
        is_oc,
        is_closed_won,
        model,
        numerator,
        w_total * middles_n * takers_n as denominator
    from (
        select
            counted.*,
            case when middles > 0 then middles else 1 end as middles_n,
            case when holders > 0 then holders else 1 end as takers_n,
            held_weight * (case when middles > 0 then middles else 1 end) * (case when holders > 0 then holders else 1 end)
            + case when is_middle then w_middle * (case when holders > 0 then holders else 1 end) else 0 end
            + case
                when (holders > 0 and holds_position) or (holders = 0 and is_ft)
                    then (w_total - present_weight - case when middles > 0 then w_middle else 0 end)
                         * (case when middles > 0 then middles else 1 end)
                else 0
              end as numerator
        from counted
    ) as fractions

),

long_division as (

    {#- numerator / denominator in units of 1e-10, in two steps of five digits so that no value
        exceeds denominator x 10^5. #}
    select
        shares.*,
        {{ calltrail.int_div('numerator * 100000', 'denominator') }} as quotient_high
    from shares

),

long_division_low as (

    select
        long_division.*,
        {{ calltrail.int_div('(numerator * 100000 - quotient_high * denominator) * 100000', 'denominator') }} as quotient_low
    from long_division

),

rounded as (

    select
        long_division_low.*,
        quotient_high * 100000 + quotient_low
        + case
            when 2 * ((numerator * 100000 - quotient_high * denominator) * 100000 - quotient_low * denominator) > denominator
                then 1
            when 2 * ((numerator * 100000 - quotient_high * denominator) * 100000 - quotient_low * denominator) = denominator
                then (quotient_high * 100000 + quotient_low) - 2 * {{ calltrail.int_div('quotient_high * 100000 + quotient_low', '2') }}
            else 0
          end as credit_units
    from long_division_low

),

balanced as (

    select
        rounded.*,
        {#- ', FT, LC' and so on: FT, LC, OC and Closed in this order, each after ', '; the final
            column drops the first ', ' (empty for a middle touchpoint). #}
        {{ dbt.concat([
            "case when is_ft then ', FT' else '' end",
            "case when is_lc then ', LC' else '' end",
            "case when is_oc then ', OC' else '' end",
            "case when is_closed_won then ', Closed' else '' end",
        ]) }} as positions_listed,
        case
            when journey_order = max(case when numerator > 0 then journey_order end) over (partition by opportunity_id, model)
                then 10000000000 - sum(credit_units) over (partition by opportunity_id, model)
            else 0
        end as remainder_units
    from rounded

),

final as (

    select
        balanced.opportunity_id,
        balanced.touchpoint_id,
        balanced.person_id,
        {{ dbt.right('balanced.positions_listed', 'greatest(' ~ dbt.length('balanced.positions_listed') ~ ' - 2, 0)') }}
            as opportunity_positions,
        balanced.model,
        cast(
            cast(balanced.credit_units + balanced.remainder_units as decimal(20, 0))
            * cast(0.0000000001 as decimal(11, 10))
            as decimal(18, 10)
        ) as credit,
        {#- decimal(19, 2): DuckDB multiplies two decimals of up to 18 digits in 64 bits, which an
            amount of millions times 10^10 credit units overflows; and no wider, so that the
            product's exact type fits in 38 digits (19 + 18 + 1) and Spark does not cut its scale
            to 6 places (it rounded 300 x 0.0666666667 to 20.000000). -#}
        {#- decimal(38, 12), the product's exact type, cast so that every engine gives the same type
            (PostgreSQL's product of two numerics has no declared precision). -#}
        cast(
            cast(opportunities.amount as decimal(19, 2))
            * cast(
                cast(balanced.credit_units + balanced.remainder_units as decimal(20, 0))
                * cast(0.0000000001 as decimal(11, 10))
                as decimal(18, 10)
            )
            as decimal(38, 12)
        ) as attributed_amount,
        opportunities.currency_iso_code
        {{- calltrail.bucket_column('opportunity', 'balanced.opportunity_id') }}
    from balanced
    inner join opportunities
        on balanced.opportunity_id = opportunities.opportunity_id

)

select * from final
{{ calltrail.kept_rows() }}
