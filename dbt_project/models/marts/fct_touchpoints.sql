{#- One row per touchpoint (docs/rules.md, Touchpoint fields and Journey positions).

    - A Task that owns its session: type and medium from Task.Type (blank: type 'Web Visit',
      medium from the session); every other marketing field from the session.
    - A task-only touchpoint (no session, outside the window, or the session was already
      converted): type and medium from Task.Type, source 'CRM Activity', ad content = Subject,
      ad id = Task Id, channel from the channel rules.
    - A form submit that owns its session: type 'Web Form', fields from the session.
    - The visitor's first session, when no conversion owns it and it came before the first
      conversion: a 'Web Visit' touchpoint at the session start (FT).
    Only visitors who converted at least once have touchpoints.

    Journeys (docs/rules.md, People): a touchpoint belongs to a person, a task-only one to its
    Task's WhoId person when there is one, every other one to its BizibleId's person
    (int_person_links); anonymous visitors have none. Positions are computed per journey: a
    person's touchpoints over all their BizibleIds (two devices: one FT, one LC), or an anonymous
    visitor's own. The journey's first session is the earliest first session of its BizibleIds.

    Incremental (docs/incremental.md): a run rebuilds the journeys in int_changed_journeys (every
    journey on a full run), whose touchpoints replace theirs. -#}
{{ config(**calltrail.incremental_config('journey')) }}

-- depends_on: {{ ref('int_increment') }}, {{ ref('int_changed_journeys') }}
with conversions as (

    {#- Positions are worked out on narrow rows (keys, times, kinds and the few Task fields a
        touchpoint takes) with windows over the visitor, each step read once; the
        sessions' wide marketing fields are joined once, at the end. Joining everything to the
        finished rows, and steps read several times, made DuckDB hold several copies of every
        touchpoint at once (10 GB at the benchmark size). -#}
    select
        case
            when int_conversions.conversion_kind = 'task'
                then {{ dbt.hash(dbt.concat(["'task|'", "int_conversions.task_id"])) }}
            else {{ dbt.hash(dbt.concat(["'form|'", "int_conversions.event_id"])) }}
        end as touchpoint_id,
        case
            when int_conversions.conversion_kind = 'form' then 'web_form'
            when int_conversions.touchpoint_kind = 'session' then 'task_in_session'
            else 'task_only'
        end as touchpoint_origin,
        int_conversions.task_id,
        int_conversions.event_id,
        case when int_conversions.touchpoint_kind = 'session' then int_conversions.session_id end as session_id,
        int_conversions.bizible_id,
        int_conversions.converted_at as touchpoint_at,
        int_conversions.match_status,
        case when int_conversions.conversion_kind = 'task' then 0 else 1 end as kind_priority,
        tasks.who_id,
        tasks.task_type_clean,
        tasks.subject,
        tasks.seconds_after_session_start
    from {{ ref('int_conversions') }} as int_conversions
    left join {{ ref('int_calls_matched_to_sessions') }} as tasks
        on int_conversions.task_id = tasks.task_id
    where int_conversions.touchpoint_kind <> 'none'

),

sessions as (

    select * from {{ ref('int_sessions') }}

),

links as (

    select bizible_id, person_id from {{ ref('int_person_links') }}

),

person_ids as (

    select salesforce_id, person_id from {{ ref('int_person_ids') }}

),

owned_conversions as (

    {#- The journey key is the person, or the BizibleId of an anonymous visitor (a Salesforce Id
        has 15 or 18 characters, a BizibleId 32: they cannot collide). #}
    select
        with_person.*,
        coalesce(with_person.person_id, with_person.bizible_id) as journey_key
    from (
        select
            conversions.*,
            case
                when conversions.touchpoint_origin = 'task_only'
                    then coalesce(who_people.person_id, links.person_id)
                else links.person_id
            end as person_id
        from conversions
        left join links
            on conversions.bizible_id = links.bizible_id
        left join person_ids as who_people
            on conversions.who_id = who_people.salesforce_id
           and conversions.touchpoint_origin = 'task_only'
    ) as with_person
    where {{ calltrail.rebuilt('journey', 'coalesce(with_person.person_id, with_person.bizible_id)') }}

),

visitor_first_sessions as (

    select sessions.session_id, sessions.bizible_id, sessions.session_start_at, links.person_id
    from {{ ref('int_sessions') }} as sessions
    left join links
        on sessions.bizible_id = links.bizible_id
    where sessions.session_number = 1
      and {{ calltrail.rebuilt('journey', 'coalesce(links.person_id, sessions.bizible_id)') }}

),

first_sessions as (

    {#- An anonymous visitor's first session; a person's earliest first session over their
        BizibleIds (on a tie, the lower session id). #}
    select session_id, bizible_id, session_start_at, bizible_id as journey_key
    from visitor_first_sessions
    where person_id is null

    union all

    select session_id, bizible_id, session_start_at, person_id as journey_key
    from (
        select
            visitor_first_sessions.*,
            row_number() over (
                partition by person_id
                order by session_start_at, session_id
            ) as first_session_rank
        from visitor_first_sessions
        where person_id is not null
    ) as ranked
    where first_session_rank = 1

),

task_only_input as (

    {#- A task-only touchpoint's channel depends only on its Type (the medium; the source is
        always 'CRM Activity'), so the rules run once per distinct Type. -#}
    select distinct
        cast(null as {{ dbt.type_string() }}) as campaign,
        task_type_clean as medium,
        'CRM Activity' as source,
        cast(null as {{ dbt.type_string() }}) as landing_page_raw,
        cast(null as {{ dbt.type_string() }}) as referrer_host
    from {{ ref('int_calls_matched_to_sessions') }}

),

task_only_channels as (

    {{ calltrail.assign_channel('task_only_input', ['medium']) }}

),

with_first_session as (

    select
        owned_conversions.*,
        first_sessions.session_id as first_session_id,
        first_sessions.bizible_id as first_session_bizible_id,
        first_sessions.session_start_at as first_session_start_at
    from owned_conversions
    left join first_sessions
        on owned_conversions.journey_key = first_sessions.journey_key

),

lead_creation as (

    {#- One sort per journey: the conversion order, the first conversion's time, and whether a
        conversion owns the visitor's first session. -#}
    select
        with_first_session.*,
        row_number() over (
            partition by journey_key
            order by touchpoint_at, kind_priority, touchpoint_id
        ) as conversion_order,
        min(touchpoint_at) over (partition by journey_key) as first_conversion_at,
        max(case when session_id = first_session_id then 1 else 0 end) over (partition by journey_key)
            as first_session_converted
    from with_first_session

),

positioned_conversions as (

    select
        lead_creation.touchpoint_id,
        lead_creation.touchpoint_origin,
        lead_creation.task_id,
        lead_creation.event_id,
        lead_creation.session_id,
        lead_creation.bizible_id,
        lead_creation.person_id,
        lead_creation.touchpoint_at,
        lead_creation.match_status,
        lead_creation.task_type_clean,
        lead_creation.subject,
        lead_creation.seconds_after_session_start,
        task_only_channels.marketing_channel as task_only_channel,
        task_only_channels.marketing_subchannel as task_only_subchannel,
        lead_creation.first_session_id,
        lead_creation.first_session_bizible_id,
        lead_creation.first_session_start_at,
        lead_creation.conversion_order,
        lead_creation.first_session_converted,
        (
            lead_creation.first_session_id is not null
            and lead_creation.first_session_start_at <= lead_creation.first_conversion_at
        ) as journey_starts_on_the_web
    from lead_creation
    left join task_only_channels
        on coalesce(lead_creation.task_type_clean, '') = coalesce(task_only_channels.medium, '')
       and lead_creation.touchpoint_origin = 'task_only'

),

all_touchpoints as (

    select
        touchpoint_id, touchpoint_origin, task_id, event_id, session_id, bizible_id, person_id, touchpoint_at,
        match_status, task_type_clean, subject, seconds_after_session_start, task_only_channel,
        task_only_subchannel,
        case
            when journey_starts_on_the_web
                then session_id is not null and session_id = first_session_id
            else conversion_order = 1
        end as is_first_touch,
        conversion_order = 1 as is_lead_creation,
        true as is_conversion
    from positioned_conversions

    union all

    {# The journey's first session, when no conversion owns it and it came before the first
       conversion: a Web Visit (FT), on the BizibleId the session belongs to. #}
    select
        {{ dbt.hash(dbt.concat(["'visit|'", "first_session_id"])) }} as touchpoint_id,
        'web_visit' as touchpoint_origin,
        cast(null as {{ dbt.type_string() }}) as task_id,
        cast(null as {{ dbt.type_string() }}) as event_id,
        first_session_id as session_id,
        first_session_bizible_id as bizible_id,
        person_id,
        first_session_start_at as touchpoint_at,
        cast(null as {{ dbt.type_string() }}) as match_status,
        cast(null as {{ dbt.type_string() }}) as task_type_clean,
        cast(null as {{ dbt.type_string() }}) as subject,
        cast(null as {{ dbt.type_bigint() }}) as seconds_after_session_start,
        cast(null as {{ dbt.type_string() }}) as task_only_channel,
        cast(null as {{ dbt.type_string() }}) as task_only_subchannel,
        true as is_first_touch,
        false as is_lead_creation,
        false as is_conversion
    from positioned_conversions
    where conversion_order = 1
      and journey_starts_on_the_web
      and first_session_converted = 0

),

final as (

    select
        all_touchpoints.touchpoint_id,
        all_touchpoints.touchpoint_origin,
        all_touchpoints.task_id,
        all_touchpoints.event_id,
        all_touchpoints.session_id,
        all_touchpoints.bizible_id,
        all_touchpoints.person_id,
        case
            when all_touchpoints.touchpoint_origin = 'web_form' then 'Web Form'
            when all_touchpoints.touchpoint_origin = 'web_visit' then 'Web Visit'
            else coalesce(all_touchpoints.task_type_clean, 'Web Visit')
        end as touchpoint_type,
        case
            when all_touchpoints.touchpoint_origin = 'task_in_session' then coalesce(all_touchpoints.task_type_clean, sessions.utm_medium)
            when all_touchpoints.touchpoint_origin = 'task_only' then all_touchpoints.task_type_clean
            else sessions.utm_medium
        end as medium,
        case
            when all_touchpoints.touchpoint_origin = 'task_only' then coalesce(all_touchpoints.task_only_channel, 'Other')
            else sessions.marketing_channel
        end as marketing_channel,
        case
            when all_touchpoints.touchpoint_origin = 'task_only' then all_touchpoints.task_only_subchannel
            else sessions.marketing_subchannel
        end as marketing_subchannel,
        case
            when all_touchpoints.touchpoint_origin = 'task_only' then 'CRM Activity'
            else sessions.touchpoint_source
        end as touchpoint_source,
        sessions.utm_campaign as campaign,
        case
            when all_touchpoints.touchpoint_origin = 'task_only' then all_touchpoints.subject
            else sessions.utm_content
        end as ad_content,
        case when all_touchpoints.touchpoint_origin = 'task_only' then all_touchpoints.task_id end as ad_id,
        sessions.utm_term as keyword,
        sessions.landing_page,
        sessions.landing_page_raw,
        sessions.referrer_page,
        {#- A form touchpoint is always its session's first form submit. #}
        case when all_touchpoints.touchpoint_origin = 'web_form' then sessions.first_form_url end as form_url,
        all_touchpoints.touchpoint_at,
        case
            when all_touchpoints.is_first_touch and all_touchpoints.is_lead_creation then 'FT, LC'
            when all_touchpoints.is_first_touch and all_touchpoints.is_conversion then 'FT, Post LC'
            when all_touchpoints.is_first_touch then 'FT'
            when all_touchpoints.is_lead_creation then 'LC'
            else 'Post LC'
        end as touchpoint_position,
        all_touchpoints.is_first_touch,
        all_touchpoints.is_lead_creation,
        all_touchpoints.match_status,
        case
            when all_touchpoints.touchpoint_origin in ('task_in_session', 'task_only')
                then all_touchpoints.seconds_after_session_start
        end as seconds_after_session_start
        {{- calltrail.bucket_column('journey', 'coalesce(all_touchpoints.person_id, all_touchpoints.bizible_id)') }}
    {#- A right join, so that the touchpoints are the build side (the right side; see profiles.yml)
        and the sessions, more rows and wider, are streamed past them (make bench: 1 s less). #}
    from sessions
    right join all_touchpoints
        on all_touchpoints.session_id = sessions.session_id

)

select * from final
{{ calltrail.kept_rows() }}
