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

{#- The URL pieces the session rules use, as select-list items: page_host and referrer_host_any
    (only when there is a referrer), the utm_* values and the ad click ids (only when the URL can
    hold them). Used by stg_web__events for every event and by int_sessions for the sessions' first
    page views, so both read URLs the same way. -#}
{% macro url_source_fields(page_url, referrer_url) -%}
        case when {{ referrer_url }} is not null then {{ calltrail.url_host(page_url) }} end as page_host,
        case when {{ referrer_url }} is not null then {{ calltrail.url_host(referrer_url) }} end as referrer_host_any,
        {%- for param in ['utm_source', 'utm_medium', 'utm_campaign', 'utm_content', 'utm_term'] %}
        case when {{ page_url }} like '%{{ param }}=%' then {{ calltrail.url_param(page_url, param) }} end as {{ param }},
        {%- endfor %}
        {%- for param in ['gclid', 'msclkid', 'fbclid'] %}
        case when {{ page_url }} like '%{{ param }}=%' then {{ calltrail.url_param(page_url, param) }} end as {{ param }}{{ "," if not loop.last }}
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
