{#- The custom model's weights are percentages of an opportunity: they must sum to 100, and none
    may be negative (docs/rules.md, Attribution models). Returns the offending seed as one row. -#}

select
    sum(weight) as total_weight,
    min(weight) as lowest_weight
from {{ ref('attribution_custom_weights') }}
having sum(weight) <> 100 or min(weight) < 0
