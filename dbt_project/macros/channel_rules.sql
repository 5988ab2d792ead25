{#- Marketing channel rules (seed channel_rules): ordered, first match wins.

    A cell holds one or more values separated by ';', each matched case-insensitively against the
    whole value, with '*' as a wildcard ('x*', '*x', '*x*'). An empty cell matches anything;
    '(none)' matches an empty value. Values may use letters, digits, spaces and . - _ / : = & ? + $ ( ).
    A cell becomes one regular expression, once per rule. -#}

{% macro rule_cell_regex(cell) -%}
  {%- set s = "lower(trim(" ~ cell ~ "))" -%}
  {%- set s = "replace(replace(" ~ s ~ ", ' ;', ';'), '; ', ';')" -%}
  {%- set s = "replace(" ~ s ~ ", '(none)', '')" -%}
  {%- for ch in ['.', '+', '?', '(', ')', '$'] -%}
    {%- set s = "replace(" ~ s ~ ", '" ~ ch ~ "', '[" ~ ch ~ "]')" -%}
  {%- endfor -%}
  {%- set s = "replace(" ~ s ~ ", '*', '.*')" -%}
  {%- set s = "replace(" ~ s ~ ", ';', '|')" -%}
  {{ dbt.concat(["'^('", s, "')$'"]) }}
{%- endmacro %}

{% macro rule_cell_matches(cell, regex, value) -%}
  ({{ cell }} is null or trim({{ cell }}) = ''
   or {{ calltrail.regexp_matches("lower(coalesce(" ~ value ~ ", ''))", regex) }})
{%- endmacro %}

{#- Select `key`, marketing_channel and marketing_subchannel for every row of `rows`, a CTE with
    columns campaign, medium, source, landing_page_raw and referrer_host. 'Other' when no rule
    matches. -#}
{% macro assign_channel(rows, key) -%}
  with rules as (
      select
          rule_order,
          channel,
          subchannel,
          campaign,
          medium,
          source,
          landing_page,
          referring_website,
          {{ calltrail.rule_cell_regex('campaign') }} as campaign_regex,
          {{ calltrail.rule_cell_regex('medium') }} as medium_regex,
          {{ calltrail.rule_cell_regex('source') }} as source_regex,
          {{ calltrail.rule_cell_regex('landing_page') }} as landing_page_regex,
          {{ calltrail.rule_cell_regex('referring_website') }} as referring_website_regex
      from {{ ref('channel_rules') }}
  ),

  first_match as (
      select
          candidates.{{ key }},
          min(rules.rule_order) as rule_order
      from {{ rows }} as candidates
      cross join rules
      where {{ calltrail.rule_cell_matches('rules.campaign', 'rules.campaign_regex', 'candidates.campaign') }}
        and {{ calltrail.rule_cell_matches('rules.medium', 'rules.medium_regex', 'candidates.medium') }}
        and {{ calltrail.rule_cell_matches('rules.source', 'rules.source_regex', 'candidates.source') }}
        and {{ calltrail.rule_cell_matches('rules.landing_page', 'rules.landing_page_regex', 'candidates.landing_page_raw') }}
        and {{ calltrail.rule_cell_matches('rules.referring_website', 'rules.referring_website_regex', 'candidates.referrer_host') }}
      group by candidates.{{ key }}
  )

  select
      candidates.{{ key }},
      coalesce(rules.channel, 'Other') as marketing_channel,
      rules.subchannel as marketing_subchannel
  from {{ rows }} as candidates
  left join first_match
      on candidates.{{ key }} = first_match.{{ key }}
  left join rules
      on first_match.rule_order = rules.rule_order
{%- endmacro %}
