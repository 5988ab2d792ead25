{#- Marketing channel rules (seed channel_rules): ordered, first match wins.

    A cell holds one or more values separated by ';', each matched case-insensitively against the
    whole value, with '*' as a wildcard ('x*', '*x', '*x*'). An empty cell matches anything;
    '(none)' matches an empty value. Values may use letters, digits, spaces and . - _ / : = & ? + $ ( ).
    A cell becomes one regular expression, once per rule. -#}

{#- One row per value of each wildcard cell: (rule_key, cell_name, like_pattern). A value's '*'
    becomes '%', '(none)' becomes '' (matches only an empty value), and LIKE's own wildcards are
    escaped with '!'. Rule values are matched with LIKE, not regular expressions: a pattern that
    varies per row makes regex engines recompile for every row. -#}
{% macro like_pattern(value) -%}
  case when lower(trim({{ value }})) = '(none)' then ''
       else replace(replace(replace(replace(lower(trim({{ value }})), '!', '!!'), '%', '!%'), '_', '!_'), '*', '%')
  end
{%- endmacro %}

{% macro explode_cells(relation, key, cells, max_values=20) -%}
  {%- for cell in cells -%}
    {%- for i in range(1, max_values + 1) %}
  select {{ key }} as rule_key, '{{ cell }}' as cell_name,
         {{ calltrail.like_pattern(dbt.split_part(cell, "';'", i)) }} as like_pattern
  from {{ relation }}
  where {{ cell }} is not null and trim({{ dbt.split_part(cell, "';'", i) }}) <> ''
      {%- if not loop.last %}
  union all
      {%- endif -%}
    {%- endfor -%}
    {%- if not loop.last %}
  union all
    {%- endif -%}
  {%- endfor %}
{%- endmacro %}

{% macro like_matches(value, pattern) -%}
  (lower(coalesce({{ value }}, '')) like {{ pattern }} escape '!')
{%- endmacro %}

{#- Select the `columns` of `rows` (a relation or CTE with, besides, the columns campaign, medium,
    source, landing_page_raw and referrer_host) with marketing_channel and marketing_subchannel
    added: 'Other' when no rule matches.

    Rules are not evaluated per row. Each distinct landing page is reduced to the set of
    landing-page rules it matches (a bit mask), and the rules are evaluated once per distinct
    (campaign, medium, source, referrer host, landing mask). The rows then find their channel by
    those values, through small lookups: joining a channel back by a row key cost more than the
    rest (make bench: 3.5 million sessions). -#}
{% macro assign_channel(rows, columns) -%}
  with rules as (
      select rule_order, channel, subchannel, campaign, medium, source, landing_page, referring_website
      from {{ ref('channel_rules') }}
  ),

  rule_values as (
      {{ calltrail.explode_cells('rules', 'rule_order', ['campaign', 'medium', 'source', 'landing_page', 'referring_website']) }}
  ),

  required_cells as (
      select rule_key as rule_order, count(distinct cell_name) as required
      from rule_values
      group by rule_key
  ),

  landing_rules as (
      select rule_order, row_number() over (order by rule_order) - 1 as landing_bit
      from (select distinct rule_key as rule_order from rule_values where cell_name = 'landing_page') as with_landing
  ),

  landing_pages as (
      select distinct coalesce(landing_page_raw, '') as landing_page_raw
      from {{ rows }}
  ),

  landing_masks as (
      {#- Only landing pages that match a landing-page rule; the others have mask 0. -#}
      select
          landing_page_raw,
          cast(sum(power(2, landing_bit)) as {{ dbt.type_bigint() }}) as landing_mask
      from (
          select distinct landing_pages.landing_page_raw, landing_rules.landing_bit
          from landing_pages
          inner join rule_values
              on rule_values.cell_name = 'landing_page'
             and {{ calltrail.like_matches('landing_pages.landing_page_raw', 'rule_values.like_pattern') }}
          inner join landing_rules
              on rule_values.rule_key = landing_rules.rule_order
      ) as hits
      group by landing_page_raw
  ),

  distinct_signatures as (
      select distinct
          coalesce(candidates.campaign, '') as campaign,
          coalesce(candidates.medium, '') as medium,
          coalesce(candidates.source, '') as source,
          coalesce(candidates.referrer_host, '') as referrer_host,
          coalesce(landing_masks.landing_mask, 0) as landing_mask
      from {{ rows }} as candidates
      left join landing_masks
          on coalesce(candidates.landing_page_raw, '') = landing_masks.landing_page_raw
  ),

  signature_values as (
      select campaign, medium, source, referrer_host, landing_mask, 'campaign' as cell_name, campaign as cell_value
      from distinct_signatures
      union all
      select campaign, medium, source, referrer_host, landing_mask, 'medium', medium from distinct_signatures
      union all
      select campaign, medium, source, referrer_host, landing_mask, 'source', source from distinct_signatures
      union all
      select campaign, medium, source, referrer_host, landing_mask, 'referring_website', referrer_host
      from distinct_signatures
  ),

  cell_hits as (
      select
          signature_values.campaign, signature_values.medium, signature_values.source,
          signature_values.referrer_host, signature_values.landing_mask,
          rule_values.rule_key as rule_order,
          count(distinct rule_values.cell_name) as matched
      from signature_values
      inner join rule_values
          on signature_values.cell_name = rule_values.cell_name
         and {{ calltrail.like_matches('signature_values.cell_value', 'rule_values.like_pattern') }}
      group by 1, 2, 3, 4, 5, 6
  ),

  landing_cell_hits as (
      select
          distinct_signatures.campaign, distinct_signatures.medium, distinct_signatures.source,
          distinct_signatures.referrer_host, distinct_signatures.landing_mask,
          landing_rules.rule_order,
          1 as matched
      from distinct_signatures
      inner join landing_rules
          on mod(cast(floor(distinct_signatures.landing_mask / power(2, landing_rules.landing_bit)) as {{ dbt.type_bigint() }}), 2) = 1
  ),

  all_hits as (
      select campaign, medium, source, referrer_host, landing_mask, rule_order, sum(matched) as matched
      from (
          select * from cell_hits
          union all
          select * from landing_cell_hits
      ) as hits
      group by campaign, medium, source, referrer_host, landing_mask, rule_order
  ),

  candidates_rules as (
      select
          distinct_signatures.campaign, distinct_signatures.medium, distinct_signatures.source,
          distinct_signatures.referrer_host, distinct_signatures.landing_mask,
          rules.rule_order
      from distinct_signatures
      cross join rules
      left join required_cells
          on rules.rule_order = required_cells.rule_order
      left join all_hits
          on distinct_signatures.campaign = all_hits.campaign
         and distinct_signatures.medium = all_hits.medium
         and distinct_signatures.source = all_hits.source
         and distinct_signatures.referrer_host = all_hits.referrer_host
         and distinct_signatures.landing_mask = all_hits.landing_mask
         and rules.rule_order = all_hits.rule_order
      where coalesce(all_hits.matched, 0) = coalesce(required_cells.required, 0)
  ),

  channel_by_signature as (
      select
          first_match.campaign, first_match.medium, first_match.source, first_match.referrer_host,
          first_match.landing_mask, rules.channel, rules.subchannel
      from (
          select campaign, medium, source, referrer_host, landing_mask, min(rule_order) as rule_order
          from candidates_rules
          group by campaign, medium, source, referrer_host, landing_mask
      ) as first_match
      inner join rules
          on first_match.rule_order = rules.rule_order
  )

  select
      {%- for column in columns %}
      candidates.{{ column }},
      {%- endfor %}
      coalesce(channel_by_signature.channel, 'Other') as marketing_channel,
      channel_by_signature.subchannel as marketing_subchannel
  from {{ rows }} as candidates
  left join landing_masks
      on coalesce(candidates.landing_page_raw, '') = landing_masks.landing_page_raw
  left join channel_by_signature
      on coalesce(candidates.campaign, '') = channel_by_signature.campaign
     and coalesce(candidates.medium, '') = channel_by_signature.medium
     and coalesce(candidates.source, '') = channel_by_signature.source
     and coalesce(candidates.referrer_host, '') = channel_by_signature.referrer_host
     and coalesce(landing_masks.landing_mask, 0) = channel_by_signature.landing_mask
{%- endmacro %}
