{#- The candidate session of each Task: the visitor's latest session that started at or before
    the call time (DOMAIN.md, Matching). When two sessions of a visitor start at the same time,
    the later one in session order (the higher session_number) is the latest.

    Returns a select of task_id, session_id, session_start_at and session_last_event_at, one row
    per Task that has a candidate. `tasks` and `sessions` are relations or CTE names with the
    columns task_id, bizible_id, call_at and session_id, bizible_id, session_number,
    session_start_at, session_last_event_at. -#}
{% macro candidate_sessions(tasks, sessions) -%}
  {{ return(adapter.dispatch('candidate_sessions', 'calltrail')(tasks, sessions)) }}
{%- endmacro %}

{#- Portable: every earlier session of the visitor, ranked. -#}
{% macro default__candidate_sessions(tasks, sessions) -%}
    select task_id, session_id, session_start_at, session_last_event_at
    from (
        select
            {{ tasks }}.task_id,
            {{ sessions }}.session_id,
            {{ sessions }}.session_start_at,
            {{ sessions }}.session_last_event_at,
            row_number() over (
                partition by {{ tasks }}.task_id
                order by {{ sessions }}.session_start_at desc, {{ sessions }}.session_number desc
            ) as recency
        from {{ tasks }}
        inner join {{ sessions }}
            on {{ tasks }}.bizible_id = {{ sessions }}.bizible_id
           and {{ sessions }}.session_start_at <= {{ tasks }}.call_at
    ) as ranked
    where recency = 1
{%- endmacro %}

{#- DuckDB: an ASOF join finds the same session without pairing every Task with every earlier
    session (make bench: several times faster). The join key orders sessions by start, then by
    session number, so that the choice between sessions that start together is deterministic. -#}
{% macro duckdb__candidate_sessions(tasks, sessions) -%}
    select
        tasks_keyed.task_id,
        sessions_keyed.session_id,
        sessions_keyed.session_start_at,
        sessions_keyed.session_last_event_at
    from (
        select
            task_id,
            bizible_id,
            cast(epoch_us(call_at) as hugeint) * 4294967296 + 4294967295 as match_key
        from {{ tasks }}
    ) as tasks_keyed
    asof inner join (
        select
            session_id,
            bizible_id,
            session_start_at,
            session_last_event_at,
            cast(epoch_us(session_start_at) as hugeint) * 4294967296 + session_number as match_key
        from {{ sessions }}
    ) as sessions_keyed
        on tasks_keyed.bizible_id = sessions_keyed.bizible_id
       and tasks_keyed.match_key >= sessions_keyed.match_key
{%- endmacro %}
