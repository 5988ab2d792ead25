{#- This run's mode (docs/incremental.md): `incremental` rebuilds the Tasks, visitors, journeys
    and opportunities of int_changed_tasks, int_changed_visitors, int_changed_journeys and
    int_changed_opportunities; `full` rebuilds everything. Full when dbt runs with --full-refresh, on
    the first run (no int_increment_state yet), when an incremental model's table is missing, on
    Spark when an earlier run stopped while it rebuilt one (its kept rows' table is left), and
    when the rules changed since the last run: a var the models read, a seed, an incremental
    model's SQL or a macro it calls, dbt's version (increment_fingerprint), and when rows left
    the lake since the last run. One row. -#}
{{ config(materialized='table') }}

{%- set fingerprint = calltrail.increment_fingerprint() if execute else '' -%}
{%- set mode, reason = 'incremental', 'what new lake rows and CRM changes reach since the last run' -%}
{%- if execute -%}
  {%- set state = calltrail.sibling('int_increment_state') -%}
  {%- set journey_state = calltrail.sibling('int_journey_state') -%}
  {%- set missing, left = [], [] -%}
  {%- for name in calltrail.incremental_tables() -%}
    {%- if calltrail.sibling(name) is none -%}{%- do missing.append(name) -%}
    {%- elif target.type == 'spark' and calltrail.sibling(calltrail.kept_identifier(name)) is not none -%}
      {%- do left.append(name) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if flags.FULL_REFRESH -%}
    {%- set mode, reason = 'full', 'dbt ran with --full-refresh' -%}
  {%- elif state is none or journey_state is none -%}
    {%- set mode, reason = 'full', 'first run: no int_increment_state yet' if state is none else 'no int_journey_state yet' -%}
  {%- elif missing -%}
    {%- set mode, reason = 'full', 'no table ' ~ missing | join(', ') -%}
  {%- elif left -%}
    {%- set kept = [] -%}
    {%- for name in left -%}{%- do kept.append(calltrail.kept_identifier(name)) -%}{%- endfor -%}
    {%- set mode, reason = 'full', 'an earlier run stopped while it rebuilt ' ~ left | join(', ') ~ ' (its kept rows are left in ' ~ kept | join(', ') ~ ')' -%}
  {%- else -%}
    {%- set previous = run_query("select max(fingerprint) from " ~ state).columns[0].values()[0] -%}
    {#- A batch of the last good run that is gone, or holds fewer rows: rows left the lake (the demo
        data removed when your data arrived, a partition replaced). Their visitors cannot be found
        any more, so every visitor is rebuilt. -#}
    {%- set gone = run_query(
        "select count(*) from " ~ state ~ " as built left join " ~ ref('int_lake_batches') ~ " as now"
        ~ " on built.dataset = now.dataset and built.loaded_at = now.loaded_at"
        ~ " where now.row_count is null or now.row_count < built.row_count").columns[0].values()[0] -%}
    {%- if previous != fingerprint -%}
      {%- set mode, reason = 'full', 'the rules changed since the last run (a var, a seed, an incremental model or a macro it calls)' -%}
    {%- elif gone > 0 -%}
      {%- set mode, reason = 'full', 'rows left the lake since the last run (removed demo data or a replaced partition)' -%}
    {%- endif -%}
  {%- endif -%}
  {{ log("calltrail: " ~ mode ~ " build of the Tasks, sessions, call matches, conversions, touchpoints and attribution: " ~ reason, info=true) }}
{%- endif %}

-- depends_on: {{ ref('int_lake_batches') }}
select
    cast('{{ mode }}' as {{ dbt.type_string() }}) as mode,
    cast('{{ reason }}' as {{ dbt.type_string() }}) as reason,
    cast('{{ fingerprint }}' as {{ dbt.type_string() }}) as fingerprint
