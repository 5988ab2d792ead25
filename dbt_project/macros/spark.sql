{#- Spark corrections of dbt-spark's own macros (the root project's spark__ variants take precedence
    over the adapter's). -#}

{#- Seeds: dbt-spark binds each value as '<value>', so an empty cell became the string 'None' and a
    quote or '%' in a value broke the statement. Values are written as SQL literals here: null for an
    empty cell, strings with quote and backslash escaped. -#}
{% macro spark__load_csv_rows(model, agate_table) %}
  {%- set batch_size = get_batch_size() -%}
  {%- set column_override = model['config'].get('column_types', {}) -%}
  {%- set statements = [] -%}
  {%- for chunk in agate_table.rows | batch(batch_size) -%}
    {%- set sql -%}
      insert into {{ this.render() }} values
      {% for row in chunk -%}
        ({%- for col_name in agate_table.column_names -%}
          {%- set type = column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)) -%}
          cast({{ calltrail.spark_literal(row[loop.index0]) }} as {{ type }}){{ "," if not loop.last }}
        {%- endfor -%}){{ "," if not loop.last }}
      {% endfor %}
    {%- endset -%}
    {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
    {%- if loop.index0 == 0 -%}{%- do statements.append(sql) -%}{%- endif -%}
  {%- endfor -%}
  {{ return(statements[0]) }}
{% endmacro %}

{% macro spark_literal(value) -%}
  {%- if value is none -%} null
  {%- elif value is sameas true -%} true
  {%- elif value is sameas false -%} false
  {%- elif value is number -%} {{ value }}
  {%- else -%} '{{ (value | string).replace("\\", "\\\\").replace("'", "\\'") }}'
  {%- endif -%}
{%- endmacro %}

{#- split_part as DuckDB and PostgreSQL have it: '' beyond the last part. dbt-spark indexes the array,
    which fails under ANSI mode (Spark 4's default) when the part does not exist. The delimiter is
    matched literally (\Q...\E). -#}
{% macro spark__split_part(string_text, delimiter_text, part_number) -%}
  coalesce(get(split({{ string_text }}, concat('\\Q', {{ delimiter_text }}, '\\E'), -1), {{ part_number }} - 1), '')
{%- endmacro %}

{#- listagg in the order asked for (dbt-spark ignores order_by_clause): the values are collected
    with their sort key, sorted, and joined. order_by_clause is 'order by <expression> [asc|desc]'. -#}
{% macro spark__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
  {%- if order_by_clause -%}
    {%- set key = order_by_clause | trim | replace('order by ', '', 1) | trim -%}
    {%- set descending = key.lower().endswith(' desc') -%}
    {%- set key = key[:-5] if descending else (key[:-4] if key.lower().endswith(' asc') else key) -%}
    {%- set sorted -%}
      transform(array_sort(collect_list(struct({{ key }} as sort_key, {{ measure }} as measure))), item -> item.measure)
    {%- endset -%}
    {%- set collected = 'reverse(' ~ sorted ~ ')' if descending else sorted -%}
  {%- else -%}
    {%- set collected = 'collect_list(' ~ measure ~ ')' -%}
  {%- endif -%}
  {%- if limit_num -%}
    {%- set collected = 'slice(' ~ collected ~ ', 1, ' ~ limit_num ~ ')' -%}
  {%- endif -%}
  array_join({{ collected }}, {{ delimiter_text }})
{%- endmacro %}
