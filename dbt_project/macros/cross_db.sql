{#- Regular expressions differ by engine; everything else in the project uses dbt's
    cross-database macros. Patterns stay within the common subset of RE2 (DuckDB), POSIX
    (PostgreSQL) and Java (Spark): no backslashes (escape with [.]), no back-references. -#}

{% macro regexp_matches(expr, pattern) -%}
  {{ return(adapter.dispatch('regexp_matches', 'calltrail')(expr, pattern)) }}
{%- endmacro %}

{% macro default__regexp_matches(expr, pattern) -%}
  regexp_matches({{ expr }}, {{ pattern }})
{%- endmacro %}

{% macro postgres__regexp_matches(expr, pattern) -%}
  ({{ expr }} ~ {{ pattern }})
{%- endmacro %}

{% macro spark__regexp_matches(expr, pattern) -%}
  ({{ expr }} rlike {{ pattern }})
{%- endmacro %}


{#- The first match's capture group, or null when there is no match. -#}
{% macro regexp_extract(expr, pattern, group=1) -%}
  {{ return(adapter.dispatch('regexp_extract', 'calltrail')(expr, pattern, group)) }}
{%- endmacro %}

{% macro default__regexp_extract(expr, pattern, group) -%}
  nullif(regexp_extract({{ expr }}, {{ pattern }}, {{ group }}), '')
{%- endmacro %}

{% macro postgres__regexp_extract(expr, pattern, group) -%}
  nullif((regexp_match({{ expr }}, {{ pattern }}))[{{ group }}], '')
{%- endmacro %}

{% macro spark__regexp_extract(expr, pattern, group) -%}
  nullif(regexp_extract({{ expr }}, {{ pattern }}, {{ group }}), '')
{%- endmacro %}


{% macro regexp_replace_all(expr, pattern, replacement) -%}
  {{ return(adapter.dispatch('regexp_replace_all', 'calltrail')(expr, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(expr, pattern, replacement) -%}
  regexp_replace({{ expr }}, {{ pattern }}, {{ replacement }}, 'g')
{%- endmacro %}

{% macro spark__regexp_replace_all(expr, pattern, replacement) -%}
  regexp_replace({{ expr }}, {{ pattern }}, {{ replacement }})
{%- endmacro %}
