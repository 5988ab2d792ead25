{#- URL pieces, portable. Query values are decoded for '+' and '%20' only. -#}

{#- The host, lower-cased, without a leading 'www.'. -#}
{% macro url_host(expr) -%}
  {{ calltrail.regexp_replace_all(
       "lower(" ~ calltrail.regexp_extract(expr, "'^[A-Za-z][A-Za-z0-9+.-]*://([^/?#:]+)'") ~ ")",
       "'^www[.]'", "''") }}
{%- endmacro %}

{#- The value of query parameter `name`, or null when absent or empty. -#}
{% macro url_param(expr, name) -%}
  nullif(replace(replace({{ calltrail.regexp_extract(expr, "'[?&]" ~ name ~ "=([^&#]*)'") }}, '+', ' '), '%20', ' '), '')
{%- endmacro %}

{#- The URL without its utm_* parameters (and without a dangling '?' or '&'). -#}
{% macro strip_utm(expr) -%}
  {%- set no_utm = calltrail.regexp_replace_all(expr, "'utm_[A-Za-z0-9_]*=[^&#]*&?'", "''") -%}
  {%- set tidy = "replace(replace(" ~ no_utm ~ ", '?#', '#'), '&#', '#')" -%}
  {{ calltrail.regexp_replace_all(tidy, "'[?&]+$'", "''") }}
{%- endmacro %}
