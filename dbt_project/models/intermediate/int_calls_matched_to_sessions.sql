{#- Every live Task with a valid BizibleId, with its candidate session and the 30-minute rule.

    Candidate: the visitor's latest session that started at or before the call time. The Task
    matches when the call came at most calltrail__call_window_minutes after the anchor (inclusive):
    the session start (default) or the session's last event (calltrail__call_window_anchor =
    last_activity). Without a candidate the status is no_session.

    Incremental (docs/incremental.md): the Tasks and sessions of the visitors this run rebuilds. -#}
{{ config(**calltrail.visitor_incremental_config(
    pre_hook=[{"sql": "{{ calltrail.plain_strings_on() }}", "transaction": false}],
    post_hook=[{"sql": "{{ calltrail.plain_strings_off() }}", "transaction": false}])) }}

{%- set anchor = var('calltrail__call_window_anchor') -%}
{%- if anchor not in ['session_start', 'last_activity'] -%}
  {{ exceptions.raise_compiler_error("calltrail__call_window_anchor must be session_start or last_activity, got '" ~ anchor ~ "'") }}
{%- endif -%}
{%- set anchor_column = 'session_start_at' if anchor == 'session_start' else 'session_last_event_at' -%}

{%- set task_columns = ['task_id', 'bizible_id', 'who_id', 'is_call', 'task_type_clean', 'subject', 'call_at'] %}

-- depends_on: {{ ref('int_increment') }}, {{ ref('int_changed_visitors') }}
with tasks as (

    select {{ task_columns | join(', ') }}
    from {{ ref('stg_salesforce__tasks') }}
    where bizible_id_status = 'valid'
    {%- if is_incremental() %}
      and {{ calltrail.rebuilt_visitor('bizible_id') }}
    {%- endif %}

),

sessions as (

    select * from {{ ref('int_sessions') }}
    {%- if is_incremental() %}
    where {{ calltrail.rebuilt_visitor('bizible_id') }}
    {%- endif %}

),

candidate as (

    {{ calltrail.candidate_sessions('tasks', 'sessions', task_columns) }}

),

final as (

    select
        task_id,
        bizible_id,
        who_id,
        is_call,
        task_type_clean,
        subject,
        call_at,
        session_id as candidate_session_id,
        session_start_at,
        session_last_event_at,
        cast({{ dbt.datediff('session_start_at', 'call_at', 'second') }} as {{ dbt.type_bigint() }})
            as seconds_after_session_start,
        cast({{ dbt.datediff('session_last_event_at', 'call_at', 'second') }} as {{ dbt.type_bigint() }})
            as seconds_after_last_activity,
        case
            when session_id is null then {{ calltrail.match_status('no_session') }}
            when call_at <= {{ dbt.dateadd('minute', var('calltrail__call_window_minutes'), anchor_column) }}
                then {{ calltrail.match_status('matched') }}
            else {{ calltrail.match_status('outside_window') }}
        end as match_status
        {{- calltrail.visitor_bucket_column() }}
    from candidate

)

select * from final
{{ calltrail.kept_rows() }}
