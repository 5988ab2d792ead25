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

{#- The URL pieces the session rules use, as select-list items: page_host (only when there is a
    referrer), referrer_host_any, the utm_* values and the ad click ids. Used by stg_web__events for
    every event and by int_sessions for the sessions' first page views, so both read URLs the same
    way. A URL that cannot hold a parameter is passed on as null rather than skipped with a
    surrounding case: DuckDB evaluated the regular expressions under a case two to three times more
    slowly than on a column with nulls (same results: a null URL gives a null value). -#}
{% macro url_source_fields(page_url, referrer_url) -%}
        {{ calltrail.url_host("case when " ~ referrer_url ~ " is not null then " ~ page_url ~ " end") }} as page_host,
        {{ calltrail.url_host(referrer_url) }} as referrer_host_any,
        {%- for param in ['utm_source', 'utm_medium', 'utm_campaign', 'utm_content', 'utm_term', 'gclid', 'msclkid', 'fbclid'] %}
        {{ calltrail.url_param("case when " ~ page_url ~ " like '%" ~ param ~ "=%' then " ~ page_url ~ " end", param) }} as {{ param }}{{ "," if not loop.last }}
        {%- endfor %}
{%- endmacro %}

{#- The referrer's host when it is external (differs from the page's host, ignoring 'www.'). -#}
{% macro external_referrer_host(page_host, referrer_host_any) -%}
        case
            when {{ referrer_host_any }} is not null
             and {{ referrer_host_any }} <> coalesce({{ page_host }}, '')
                then {{ referrer_host_any }}
        end
{%- endmacro %}
