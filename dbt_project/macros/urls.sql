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

{#- The fields a page view's traffic source is made of (docs/rules.md, Web sessions), in signature
    order: the utm_* values, the ad click ids (read from the URL) and the external referrer host. -#}
{% macro source_signature_columns() -%}
  {{ return(['utm_source', 'utm_medium', 'utm_campaign', 'utm_content', 'utm_term',
             'gclid', 'msclkid', 'fbclid', 'external_referrer_host']) }}
{%- endmacro %}

{#- The URL pieces the session rules use, as select-list items: page_host, referrer_host_any and
    the URL's query parameters among calltrail.source_signature_columns (utm_* and click ids). Used
    by stg_web__events, and by int_session_events for the events it keeps. The regular expressions
    run on every URL, without a guard: DuckDB's regular expressions give up early on a URL without
    the parameter, and a guard
    (`case when url like ... then url end`) made them two to four times slower (make bench, 10 M
    events). -#}
{% macro url_source_fields(page_url, referrer_url) -%}
        {{ calltrail.url_host(page_url) }} as page_host,
        {{ calltrail.url_host(referrer_url) }} as referrer_host_any,
        {%- for param in calltrail.source_signature_columns() if param != 'external_referrer_host' %}
        {{ calltrail.url_param(page_url, param) }} as {{ param }}{{ "," if not loop.last }}
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

{#- The source signature of a page view (docs/rules.md, Web sessions): its utm_* values, click ids and
    external referrer host, in this order, joined by '#'. No value can hold a '#': query values
    end at '#' or '&', and hosts at '#'. int_session_events compares signatures to split sessions;
    int_sessions takes the first page view's fields back out of its signature instead of parsing
    its URL again. -#}
{% macro source_signature() -%}
  {%- set parts = [] -%}
  {%- for field in calltrail.source_signature_columns() -%}
    {%- do parts.append("coalesce(" ~ field ~ ", '')") -%}
    {%- if not loop.last %}{% do parts.append("'#'") %}{% endif -%}
  {%- endfor -%}
  {{ dbt.concat(parts) }}
{%- endmacro %}

{#- Select-list items: the signature's fields as columns (null when empty), the external referrer
    host named `referrer_host_as`. -#}
{% macro source_signature_fields(signature, referrer_host_as='external_referrer_host') -%}
  {%- for field in calltrail.source_signature_columns() %}
        nullif({{ dbt.split_part(signature, "'#'", loop.index) }}, '') as {{ referrer_host_as if field == 'external_referrer_host' else field }}{{ "," if not loop.last }}
  {%- endfor %}
{%- endmacro %}

{#- A session's key: its visitor's BizibleId and the id of the event that starts it. -#}
{% macro session_key(bizible_id, first_event_id) -%}
  {{ dbt.concat([bizible_id, "':'", first_event_id]) }}
{%- endmacro %}
