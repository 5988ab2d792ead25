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


{#- The latest non-null value of `expr` in the window, before the current row (lag ... ignore
    nulls) or up to and including it (last_value ... ignore nulls). PostgreSQL has no IGNORE
    NULLS: there the non-null values are collected with a filtered array_agg, which is fine for the
    short per-visitor windows calltrail uses. -#}
{% macro last_non_null(expr, partition_by, order_by, include_current=false) -%}
  {{ return(adapter.dispatch('last_non_null', 'calltrail')(expr, partition_by, order_by, include_current)) }}
{%- endmacro %}

{% macro default__last_non_null(expr, partition_by, order_by, include_current) -%}
  {%- if include_current -%}
  last_value({{ expr }} ignore nulls) over (partition by {{ partition_by }} order by {{ order_by }}
      rows between unbounded preceding and current row)
  {%- else -%}
  lag({{ expr }} ignore nulls) over (partition by {{ partition_by }} order by {{ order_by }})
  {%- endif -%}
{%- endmacro %}

{% macro spark__last_non_null(expr, partition_by, order_by, include_current) -%}
  last({{ expr }}, true) over (partition by {{ partition_by }} order by {{ order_by }}
      rows between unbounded preceding and {{ 'current row' if include_current else '1 preceding' }})
{%- endmacro %}

{% macro postgres__last_non_null(expr, partition_by, order_by, include_current) -%}
  {%- set window -%}
  over (partition by {{ partition_by }} order by {{ order_by }}
      rows between unbounded preceding and {{ 'current row' if include_current else '1 preceding' }})
  {%- endset -%}
  (array_agg({{ expr }}) filter (where {{ expr }} is not null) {{ window }})[
      count({{ expr }}) {{ window }}]
{%- endmacro %}

{#- An aggregate: the value of `expr` on the row with the smallest `key`, ignoring rows whose key is
    null; the value itself may be null. Keys must be unique within a group (a position). -#}
{% macro first_by(expr, key) -%}
  {{ return(adapter.dispatch('first_by', 'calltrail')(expr, key)) }}
{%- endmacro %}

{% macro default__first_by(expr, key) -%}
  (array_agg({{ expr }} order by {{ key }}) filter (where {{ key }} is not null))[1]
{%- endmacro %}

{% macro duckdb__first_by(expr, key) -%}
  arg_min_null({{ expr }}, {{ key }})
{%- endmacro %}

{% macro spark__first_by(expr, key) -%}
  min_by({{ expr }}, {{ key }})
{%- endmacro %}


{#- Integer division, truncated: DuckDB's `/` on integers gives a double (its `//` divides
    integers), Spark's too (`div`); PostgreSQL's `/` on integers divides integers. -#}
{% macro int_div(numerator, denominator) -%}
  {{ return(adapter.dispatch('int_div', 'calltrail')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__int_div(numerator, denominator) -%}
  ({{ numerator }}) / ({{ denominator }})
{%- endmacro %}

{#- div() truncates (the same as flooring for the non-negative values this is used on), for
    numeric arguments too: '/' on numeric values (a seed's decimal weights) divides exactly. -#}
{% macro postgres__int_div(numerator, denominator) -%}
  div({{ numerator }}, {{ denominator }})
{%- endmacro %}

{% macro duckdb__int_div(numerator, denominator) -%}
  ({{ numerator }}) // ({{ denominator }})
{%- endmacro %}

{% macro spark__int_div(numerator, denominator) -%}
  ({{ numerator }}) div ({{ denominator }})
{%- endmacro %}

{#- An 8-byte floating point type. dbt.type_float() is 'float', which is 8 bytes on PostgreSQL and
    Spark but 4 bytes (REAL) on DuckDB. -#}
{% macro type_double() -%}
  {{ return(adapter.dispatch('type_double', 'calltrail')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
  double precision
{%- endmacro %}

{% macro duckdb__type_double() -%}
  double
{%- endmacro %}

{% macro spark__type_double() -%}
  double
{%- endmacro %}
