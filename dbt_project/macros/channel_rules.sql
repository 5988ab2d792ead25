{#- Marketing channel rules (seed channel_rules): ordered, first match wins.

    A cell holds one or more values separated by ';', each matched case-insensitively against the
    whole value, with '*' as a wildcard ('x*', '*x', '*x*'). An empty cell matches anything;
    '(none)' matches an empty value. Values may use letters, digits, spaces and . - _ / : = & ? + $ ( ).
    In referring_website, 'list:CATEGORY' stands for every host pattern of that category in the seed
    referrer_hosts (search, social, email) and 'list:CATEGORY:NAME' for those of one name there
    ('list:search:Google'). -#}

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
  {{ return(adapter.dispatch('explode_cells', 'calltrail')(relation, key, cells, max_values)) }}
{%- endmacro %}

{#- Spark: split and explode (Catalyst spent minutes planning the 100 branches of the portable form). -#}
{% macro spark__explode_cells(relation, key, cells, max_values) -%}
  {%- for cell in cells %}
  select {{ key }} as rule_key, '{{ cell }}' as cell_name, {{ calltrail.like_pattern('cell_value') }} as like_pattern
  from {{ relation }} lateral view explode(split({{ cell }}, ';')) cell_values as cell_value
  where {{ cell }} is not null and trim(cell_value) <> ''
    {%- if not loop.last %}
  union all
    {%- endif -%}
  {%- endfor %}
{%- endmacro %}

{% macro default__explode_cells(relation, key, cells, max_values) -%}
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

{#- CTE definitions (to be placed in a WITH list) that assign channels without touching rows one
    by one:

    - `<prefix>_landing_masks` (landing_page_raw, landing_mask): for each distinct landing page of
      `landing_pages` (a relation with a landing_page_raw column) that matches a landing-page rule,
      the set of those rules as a bit mask. Other pages have mask 0.
    - `<prefix>_channels` (campaign, medium, source, referrer_host, landing_mask, channel,
      subchannel): the first matching rule for every distinct (campaign, medium, source,
      referrer_host) of `signatures` combined with every landing mask that occurs. Empty values
      are ''. No row means no rule matched: 'Other'.

    Rows then take their channel through calltrail.channel_joins. Rules are evaluated once per
    distinct value; the caller decides which rows those come from, so that a wide intermediate
    result is not read twice (DuckDB materialises a step read twice: make bench). -#}
{% macro channel_lookup_ctes(prefix, signatures, landing_pages) -%}
  {{ prefix }}_rules as (
      select rule_order, channel, subchannel, campaign, medium, source, landing_page, referring_website
      from {{ ref('channel_rules') }}
  ),

  {{ prefix }}_cell_values as (
      {{ calltrail.explode_cells(prefix ~ '_rules', 'rule_order', ['campaign', 'medium', 'source', 'landing_page', 'referring_website']) }}
  ),

  {#- The seed referrer_hosts under the names a rule uses for them: 'list:search' and
      'list:search:google', as like_pattern writes them. -#}
  {{ prefix }}_host_lists as (
      select {{ calltrail.like_pattern(dbt.concat(["'list:'", 'category'])) }} as list_key,
             {{ calltrail.like_pattern('host_pattern') }} as like_pattern
      from {{ ref('referrer_hosts') }}
      union all
      select {{ calltrail.like_pattern(dbt.concat(["'list:'", 'category', "':'", 'name'])) }},
             {{ calltrail.like_pattern('host_pattern') }}
      from {{ ref('referrer_hosts') }}
  ),

  {{ prefix }}_rule_values as (
      select rule_key, cell_name, like_pattern
      from {{ prefix }}_cell_values
      where not (cell_name = 'referring_website' and like_pattern like 'list:%')
      union all
      select cell_values.rule_key, cell_values.cell_name, host_lists.like_pattern
      from {{ prefix }}_cell_values as cell_values
      inner join {{ prefix }}_host_lists as host_lists
          on cell_values.like_pattern = host_lists.list_key
      where cell_values.cell_name = 'referring_website'
  ),

  {{ prefix }}_required_cells as (
      select rule_key as rule_order, count(distinct cell_name) as required
      from {{ prefix }}_cell_values
      group by rule_key
  ),

  {{ prefix }}_landing_rules as (
      select rule_order, row_number() over (order by rule_order) - 1 as landing_bit
      from (select distinct rule_key as rule_order from {{ prefix }}_rule_values where cell_name = 'landing_page') as with_landing
  ),

  {{ prefix }}_landing_pages as (
      select distinct coalesce(landing_page_raw, '') as landing_page_raw
      from {{ landing_pages }}
  ),

  {{ prefix }}_landing_masks as (
      select
          landing_page_raw,
          cast(sum(power(2, landing_bit)) as {{ dbt.type_bigint() }}) as landing_mask
      from (
          select distinct pages.landing_page_raw, landing_rules.landing_bit
          from {{ prefix }}_landing_pages as pages
          inner join {{ prefix }}_rule_values as rule_values
              on rule_values.cell_name = 'landing_page'
             and {{ calltrail.like_matches('pages.landing_page_raw', 'rule_values.like_pattern') }}
          inner join {{ prefix }}_landing_rules as landing_rules
              on rule_values.rule_key = landing_rules.rule_order
      ) as hits
      group by landing_page_raw
  ),

  {{ prefix }}_distinct_signatures as (
      select distinct
          values_seen.campaign, values_seen.medium, values_seen.source, values_seen.referrer_host,
          masks.landing_mask
      from (
          select distinct
              coalesce(campaign, '') as campaign,
              coalesce(medium, '') as medium,
              coalesce(source, '') as source,
              coalesce(referrer_host, '') as referrer_host
          from {{ signatures }}
      ) as values_seen
      cross join (
          select 0 as landing_mask
          union
          select distinct landing_mask from {{ prefix }}_landing_masks
      ) as masks
  ),

  {{ prefix }}_signature_values as (
      select campaign, medium, source, referrer_host, landing_mask, 'campaign' as cell_name, campaign as cell_value
      from {{ prefix }}_distinct_signatures
      union all
      select campaign, medium, source, referrer_host, landing_mask, 'medium', medium from {{ prefix }}_distinct_signatures
      union all
      select campaign, medium, source, referrer_host, landing_mask, 'source', source from {{ prefix }}_distinct_signatures
      union all
      select campaign, medium, source, referrer_host, landing_mask, 'referring_website', referrer_host
      from {{ prefix }}_distinct_signatures
  ),

  {#- The rules each distinct value of a cell matches: the patterns (thousands of referrer hosts)
      are compared with each distinct value once, not with every signature that holds it. -#}
  {{ prefix }}_value_hits as (
      select distinct values_seen.cell_name, values_seen.cell_value, rule_values.rule_key as rule_order
      from (select distinct cell_name, cell_value from {{ prefix }}_signature_values) as values_seen
      inner join {{ prefix }}_rule_values as rule_values
          on values_seen.cell_name = rule_values.cell_name
         and {{ calltrail.like_matches('values_seen.cell_value', 'rule_values.like_pattern') }}
  ),

  {{ prefix }}_cell_hits as (
      select
          signature_values.campaign, signature_values.medium, signature_values.source,
          signature_values.referrer_host, signature_values.landing_mask,
          value_hits.rule_order,
          count(distinct value_hits.cell_name) as matched
      from {{ prefix }}_signature_values as signature_values
      inner join {{ prefix }}_value_hits as value_hits
          on signature_values.cell_name = value_hits.cell_name
         and signature_values.cell_value = value_hits.cell_value
      group by 1, 2, 3, 4, 5, 6
  ),

  {{ prefix }}_landing_cell_hits as (
      select
          signatures.campaign, signatures.medium, signatures.source,
          signatures.referrer_host, signatures.landing_mask,
          landing_rules.rule_order,
          1 as matched
      from {{ prefix }}_distinct_signatures as signatures
      inner join {{ prefix }}_landing_rules as landing_rules
          on mod(cast(floor(signatures.landing_mask / power(2, landing_rules.landing_bit)) as {{ dbt.type_bigint() }}), 2) = 1
  ),

  {{ prefix }}_all_hits as (
      select campaign, medium, source, referrer_host, landing_mask, rule_order, sum(matched) as matched
      from (
          select * from {{ prefix }}_cell_hits
          union all
          select * from {{ prefix }}_landing_cell_hits
      ) as hits
      group by campaign, medium, source, referrer_host, landing_mask, rule_order
  ),

  {{ prefix }}_candidate_rules as (
      select
          signatures.campaign, signatures.medium, signatures.source,
          signatures.referrer_host, signatures.landing_mask,
          rules.rule_order
      from {{ prefix }}_distinct_signatures as signatures
      cross join {{ prefix }}_rules as rules
      left join {{ prefix }}_required_cells as required_cells
          on rules.rule_order = required_cells.rule_order
      left join {{ prefix }}_all_hits as all_hits
          on signatures.campaign = all_hits.campaign
         and signatures.medium = all_hits.medium
         and signatures.source = all_hits.source
         and signatures.referrer_host = all_hits.referrer_host
         and signatures.landing_mask = all_hits.landing_mask
         and rules.rule_order = all_hits.rule_order
      where coalesce(all_hits.matched, 0) = coalesce(required_cells.required, 0)
  ),

  {{ prefix }}_channels as (
      select
          first_match.campaign, first_match.medium, first_match.source, first_match.referrer_host,
          first_match.landing_mask, rules.channel, rules.subchannel
      from (
          select campaign, medium, source, referrer_host, landing_mask, min(rule_order) as rule_order
          from {{ prefix }}_candidate_rules
          group by campaign, medium, source, referrer_host, landing_mask
      ) as first_match
      inner join {{ prefix }}_rules as rules
          on first_match.rule_order = rules.rule_order
  )
{%- endmacro %}

{#- The joins that give rows of `row_alias` (with columns campaign, medium, source, referrer_host
    and landing_page_raw, or expressions for them in `columns`) their channel from the lookups of
    channel_lookup_ctes: select coalesce(<prefix>_channels.channel, 'Other') and
    <prefix>_channels.subchannel. -#}
{% macro channel_joins(prefix, row_alias, columns={}) -%}
  {%- set c = {'campaign': row_alias ~ '.campaign', 'medium': row_alias ~ '.medium', 'source': row_alias ~ '.source',
               'referrer_host': row_alias ~ '.referrer_host', 'landing_page_raw': row_alias ~ '.landing_page_raw'} -%}
  {%- do c.update(columns) -%}
    left join {{ prefix }}_landing_masks
        on coalesce({{ c['landing_page_raw'] }}, '') = {{ prefix }}_landing_masks.landing_page_raw
    left join {{ prefix }}_channels
        on coalesce({{ c['campaign'] }}, '') = {{ prefix }}_channels.campaign
       and coalesce({{ c['medium'] }}, '') = {{ prefix }}_channels.medium
       and coalesce({{ c['source'] }}, '') = {{ prefix }}_channels.source
       and coalesce({{ c['referrer_host'] }}, '') = {{ prefix }}_channels.referrer_host
       and coalesce({{ prefix }}_landing_masks.landing_mask, 0) = {{ prefix }}_channels.landing_mask
{%- endmacro %}

{#- Select the `columns` of `rows` (a relation or CTE with, besides, the columns campaign, medium,
    source, landing_page_raw and referrer_host) with marketing_channel and marketing_subchannel
    added: 'Other' when no rule matches. For small inputs; see channel_lookup_ctes for large ones. -#}
{% macro assign_channel(rows, columns) -%}
  with {{ calltrail.channel_lookup_ctes('channel', rows, rows) }}

  select
      {%- for column in columns %}
      candidates.{{ column }},
      {%- endfor %}
      coalesce(channel_channels.channel, 'Other') as marketing_channel,
      channel_channels.subchannel as marketing_subchannel
  from {{ rows }} as candidates
  {{ calltrail.channel_joins('channel', 'candidates') }}
{%- endmacro %}
