{#- Call Tasks that get no touchpoint because their BizibleId is missing or malformed: the list
    to send to the call-tracking vendor. E-mails and meetings are left out on purpose. -#}

with tasks as (

    select * from {{ ref('stg_salesforce__tasks') }}

),

final as (

    select
        task_id,
        bizible_id_raw,
        bizible_id_status as reason,
        task_type,
        subject,
        call_at,
        created_at,
        call_object
    from tasks
    where is_call
      and bizible_id_status in ('missing', 'invalid_format')

)

select * from final
