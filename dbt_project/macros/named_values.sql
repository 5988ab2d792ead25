{#- The values a rule names (match statuses, web event types) are listed once, as project vars in
    dbt_project.yml. SQL names one through these macros: the result is the quoted literal, and a
    name the var does not list fails compilation instead of matching nothing. -#}

{% macro listed_value(var_name, value) -%}
  {%- set values = var(var_name) -%}
  {%- if value not in values -%}
    {{ exceptions.raise_compiler_error(value ~ " is not in var " ~ var_name ~ " " ~ values | join(", ")) }}
  {%- endif -%}
  '{{ value }}'
{%- endmacro %}

{% macro match_status(status) -%}
  {{ calltrail.listed_value('calltrail__match_statuses', status) }}
{%- endmacro %}

{% macro web_event_type(event_type) -%}
  {{ calltrail.listed_value('calltrail__web_event_types', event_type) }}
{%- endmacro %}
