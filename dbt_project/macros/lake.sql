{#- A lake table as a relation to select from: `select * from {{ calltrail.lake_source('salesforce_lead') }}`.

    On DuckDB the lake tables are read in place through a glob (the source's external_location).
    Until ingestion has written a file for a dataset, its glob matches nothing and read_parquet
    fails; the macro then gives an empty relation with the columns and types the source declares
    (_salesforce__sources.yml), so the models build on a lake that has no such data yet. Other
    engines read relations of the same name in schema `lake`: on PostgreSQL tables the lake's
    partitions are copied into, on Spark views over the lake's files
    (plugins/calltrail/transform/spark_lake.py); a dataset without one is read as empty too. In a unit
    test the source is a fixture and is returned as it is. -#}
{% macro lake_source(table_name) -%}
  {%- set relation = source('lake', table_name) -%}
  {{ return(adapter.dispatch('lake_source', 'calltrail')(table_name, relation)) }}
{%- endmacro %}

{% macro default__lake_source(table_name, relation) -%}
  {#- Loaded tables (calltrail.transform.postgres_lake) or views (calltrail.transform.spark_lake); a
      dataset nothing was loaded into yet is read as empty, as on DuckDB. -#}
  {%- if execute and 'dbt_unit_test' not in (relation | string) and
        adapter.get_relation(relation.database, relation.schema, relation.identifier) is none -%}
    {{ log("lake_source: " ~ relation ~ " does not exist; " ~ table_name ~ " is read as empty", info=false) }}
    {{ return(calltrail.empty_lake_table(table_name)) }}
  {%- endif -%}
  {{ return(relation) }}
{%- endmacro %}

{% macro duckdb__lake_source(table_name, relation) -%}
  {%- if not execute or 'read_parquet' not in (relation | string) -%}
    {{ return(relation) }}
  {%- endif -%}
  {%- set pattern = env_var('CALLTRAIL_LAKE_DIR') ~ '/' ~ var('calltrail__lake_' ~ table_name ~ '_glob') -%}
  {%- set found = run_query("select count(*) from glob('" ~ pattern | replace("'", "''") ~ "')") -%}
  {%- if found.columns[0].values()[0] > 0 -%}
    {{ return(relation) }}
  {%- endif -%}
  {{ log("lake_source: no file matches " ~ pattern ~ "; " ~ table_name ~ " is read as empty", info=false) }}
  {{ return(calltrail.empty_lake_table(table_name)) }}
{%- endmacro %}

{#- When a lake row was loaded: the `_loaded_at` every load writes into its rows (one per load: the
    batch; plugins/calltrail/lake/convert.py), as a timestamp. -#}
{% macro lake_loaded_at() -%}
  cast({{ adapter.quote('_loaded_at') }} as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#- The declared columns of lake table `table_name`, typed, without rows. -#}
{% macro empty_lake_table(table_name) -%}
  {%- set node = graph.sources['source.calltrail.lake.' ~ table_name] -%}
  {%- set columns = [] -%}
  {%- for name, column in node.columns.items() -%}
    {%- if not column.data_type -%}
      {{ exceptions.raise_compiler_error("lake." ~ table_name ~ "." ~ name ~ " declares no data_type: lake_source cannot read it as empty") }}
    {%- endif -%}
    {%- do columns.append("cast(null as " ~ column.data_type ~ ") as " ~ adapter.quote(name)) -%}
  {%- endfor -%}
  {{ return("(select " ~ columns | join(", ") ~ " where 1 = 0) as " ~ table_name ~ "_without_files") }}
{%- endmacro %}

{#- The latest live version of each record of a Salesforce object's `_versions` model: the highest
    SystemModstamp wins; on a tie a deleted version, then the later load; deleted records are left
    out. (Tasks keep their own order, stg_salesforce__tasks: LastModifiedDate breaks their ties.) -#}
{% macro latest_live_versions(versions, key) -%}
    select * from (
        select
            versions.*,
            row_number() over (
                partition by {{ key }}
                order by system_modstamp desc, is_deleted desc, loaded_at desc
            ) as version_rank
        from {{ versions }} as versions
    ) as ranked
    where version_rank = 1
      and not is_deleted
{%- endmacro %}
