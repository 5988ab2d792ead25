{#- docs/rules.md, BizibleId: trim, lower-case, drop hyphens and braces; valid when 32 hex characters. -#}

{% macro normalise_bizible_id(expr) -%}
  {#- Most ids arrive normalised: checking that is cheaper than normalising them again. -#}
  case
    when {{ calltrail.regexp_matches(expr, "'^[0-9a-f]{32}$'") }} then {{ expr }}
    else replace(replace(replace(lower(trim({{ expr }})), '-', ''), '{', ''), '}', '')
  end
{%- endmacro %}

{% macro bizible_id_status(expr) -%}
  case
    when {{ expr }} is null or trim({{ expr }}) = '' then 'missing'
    when {{ calltrail.regexp_matches(calltrail.normalise_bizible_id(expr), "'^[0-9a-f]{32}$'") }} then 'valid'
    else 'invalid_format'
  end
{%- endmacro %}
