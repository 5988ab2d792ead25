{#- Incremental builds by visitor (docs/incremental.md).

    The models that sessionise and match, int_sessions, int_calls_matched_to_sessions and
    int_conversions, are incremental. A run rebuilds only the visitors (BizibleIds) that have new
    rows in the lake since the last run: a new web event, or a new version of a Task (the visitor of
    its BizibleId now and the one it had). Each of those visitors is rebuilt from their whole
    history, so a late event, a call before its session and a Task that moves or is deleted give
    the rows a full rebuild gives, whatever the inactivity gap, the call window or the Task overlap.

    - int_lake_batches: the lake's batches (each load writes its rows with one _loaded_at).
    - int_increment: this run's mode, `incremental` or `full`, and why.
    - int_changed_visitors: the visitors to rebuild (incremental mode only).
    - int_increment_state: after the incremental models, the batches they hold and the rules'
      fingerprint. A run that fails before it leaves the state as it was, so the next run rebuilds
      those visitors again.

    Each incremental model first removes the rows it rebuilds (a pre-hook), then appends them:
    DuckDB and PostgreSQL delete the visitors' rows; Spark (Parquet tables, no DELETE) drops the
    partitions of the visitors' buckets (the first hex digit of the BizibleId) and rebuilds every
    visitor of those buckets. -#}

{#- The incremental models' config: append after the pre-hook's removal; on Spark, partitioned by
    the visitor's bucket. -#}
{% macro visitor_incremental_config(pre_hook=[], post_hook=[]) -%}
  {%- set config = {
      'materialized': 'incremental',
      'incremental_strategy': 'append',
      'on_schema_change': 'fail',
      'pre_hook': pre_hook + [{'sql': '{{ calltrail.remove_rebuilt_visitors() }}', 'transaction': true}],
      'post_hook': post_hook,
  } -%}
  {%- if target.type == 'spark' -%}
    {%- do config.update({'file_format': 'parquet', 'partition_by': ['visitor_bucket']}) -%}
  {%- endif -%}
  {{ return(config) }}
{%- endmacro %}

{#- A visitor's bucket: Spark's partition of the incremental models. -#}
{% macro visitor_bucket(bizible_id) -%}
  substring({{ bizible_id }}, 1, 1)
{%- endmacro %}

{#- The partition column on Spark, after the model's own columns (nothing on other engines). -#}
{% macro visitor_bucket_column(bizible_id='bizible_id') -%}
  {%- if target.type == 'spark' -%}, {{ calltrail.visitor_bucket(bizible_id) }} as visitor_bucket{%- endif -%}
{%- endmacro %}

{#- A condition: the visitor `bizible_id` is rebuilt in this run (every visitor in full mode). The
    model must declare `-- depends_on:` int_increment and int_changed_visitors. -#}
{% macro rebuilt_visitor(bizible_id) -%}
  {%- if target.type == 'spark' -%}
    {%- set changed = calltrail.visitor_bucket(bizible_id) ~ " in (select visitor_bucket from " ~ ref('int_changed_visitors') ~ ")" -%}
  {%- else -%}
    {%- set changed = bizible_id ~ " in (select bizible_id from " ~ ref('int_changed_visitors') ~ ")" -%}
  {%- endif -%}
  ((select mode from {{ ref('int_increment') }}) = 'full' or {{ changed }})
{%- endmacro %}

{#- A model of this project's schema by name, for the hooks and for int_increment, which read
    models that are not (or not yet) their parents. -#}
{% macro sibling(identifier) -%}
  {{ return(adapter.get_relation(this.database, this.schema, identifier)) }}
{%- endmacro %}

{#- The pre-hook: remove the rows this run rebuilds (all of them in full mode). -#}
{% macro remove_rebuilt_visitors() -%}
  {%- if execute and is_incremental() -%}
    {{ return(adapter.dispatch('remove_rebuilt_visitors', 'calltrail')(this)) }}
  {%- endif -%}
{%- endmacro %}

{% macro default__remove_rebuilt_visitors(relation) -%}
  delete from {{ relation }}
  where (select mode from {{ calltrail.sibling('int_increment') }}) = 'full'
     or bizible_id in (select bizible_id from {{ calltrail.sibling('int_changed_visitors') }})
{%- endmacro %}

{% macro spark__remove_rebuilt_visitors(relation) -%}
  {%- set mode = run_query("select mode from " ~ calltrail.sibling('int_increment')).columns[0].values()[0] -%}
  {%- if mode == 'full' -%}
    truncate table {{ relation }}
  {%- else -%}
    {#- One statement (the session method runs one per call). -#}
    {%- set buckets = run_query("select distinct visitor_bucket from " ~ calltrail.sibling('int_changed_visitors')).columns[0].values() -%}
    {%- if buckets -%}
    alter table {{ relation }} drop if exists
      {%- for bucket in buckets | sort %} partition (visitor_bucket = '{{ bucket }}'){{ "," if not loop.last }}{% endfor %}
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}

{#- The incremental tables: the models materialized `incremental` (read from the project's graph). -#}
{% macro incremental_tables() -%}
  {%- set names = [] -%}
  {%- for node in graph.nodes.values() | sort(attribute='name') -%}
    {%- if node.resource_type == 'model' and node.config.materialized == 'incremental' -%}
      {%- do names.append(node.name) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(names) }}
{%- endmacro %}

{#- What the incremental models' rows depend on besides the lake: the vars and seeds they read, their
    own SQL and that of the models that feed or steer them. When it changes, the next run is a full
    one. -#}
{% macro increment_fingerprint() -%}
  {%- set parts = [] -%}
  {%- for name in ['calltrail__session_inactivity_minutes', 'calltrail__call_window_minutes',
                   'calltrail__call_window_anchor', 'calltrail__call_time_fields', 'calltrail__bizible_id_pattern',
                   'calltrail__bizible_id_field', 'calltrail__touchpoint_date_field', 'calltrail__call_filter',
                   'calltrail__web_event_types', 'calltrail__match_statuses'] -%}
    {%- do parts.append(name ~ '=' ~ tojson(var(name))) -%}
  {%- endfor -%}
  {%- for node in graph.nodes.values() | sort(attribute='unique_id') -%}
    {%- if node.resource_type == 'seed' or node.name in calltrail.incremental_tables() + [
          'int_session_events', 'int_changed_visitors', 'int_increment', 'int_lake_batches',
          'int_increment_state'] -%}
      {%- do parts.append(node.unique_id ~ '=' ~ node.checksum.checksum) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(local_md5(parts | join('\n'))) }}
{%- endmacro %}
