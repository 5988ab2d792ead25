{#- docs/rules.md, Opportunities. -#}

{#- The end of an opportunity's journey: touchpoints strictly before it count. The end of the
    CloseDate (UTC) for a closed opportunity, none (null) for an open one. -#}
{% macro opportunity_cutoff(is_closed, close_date) -%}
  case
    when {{ is_closed }}
        then {{ dbt.dateadd('day', 1, 'cast(' ~ close_date ~ ' as ' ~ dbt.type_timestamp() ~ ')') }}
  end
{%- endmacro %}

{#- True when a touchpoint at `touchpoint_at` is in the journey of an opportunity whose cutoff is
    `cutoff` (calltrail.opportunity_cutoff). -#}
{% macro before_cutoff(touchpoint_at, cutoff) -%}
  ({{ cutoff }} is null or {{ touchpoint_at }} < {{ cutoff }})
{%- endmacro %}
