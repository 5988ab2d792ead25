{#-
  Write-audit-publish: the last step of a run whose checks passed. dbt builds every model into the
  target schema (the audit area); this copies the consumer marts into the publish schema, all of
  them in one transaction, so consumers see either the previous published set or the new one.
  The same transaction adds a row to `<publish log schema>.publications` (when, which models), so a
  failed run can say how old the published marts are.

  dbt run-operation calltrail__publish
-#}

{% macro calltrail__publish(models=none, audited_build=none) %}
  {%- set models = models or var('calltrail__published_models') -%}
  {%- if audited_build is not none -%}
    {%- set latest = calltrail.latest_build() -%}
    {%- if latest != audited_build -%}
      {%- do exceptions.raise_compiler_error("calltrail: the build schema holds build " ~ (latest or "(none recorded)")
          ~ ", not the build " ~ audited_build ~ " this run's audit checked: a dbt command wrote models after the audit. "
          ~ "Nothing was published: consumers keep the previous marts.") -%}
    {%- endif -%}
  {%- endif -%}
  {%- set schema = var('calltrail__publish_schema') -%}
  {%- set statements = [] -%}
  {%- set log_schema = var('calltrail__publish_log_schema') -%}
  {#- Spark has no database level above the schema -#}
  {%- set database = target.database if target.database is defined else none -%}
  {%- set publications = api.Relation.create(database=database, schema=log_schema, identifier='publications', type='table') -%}
  {%- for name in models -%}
    {%- set source = ref(name) -%}
    {%- set published = api.Relation.create(database=source.database, schema=schema, identifier=name, type='table') -%}
    {%- do statements.append(calltrail.publish_table_sql(source, published)) -%}
  {%- endfor -%}
  {%- do statements.extend(calltrail.record_publication_sql(publications, models)) -%}
  {#- Only a missing schema: PostgreSQL refuses even `create schema if not exists` of an existing
      one to a user without CREATE on the database (schemas its administrator made) -#}
  {%- for name in [schema, log_schema] if not adapter.check_schema_exists(database, name) %}
  {% do adapter.create_schema(api.Relation.create(database=database, schema=name)) %}
  {%- endfor %}
  {%- do adapter.dispatch('publish_tables', 'calltrail')(statements) -%}
  {{ log("published " ~ models | length ~ " table(s) into schema " ~ schema, info=true) }}
{% endmacro %}

{#- One row per publish: its time (UTC, without a zone) and the models it published. A list of
    statements: Spark runs each on its own. -#}
{% macro record_publication_sql(publications, models) -%}
  {{ return(adapter.dispatch('record_publication_sql', 'calltrail')(publications, models)) }}
{%- endmacro %}

{% macro default__record_publication_sql(publications, models) -%}
  {{ return([
    "create table if not exists " ~ publications ~ " (published_at timestamp, models varchar(1000), invocation_id varchar(64));",
    "insert into " ~ publications ~ " (published_at, models, invocation_id) values (cast(now() at time zone 'UTC' as timestamp), '" ~ models | join(",") ~ "', '" ~ invocation_id ~ "');",
  ]) }}
{%- endmacro %}

{% macro spark__record_publication_sql(publications, models) -%}
  {{ return([
    "create table if not exists " ~ publications ~ " (published_at timestamp, models string, invocation_id string)",
    "insert into " ~ publications ~ " values (current_timestamp(), '" ~ models | join(",") ~ "', '" ~ invocation_id ~ "')",
  ]) }}
{%- endmacro %}

{% macro publish_table_sql(source, published) -%}
  {{ return(adapter.dispatch('publish_table_sql', 'calltrail')(source, published)) }}
{%- endmacro %}

{% macro default__publish_table_sql(source, published) -%}
drop table if exists {{ published }};
create table {{ published }} as select * from {{ source }};
{%- endmacro %}

{#- Spark without a table format of its own (Delta, Iceberg) cannot replace a table in one step:
    the copy is written beside the published table first (`<name>__publishing`, in the publish
    schema, which a rename cannot leave), and swapped in by a drop and a rename. A dict of the two
    steps' statements: spark__publish_tables writes every copy before it swaps any.
    Without the partition column of an incremental model (docs/incremental.md): the published
    marts have the same columns on every engine. -#}
{% macro spark__publish_table_sql(source, published) -%}
{%- set columns = [] -%}
{%- for column in adapter.get_columns_in_relation(source) if column.name not in calltrail.bucket_columns() and column.name not in columns -%}
  {%- do columns.append(column.name) -%}
{%- endfor -%}
{%- set copy = published.incorporate(path={'identifier': published.identifier ~ '__publishing'}) -%}
{{ return({
  'copy': ["drop table if exists " ~ copy,
           "create table " ~ copy ~ " using parquet as select " ~ columns | join(', ') ~ " from " ~ source],
  'swap': ["drop table if exists " ~ published, "alter table " ~ copy ~ " rename to " ~ published],
}) }}
{%- endmacro %}

{#- DuckDB and PostgreSQL: transactional DDL. The statement opens one transaction for every
    table; it is committed once all are replaced, so the swap is atomic. -#}
{% macro default__publish_tables(statements) %}
  {% call statement('calltrail_publish') -%}
    {{ statements | join('\n') }}
  {%- endcall %}
  {% do adapter.commit() %}
{% endmacro %}

{#- Spark has no multi-statement transactions. Every copy is written first, while readers still read
    the published tables; a copy that fails stops publish before any published table is touched.
    Then each table is swapped for its copy, one after another, each a drop and a rename
    (docs/deploying.md says what readers may see meanwhile). The record of the publication last. -#}
{% macro spark__publish_tables(statements) %}
  {%- set tables = statements | select('mapping') | list -%}
  {% for step in ['copy', 'swap'] %}
    {% for table in tables %}
      {% for sql in table[step] %}
        {% do run_query(sql) %}
      {% endfor %}
    {% endfor %}
  {% endfor %}
  {% for sql in statements | reject('mapping') %}
    {% do run_query(sql) %}
  {% endfor %}
{% endmacro %}


{#- Write-audit-publish across processes: every dbt command that writes models (build, run, seed,
    snapshot; a hand-run one too) first records its invocation id in the build schema's table that
    the var `calltrail__builds_table` names (the on-run-start hook). The audit reads the latest id
    with the build it checks; publish is given that id and publishes only while it is still the
    latest, so a build that started after the audit (another run's, or one by hand) is never
    published unchecked. -#}
{#- The hook's SQL, which dbt runs outside a transaction. -#}
{% macro record_build() %}
  {%- if execute and flags.WHICH in ['build', 'run', 'seed', 'snapshot'] -%}
    {{ return(adapter.dispatch('record_build_sql', 'calltrail')(calltrail.builds_relation())) }}
  {%- endif -%}
  {{ return('') }}
{% endmacro %}

{% macro builds_relation() -%}
  {%- set database = target.database if target.database is defined and target.type != 'spark' else none -%}
  {{ return(api.Relation.create(database=database, schema=target.schema, identifier=var('calltrail__builds_table'), type='table')) }}
{%- endmacro %}

{#- DuckDB: each statement commits itself. -#}
{% macro default__record_build_sql(builds) -%}
create table if not exists {{ builds }} (invocation_id varchar(64), started_at timestamp);
insert into {{ builds }} (invocation_id, started_at) values ('{{ invocation_id }}', cast(now() at time zone 'UTC' as timestamp))
{%- endmacro %}

{#- PostgreSQL: psycopg2 opens a transaction that dbt does not commit for a hook. -#}
{% macro postgres__record_build_sql(builds) -%}
{{ calltrail.default__record_build_sql(builds) }};
commit
{%- endmacro %}

{#- Spark runs one statement at a time: run here, and the hook runs nothing. -#}
{% macro spark__record_build_sql(builds) -%}
  {%- do run_query("create table if not exists " ~ builds ~ " (invocation_id string, started_at timestamp) using parquet") -%}
  {%- do run_query("insert into " ~ builds ~ " values ('" ~ invocation_id ~ "', current_timestamp())") -%}
  {{ return('') }}
{%- endmacro %}

{#- The invocation id of the latest command that wrote models, or none. -#}
{% macro latest_build() %}
  {%- set builds = calltrail.builds_relation() -%}
  {%- if adapter.get_relation(builds.database, builds.schema, builds.identifier) is none -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set found = run_query("select invocation_id from " ~ builds ~ " order by started_at desc limit 1") -%}
  {{ return(found.columns[0].values()[0] if found.rows | length else none) }}
{% endmacro %}
