{#- Incremental builds (docs/incremental.md).

    A run rebuilds only what the lake's new rows and the CRM's changes reach, each unit from its
    whole history, so the rows equal a full rebuild's whatever the inactivity gap, the call window
    or the Task overlap:
    - the Tasks with a new version, from all their versions: stg_salesforce__tasks;
    - the visitors (BizibleIds) with a new web event or a new Task version (the visitor of its
      BizibleId now and the one it had): int_sessions, int_calls_matched_to_sessions,
      int_conversions;
    - the journeys (people, anonymous visitors) of those visitors, and those whose identity links
      changed: fct_touchpoints;
    - the opportunities of those people, and those whose record or people changed: fct_attribution.

    - int_lake_batches: the lake's batches (each load writes its rows with one _loaded_at).
    - int_increment: this run's mode, `incremental` or `full`, and why.
    - int_changed_tasks, int_changed_visitors, int_changed_journeys, int_changed_opportunities:
      what this run rebuilds (incremental mode only).
    - int_increment_state and int_journey_state: after the last incremental model, the batches,
      the identity links and the opportunities' records and people the models were built from, and
      the rules' fingerprint. A run that fails before leaves them as they were, so the next run
      rebuilds the same units again.

    Each incremental model first removes the rows it rebuilds (a pre-hook), then appends them:
    DuckDB and PostgreSQL delete the units' rows; Spark (Parquet tables, no DELETE) copies the rows
    of the units it keeps from the units' buckets into a table of its own, drops the buckets'
    partitions and appends the kept rows again with the rebuilt ones. -#}

{#- What an incremental model rebuilds its rows by (its unit), per unit:
    - key: the unit's key on the model's rows;
    - changed: the model that lists the units this run rebuilds, and its key column there;
    - bucket: Spark's partition column of the unit (the units are spread over 16 buckets).
    `visitor` (a BizibleId): the sessions, call matches and conversions. `journey` (a person, or an
    anonymous visitor's BizibleId): the touchpoints, whose positions are per journey.
    `opportunity`: the attribution. `task`: the Tasks' latest versions (stg_salesforce__tasks). -#}
{% macro rebuild_unit(unit) -%}
  {%- set units = {
      'visitor': {'key': 'bizible_id', 'changed': 'int_changed_visitors', 'column': 'bizible_id', 'bucket': 'visitor_bucket'},
      'journey': {'key': 'coalesce(person_id, bizible_id)', 'changed': 'int_changed_journeys', 'column': 'journey_key', 'bucket': 'journey_bucket'},
      'opportunity': {'key': 'opportunity_id', 'changed': 'int_changed_opportunities', 'column': 'opportunity_id', 'bucket': 'opportunity_bucket'},
      'task': {'key': 'task_id', 'changed': 'int_changed_tasks', 'column': 'task_id', 'bucket': 'task_bucket'},
  } -%}
  {%- if unit not in units -%}
    {{ exceptions.raise_compiler_error("calltrail: no rebuild unit '" ~ unit ~ "' (visitor, journey, opportunity or task)") }}
  {%- endif -%}
  {{ return(units[unit]) }}
{%- endmacro %}

{#- Spark's partition columns of the incremental models: publish leaves them out. -#}
{% macro bucket_columns() -%}
  {{ return(['visitor_bucket', 'journey_bucket', 'opportunity_bucket', 'task_bucket']) }}
{%- endmacro %}

{#- An incremental model's config: append after the pre-hook's removal of the units it rebuilds;
    on Spark, partitioned by the unit's bucket, with the kept rows' table made before the removal
    and dropped after the append (one statement per hook: the session method runs one per call). -#}
{% macro incremental_config(unit, pre_hook=[], post_hook=[]) -%}
  {%- set remove = [{'sql': "{{ calltrail.remove_rebuilt_rows('" ~ unit ~ "') }}", 'transaction': true}] -%}
  {%- set config = {
      'materialized': 'incremental',
      'incremental_strategy': 'append',
      'on_schema_change': 'fail',
      'pre_hook': pre_hook + remove,
      'post_hook': post_hook,
  } -%}
  {%- if target.type == 'spark' -%}
    {%- set drop = [{'sql': "{{ calltrail.spark_kept_rows('" ~ unit ~ "', 'drop') }}", 'transaction': true}] -%}
    {%- set keep = [{'sql': "{{ calltrail.spark_kept_rows('" ~ unit ~ "', 'keep') }}", 'transaction': true}] -%}
    {%- do config.update({'file_format': 'parquet', 'partition_by': [calltrail.rebuild_unit(unit).bucket],
                          'pre_hook': pre_hook + drop + keep + remove, 'post_hook': post_hook + drop}) -%}
  {%- endif -%}
  {{ return(config) }}
{%- endmacro %}

{% macro visitor_incremental_config(pre_hook=[], post_hook=[]) -%}
  {{ return(calltrail.incremental_config('visitor', pre_hook, post_hook)) }}
{%- endmacro %}

{#- A unit's bucket: a visitor's is the first hex digit of the BizibleId; a journey's, an
    opportunity's and a Task's the first hex digit of their key's MD5 (Salesforce Ids share their
    prefixes). -#}
{% macro rebuild_bucket(unit, key) -%}
  {%- if unit == 'visitor' -%}
  substring({{ key }}, 1, 1)
  {%- else -%}
  substring({{ dbt.hash(key) }}, 1, 1)
  {%- endif -%}
{%- endmacro %}

{#- The partition column on Spark, after the model's own columns (nothing on other engines). -#}
{% macro bucket_column(unit, key) -%}
  {%- if target.type == 'spark' -%}, {{ calltrail.rebuild_bucket(unit, key) }} as {{ calltrail.rebuild_unit(unit).bucket }}{%- endif -%}
{%- endmacro %}

{% macro visitor_bucket_column(bizible_id='bizible_id') -%}
  {{ calltrail.bucket_column('visitor', bizible_id) }}
{%- endmacro %}

{#- A condition: the unit with key `key` is rebuilt in this run (every one in full mode). The
    model must declare `-- depends_on:` int_increment and the unit's `changed` model. -#}
{% macro rebuilt(unit, key) -%}
  {%- set spec = calltrail.rebuild_unit(unit) -%}
  ((select mode from {{ ref('int_increment') }}) = 'full' or {{ key }} in (select {{ spec.column }} from {{ ref(spec.changed) }}))
{%- endmacro %}

{% macro rebuilt_visitor(bizible_id) -%}
  {{ calltrail.rebuilt('visitor', bizible_id) }}
{%- endmacro %}

{#- The web events of the visitors this run rebuilds, with `columns`: on an incremental run
    int_rebuilt_web_events, on a full one every event of stg_web__events. The branch whose condition
    is false holds no rows, and its condition reads no column of the events, so the engine skips
    its scan (DuckDB and PostgreSQL). -#}
{% macro rebuilt_web_events(columns) -%}
    select {{ columns }} from {{ ref('int_rebuilt_web_events') }}
    union all
    select {{ columns }} from {{ ref('stg_web__events') }}
    where (select mode from {{ ref('int_increment') }}) = 'full'
{%- endmacro %}

{#- A model of this project's schema by name, for the hooks and for int_increment, which read
    models that are not (or not yet) their parents. -#}
{% macro sibling(identifier) -%}
  {{ return(adapter.get_relation(this.database, this.schema, identifier)) }}
{%- endmacro %}

{#- dbt's should_full_refresh, overridden for the project: besides what dbt's own says
    (`--full-refresh`, or a model's `full_refresh` config), true for an incremental model when this
    run is full (int_increment). dbt then recreates its table from the model's whole select instead
    of appending to it, so a full run also takes new columns: a change of columns comes with a change
    of the rules, which makes the run full (increment_fingerprint). Read at execution; before
    int_increment exists (a first run, a selection without it) only dbt's own answer counts. -#}
{% macro should_full_refresh() -%}
  {%- set full_refresh = dbt.should_full_refresh() -%}
  {%- if not full_refresh and execute and this is not none and model.resource_type == 'model'
        and model.config.materialized == 'incremental' -%}
    {%- set full_refresh = calltrail.run_is_full() -%}
  {%- endif -%}
  {{ return(full_refresh) }}
{%- endmacro %}

{#- Whether int_increment says `full`, read once per model and context (its compilation, its
    materialization with the hooks): each call of is_incremental() asks, and on a Spark cluster
    each query costs a round trip. False while int_increment does not exist. -#}
{% macro run_is_full() -%}
  {%- if 'calltrail_run_is_full' not in model -%}
    {%- set increment = calltrail.sibling('int_increment') -%}
    {%- do model.update({'calltrail_run_is_full': increment is not none
          and run_query("select mode from " ~ increment).columns[0].values()[0] == 'full'}) -%}
  {%- endif -%}
  {{ return(model['calltrail_run_is_full']) }}
{%- endmacro %}

{#- The pre-hook: remove the rows of the units this run rebuilds. Only in an incremental run: in a
    full one dbt recreates the table (should_full_refresh). -#}
{% macro remove_rebuilt_rows(unit) -%}
  {%- if execute and is_incremental() -%}
    {{ return(adapter.dispatch('remove_rebuilt_rows', 'calltrail')(this, calltrail.rebuild_unit(unit))) }}
  {%- endif -%}
{%- endmacro %}

{% macro default__remove_rebuilt_rows(relation, spec) -%}
  delete from {{ relation }}
  where {{ spec.key }} in (select {{ spec.column }} from {{ calltrail.sibling(spec.changed) }})
{%- endmacro %}

{% macro spark__remove_rebuilt_rows(relation, spec) -%}
  {#- One statement (the session method runs one per call). -#}
  {%- set buckets = run_query("select distinct " ~ spec.bucket ~ " from " ~ calltrail.sibling(spec.changed)).columns[0].values() -%}
  {%- if buckets -%}
  alter table {{ relation }} drop if exists
    {%- for bucket in buckets | sort %} partition ({{ spec.bucket }} = '{{ bucket }}'){{ "," if not loop.last }}{% endfor %}
  {%- endif -%}
{%- endmacro %}

{#- Spark: the table that holds, during an incremental model's build, the rows of its table that
    the run keeps from the buckets whose partitions it drops (by the model's name; int_increment
    looks for one a stopped run left). -#}
{% macro kept_identifier(identifier) -%}
  {{ return(identifier ~ '__kept') }}
{%- endmacro %}

{% macro kept_relation(relation) -%}
  {{ return(relation.incorporate(path={'identifier': calltrail.kept_identifier(relation.identifier)})) }}
{%- endmacro %}

{#- Spark's hooks around the removal (incremental_config): `drop` the kept rows' table (before, in
    case an earlier run left it, and after the append; in a full run too); `keep` copies into it
    the rows of the units in the changed units' buckets that this run does not rebuild. A run that
    stops between the removal and the append leaves the table behind, and int_increment then makes
    the next run a full one. -#}
{% macro spark_kept_rows(unit, step) -%}
  {%- if execute and target.type == 'spark' -%}
    {%- set kept = calltrail.kept_relation(this) -%}
    {%- if step == 'drop' -%}
    drop table if exists {{ kept }}
    {%- elif is_incremental() -%}
      {%- set spec = calltrail.rebuild_unit(unit) -%}
      {%- set changed = calltrail.sibling(spec.changed) -%}
    create table {{ kept }} using parquet as
    select * from {{ this }}
    where {{ spec.bucket }} in (select {{ spec.bucket }} from {{ changed }})
      and {{ spec.key }} not in (select {{ spec.column }} from {{ changed }})
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}

{#- The end of an incremental model's select: on Spark, the kept rows (spark_kept_rows) after the
    rebuilt ones; nothing on the other engines, nor in a unit test (which has no `this`). -#}
{% macro kept_rows() -%}
  {%- if target.type == 'spark' and this is not none and is_incremental() %}
union all
select * from {{ calltrail.kept_relation(this) }}
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
    own SQL and that of the models that feed or steer them, the project's macros that SQL calls
    (called_macros) and dbt's version. When it changes, the next run is a full one. -#}
{% macro increment_fingerprint() -%}
  {%- set parts = ['dbt=' ~ dbt_version] -%}
  {%- for name in ['calltrail__session_inactivity_minutes', 'calltrail__call_window_minutes',
                   'calltrail__call_window_anchor', 'calltrail__call_time_fields', 'calltrail__bizible_id_pattern',
                   'calltrail__bizible_id_field', 'calltrail__touchpoint_date_field', 'calltrail__call_filter',
                   'calltrail__web_event_types', 'calltrail__match_statuses', 'calltrail__attribution_models',
                   'calltrail__opportunity_people_fallback', 'calltrail__default_currency'] -%}
    {%- do parts.append(name ~ '=' ~ tojson(var(name))) -%}
  {%- endfor -%}
  {%- set steering = calltrail.incremental_tables() + [
        'int_session_events', 'int_rebuilt_web_events', 'int_changed_visitors', 'int_changed_tasks',
        'int_increment', 'int_lake_batches',
        'int_increment_state', 'int_person_ids', 'int_person_links', 'int_opportunity_people',
        'int_opportunity_journeys', 'int_changed_journeys', 'int_changed_opportunities',
        'int_journey_state'] -%}
  {%- set sql = [] -%}
  {%- for node in graph.nodes.values() | sort(attribute='unique_id') -%}
    {%- if node.resource_type == 'seed' or node.name in steering -%}
      {%- do parts.append(node.unique_id ~ '=' ~ node.checksum.checksum) -%}
      {%- if node.resource_type == 'model' -%}{%- do sql.append(node.raw_code) -%}{%- endif -%}
    {%- endif -%}
  {%- endfor -%}
  {%- for name in calltrail.called_macros(sql) -%}
    {%- do parts.append('macro.calltrail.' ~ name ~ '=' ~ local_md5(calltrail[name].macro.macro_sql)) -%}
  {%- endfor -%}
  {{ return(local_md5(parts | join('\n'))) }}
{%- endmacro %}

{#- The names of this project's macros that the given SQL calls, directly or through one another,
    sorted. Read from the text, not from dbt's `depends_on`, which lists only the macros a model
    called while dbt parsed it: not those of its incremental branch. A call is a name followed by
    `(`, or named in `adapter.dispatch('name', ...)`; it reaches the project's macro of that name
    and every engine's variant of it (`spark__name`, also of dbt's own macros, such as
    `spark__split_part`). A name in a comment counts too: more macros than needed, never fewer. -#}
{% macro called_macros(sql) -%}
  {%- set names = calltrail | list -%}
  {%- set found = [] -%}
  {%- set queue = sql | list -%}
  {%- for text in queue -%}
    {%- set called = modules.re.findall('([A-Za-z_][A-Za-z0-9_]*)\\s*\\(', text)
                     + modules.re.findall('dispatch\\(\\s*[\'"]([A-Za-z0-9_]+)[\'"]', text) -%}
    {%- for name in names if name not in found -%}
      {%- if name in called or name.split('__', 1)[-1] in called -%}
        {%- do found.append(name) -%}
        {%- do queue.append(calltrail[name].macro.macro_sql) -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endfor -%}
  {{ return(found | sort) }}
{%- endmacro %}

{#- What the journeys and the attribution read besides the incremental models' rows, one row per
    kind, record and value: each BizibleId's person (`link`), each Lead's and Contact's person
    (`person`), each opportunity's people (`opportunity_person`) and a hash of the fields of the
    opportunity the attribution reads (`opportunity`). int_journey_state keeps them as the last good
    run built with them; int_changed_journeys and int_changed_opportunities rebuild what changed. -#}
{% macro journey_state_rows() -%}
  {%- set fields = ['amount', 'currency_iso_code', 'created_at', 'close_date', 'is_closed', 'is_won'] -%}
  {%- set parts = [] -%}
  {%- for field in fields -%}
    {%- do parts.append("coalesce(cast(" ~ field ~ " as " ~ dbt.type_string() ~ "), '-')") -%}
    {%- if not loop.last -%}{%- do parts.append("'|'") -%}{%- endif -%}
  {%- endfor -%}
    select cast('link' as {{ dbt.type_string() }}) as kind, bizible_id as record_id, person_id as state_value
    from {{ ref('int_person_links') }}
    union all
    select cast('person' as {{ dbt.type_string() }}) as kind, salesforce_id as record_id, person_id as state_value
    from {{ ref('int_person_ids') }}
    union all
    select cast('opportunity_person' as {{ dbt.type_string() }}) as kind, opportunity_id as record_id, person_id as state_value
    from {{ ref('int_opportunity_people') }}
    union all
    select cast('opportunity' as {{ dbt.type_string() }}) as kind, opportunity_id as record_id,
           {{ dbt.hash(dbt.concat(parts)) }} as state_value
    from {{ ref('stg_salesforce__opportunities') }}
{%- endmacro %}

{#- The lake's batches the incremental models were not built from (int_lake_batches against
    int_increment_state): dataset, loaded_at, row_count; none in full mode. -#}
{% macro new_lake_batches(incremental) -%}
    {% if incremental -%}
    select dataset, loaded_at, row_count from {{ ref('int_lake_batches') }}
    except
    select dataset, loaded_at, row_count from {{ calltrail.sibling('int_increment_state') }}
    {%- else -%}
    select dataset, loaded_at, row_count from {{ ref('int_lake_batches') }} where 1 = 0
    {%- endif %}
{%- endmacro %}

{#- True when this run is incremental (int_increment), at execution; for the models that list
    what it rebuilds. -#}
{% macro incremental_run() -%}
  {{ return(execute and run_query("select mode from " ~ ref('int_increment')).columns[0].values()[0] == 'incremental') }}
{%- endmacro %}

{#- Two CTEs: `current_state`, journey_state_rows now, and `changed_state`, its rows that differ
    from the last good run's (int_journey_state): new, changed (both versions) or gone; none in
    full mode. -#}
{% macro journey_state_ctes(incremental) -%}
current_state as (

    {{ calltrail.journey_state_rows() }}

),

changed_state as (

  {%- if incremental %}

    (select kind, record_id, state_value from current_state
     except
     select kind, record_id, state_value from {{ calltrail.sibling('int_journey_state') }})
    union all
    (select kind, record_id, state_value from {{ calltrail.sibling('int_journey_state') }}
     except
     select kind, record_id, state_value from current_state)
  {%- else %}
    select kind, record_id, state_value from current_state where 1 = 0
  {%- endif %}

)
{%- endmacro %}
