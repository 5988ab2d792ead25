{#- Every Task with its candidate session: the visitor's latest session that started at or
    before the call time (docs/rules.md, Matching a call to a session), or nulls when there is
    none. When two sessions of a visitor start at the same time, the later one in session order
    (the higher session_number) is the latest.

    Selects the `task_columns` of `tasks` and the candidate's session_id, session_start_at and
    session_last_event_at, one row per Task. `tasks` needs task_id, bizible_id and call_at;
    `sessions` needs session_id, bizible_id, session_number, session_start_at and
    session_last_event_at. -#}
{% macro candidate_sessions(tasks, sessions, task_columns) -%}
  {{ return(adapter.dispatch('candidate_sessions', 'calltrail')(tasks, sessions, task_columns)) }}
{%- endmacro %}

{#- Portable: every earlier session of the visitor, ranked. -#}
{% macro default__candidate_sessions(tasks, sessions, task_columns) -%}
    select
        {%- for column in task_columns %}
        {{ tasks }}.{{ column }},
        {%- endfor %}
        candidate.session_id,
        candidate.session_start_at,
        candidate.session_last_event_at
    from {{ tasks }}
    left join (
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
    ) as candidate
        on {{ tasks }}.task_id = candidate.task_id
{%- endmacro %}

{#- DuckDB: an ASOF join finds the same session without pairing every Task with every earlier
    session, and without joining the result back to the Tasks (make bench: several times
    faster). The join key orders sessions by start, then by session number, so that the choice
    between sessions that start together is deterministic. -#}
{% macro duckdb__candidate_sessions(tasks, sessions, task_columns) -%}
    select
        {%- for column in task_columns %}
        tasks_keyed.{{ column }},
        {%- endfor %}
        sessions_keyed.session_id,
        sessions_keyed.session_start_at,
        sessions_keyed.session_last_event_at
    from (
        select
            {{ tasks }}.*,
            cast(epoch_us(call_at) as hugeint) * 4294967296 + 4294967295 as match_key
        from {{ tasks }}
    ) as tasks_keyed
    asof left join (
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
