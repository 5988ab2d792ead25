{#- docs/rules.md, BizibleId: trim, lower-case, drop hyphens and braces; valid when the result
    matches var calltrail__bizible_id_pattern (32 hex characters). -#}

{% macro bizible_id_pattern() -%}
  '{{ var('calltrail__bizible_id_pattern') }}'
{%- endmacro %}

{% macro normalise_bizible_id(expr) -%}
  {#- Most ids arrive normalised: checking that is cheaper than normalising them again. -#}
  case
    when {{ calltrail.regexp_matches(expr, calltrail.bizible_id_pattern()) }} then {{ expr }}
    else replace(replace(replace(lower(trim({{ expr }})), '-', ''), '{', ''), '}', '')
  end
{%- endmacro %}

{% macro bizible_id_status(expr) -%}
  case
    when {{ expr }} is null or trim({{ expr }}) = '' then 'missing'
    when {{ calltrail.regexp_matches(calltrail.normalise_bizible_id(expr), calltrail.bizible_id_pattern()) }} then 'valid'
    else 'invalid_format'
  end
{%- endmacro %}
