{#- Conversions (matched Tasks and form submits) and who owns each session.

    One touchpoint per session: the session's first conversion owns it; on a tie the call wins. A
    later Task in the same session becomes a task-only touchpoint; a later form submit in the same
    session makes none, so only each session's first form submit (from int_sessions) takes part.
    Tasks that matched no session are task-only. -#}
{#- Incremental (docs/incremental.md): the conversions of the visitors this run rebuilds. -#}
{{ config(**calltrail.visitor_incremental_config(
    pre_hook=[{"sql": "{{ calltrail.plain_strings_on() }}", "transaction": false}],
    post_hook=[{"sql": "{{ calltrail.plain_strings_off() }}", "transaction": false}])) }}
-- depends_on: {{ ref('int_increment') }}, {{ ref('int_changed_visitors') }}

with tasks as (

    select * from {{ ref('int_calls_matched_to_sessions') }}
    {%- if is_incremental() %}
    where {{ calltrail.rebuilt_visitor('bizible_id') }}
    {%- endif %}

),

first_form_submits as (

    select
        session_id,
        bizible_id,
        first_form_submit_event_id as event_id,
        first_form_submit_at as occurred_at
    from {{ ref('int_sessions') }}
    where first_form_submit_event_id is not null
    {%- if is_incremental() %}
      and {{ calltrail.rebuilt_visitor('bizible_id') }}
    {%- endif %}

),

session_conversions as (

    select
        'task' as conversion_kind,
        task_id as conversion_key,
        task_id,
        cast(null as {{ dbt.type_string() }}) as event_id,
        bizible_id,
        candidate_session_id as session_id,
        call_at as converted_at,
        match_status,
        0 as kind_priority
    from tasks
    where match_status = {{ calltrail.match_status('matched') }}

    union all

    select
        'form' as conversion_kind,
        event_id as conversion_key,
        cast(null as {{ dbt.type_string() }}) as task_id,
        event_id,
        bizible_id,
        session_id,
        occurred_at as converted_at,
        cast(null as {{ dbt.type_string() }}) as match_status,
        1 as kind_priority
    from first_form_submits

),

ranked as (

    select
        session_conversions.*,
        row_number() over (
            partition by session_id
            order by converted_at, kind_priority, conversion_key
        ) as conversion_rank_in_session
    from session_conversions

),

owned as (

    select
        conversion_kind,
        conversion_key,
        task_id,
        event_id,
        bizible_id,
        session_id,
        converted_at,
        match_status,
        conversion_rank_in_session = 1 as owns_session
    from ranked

),

unmatched_tasks as (

    select
        'task' as conversion_kind,
        task_id as conversion_key,
        task_id,
        cast(null as {{ dbt.type_string() }}) as event_id,
        bizible_id,
        cast(null as {{ dbt.type_string() }}) as session_id,
        call_at as converted_at,
        match_status,
        false as owns_session
    from tasks
    where match_status <> {{ calltrail.match_status('matched') }}

),

all_conversions as (

    select * from owned
    union all
    select * from unmatched_tasks

),

final as (

    select
        all_conversions.conversion_kind,
        all_conversions.conversion_key,
        all_conversions.task_id,
        all_conversions.event_id,
        all_conversions.bizible_id,
        all_conversions.session_id,
        all_conversions.converted_at,
        all_conversions.owns_session,
        case
            when all_conversions.owns_session then 'session'
            when all_conversions.conversion_kind = 'task' then 'task_only'
            else 'none'
        end as touchpoint_kind,
        all_conversions.match_status
        {{- calltrail.visitor_bucket_column('all_conversions.bizible_id') }}
    from all_conversions

)

select * from final
{{ calltrail.kept_rows() }}
