{#- BizibleId -> person, by evidence (docs/rules.md, People):
    - a Task with a valid BizibleId whose WhoId is a live Lead or Contact in the data (its time:
      the call time);
    - a form submit whose e-mail equals a Lead's or Contact's (trimmed, ignoring case; a Contact
      wins over a Lead, then the earliest CreatedDate, then the lowest Id; its time: the submit).
    Evidence counts for the person the record stands for (a converted Lead's for its Contact,
    whatever its time). The latest evidence wins for the BizibleId's whole history; on a tie the
    lowest person Id. BizibleIds without evidence are not listed (anonymous visitors). -#}

with person_ids as (

    select * from {{ ref('int_person_ids') }}

),

task_evidence as (

    select
        tasks.bizible_id,
        person_ids.person_id,
        tasks.call_at as evidence_at,
        'task' as evidence_kind,
        tasks.task_id as evidence_id
    from {{ ref('stg_salesforce__tasks') }} as tasks
    inner join person_ids
        on tasks.who_id = person_ids.salesforce_id
    where tasks.bizible_id_status = 'valid'

),

email_candidates as (

    select
        email_normalised,
        person_id,
        row_number() over (
            partition by email_normalised
            order by case when record_type = 'contact' then 0 else 1 end, created_at, salesforce_id
        ) as email_rank
    from person_ids
    where email_normalised is not null
      and email_normalised <> ''

),

email_people as (

    select email_normalised, person_id
    from email_candidates
    where email_rank = 1

),

form_submits as (

    select event_id, bizible_id, occurred_at, lower(trim(email)) as email_normalised
    from {{ ref('stg_web__events') }}
    where event_type = {{ calltrail.web_event_type('form_submit') }}
      and email is not null

),

form_evidence as (

    select
        form_submits.bizible_id,
        email_people.person_id,
        form_submits.occurred_at as evidence_at,
        'form' as evidence_kind,
        form_submits.event_id as evidence_id
    from form_submits
    inner join email_people
        on form_submits.email_normalised = email_people.email_normalised

),

evidence as (

    select * from task_evidence
    union all
    select * from form_evidence

),

ranked as (

    select
        evidence.*,
        row_number() over (
            partition by bizible_id
            order by evidence_at desc, person_id, evidence_kind, evidence_id
        ) as evidence_rank,
        count(*) over (partition by bizible_id) as evidence_count
    from evidence

),

final as (

    select
        bizible_id,
        person_id,
        evidence_kind,
        evidence_id,
        evidence_at as linked_at,
        evidence_count
    from ranked
    where evidence_rank = 1

)

select * from final
