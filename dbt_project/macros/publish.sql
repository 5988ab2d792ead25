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
  {{ log("published " ~ models | length ~ " mart(s) into schema " ~ schema, info=true) }}
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

{#- Spark without a table format of its own (Delta, Iceberg) cannot replace a table in one step,
    and a reader's session keeps the list of a table's files it read. So on Spark each published
    mart is a view, and each publish writes a version of every mart beside it in the publish schema
    (`<name>__version_<invocation id>`), then points the view at it: a view names its table anew
    in every query, and the version is a table no session has read. A dict of the two steps'
    statements: spark__publish_tables writes every version before it points any view at one.
    Without the partition column of an incremental model (docs/incremental.md): the published
    marts have the same columns on every engine. -#}
{% macro spark__publish_table_sql(source, published) -%}
{%- set columns = [] -%}
{%- for column in adapter.get_columns_in_relation(source) if column.name not in calltrail.bucket_columns() and column.name not in columns -%}
  {%- do columns.append(column.name) -%}
{%- endfor -%}
{%- set version = published.incorporate(path={'identifier': published.identifier ~ '__version_' ~ invocation_id | replace('-', '')}) -%}
{{ return({
  'published': published,
  'version': version,
  'copy': ["drop table if exists " ~ version,
           "create table " ~ version ~ " using parquet as select " ~ columns | join(', ') ~ " from " ~ source],
  'swap': ["create or replace view " ~ published ~ " as select " ~ columns | join(', ') ~ " from " ~ version],
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

{#- Spark has no multi-statement transactions. Every version is written first, while readers still
    read the published ones; a copy that fails stops publish before any view is touched. Then each
    view is pointed at its new version, one after another; the record of the publication follows.
    Last, the versions that no view reads any more are dropped, except the ones the views read
    until now: a query that began before the publish reads on (docs/deploying.md). A published
    mart that is still a table (as publish on Spark wrote it before it wrote views) is dropped
    just before its view is made. -#}
{% macro spark__publish_tables(statements) %}
  {%- set tables = statements | select('mapping') | list -%}
  {% for table in tables %}
    {% for sql in table['copy'] %}
      {% do run_query(sql) %}
    {% endfor %}
  {% endfor %}
  {%- set schema = tables[0]['published'].schema if tables else none -%}
  {%- set before = calltrail.spark_published_tables(schema) if tables else [] -%}
  {%- set keep = [] -%}
  {% for table in tables %}
    {%- set name = table['published'].identifier -%}
    {%- if name in before -%}
      {%- set found = calltrail.spark_published_mart(table['published']) -%}
      {%- if found['type'] != 'view' -%}
        {% do run_query("drop table " ~ table['published']) %}
      {%- elif found['reads'] -%}
        {% do keep.append(found['reads']) %}
      {%- endif -%}
    {%- endif -%}
    {% for sql in table['swap'] %}
      {% do run_query(sql) %}
    {% endfor %}
    {% do keep.append(table['version'].identifier) %}
  {% endfor %}
  {% for sql in statements | reject('mapping') %}
    {% do run_query(sql) %}
  {% endfor %}
  {%- set dropped = [] -%}
  {% for found in (calltrail.spark_published_tables(schema) if tables else []) if found not in keep %}
    {%- for table in tables if found.startswith(table['published'].identifier ~ '__version_')
                               or found == table['published'].identifier ~ '__publishing' -%}
      {% do run_query("drop table if exists " ~ table['published'].incorporate(path={'identifier': found})) %}
      {% do dropped.append(found) %}
    {%- endfor -%}
  {% endfor %}
  {{ log("dropped " ~ dropped | length ~ " earlier version(s) of the published marts", info=false) }}
{% endmacro %}

{#- The names of the tables and views of a Spark schema. -#}
{% macro spark_published_tables(schema) %}
  {%- set names = [] -%}
  {%- for row in run_query("show tables in " ~ schema).rows -%}
    {%- do names.append(row[1] | lower) -%}
  {%- endfor -%}
  {{ return(names) }}
{% endmacro %}

{#- What a published mart is: {'type': 'view' or 'table', 'reads': the version its view reads, or none}. -#}
{% macro spark_published_mart(relation) %}
  {%- set detail = {} -%}
  {%- for row in run_query("describe table extended " ~ relation).rows -%}
    {%- do detail.update({row[0]: row[1]}) -%}
  {%- endfor -%}
  {%- set reads = modules.re.findall(relation.identifier ~ '__version_[0-9a-f]+', (detail.get('View Text') or '') | lower) -%}
  {{ return({'type': (detail.get('Type') or '') | lower, 'reads': reads[0] if reads else none}) }}
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
