{#- One row per touchpoint (DOMAIN.md, Touchpoint fields and Journey positions).

    - A Task that owns its session: type and medium from Task.Type (blank: type 'Web Visit',
      medium from the session); every other marketing field from the session.
    - A task-only touchpoint (no session, outside the window, or the session was already
      converted): type and medium from Task.Type, source 'CRM Activity', ad content = Subject,
      ad id = Task Id, channel from the channel rules.
    - A form submit that owns its session: type 'Web Form', fields from the session.
    - The visitor's first session, when no conversion owns it and it came before the first
      conversion: a 'Web Visit' touchpoint at the session start (FT).
    Only visitors who converted at least once have touchpoints. -#}

with conversions as (

    select * from {{ ref('int_conversions') }}
    where touchpoint_kind <> 'none'

),

tasks as (

    select * from {{ ref('int_calls_matched_to_sessions') }}

),

sessions as (

    select * from {{ ref('int_sessions') }}

),

form_events as (

    select event_id, form_url
    from {{ ref('int_session_events') }}
    where event_type = 'form_submit'

),

task_only_input as (

    select
        tasks.task_id,
        cast(null as {{ dbt.type_string() }}) as campaign,
        tasks.task_type_clean as medium,
        'CRM Activity' as source,
        cast(null as {{ dbt.type_string() }}) as landing_page_raw,
        cast(null as {{ dbt.type_string() }}) as referrer_host
    from tasks
    inner join conversions
        on tasks.task_id = conversions.task_id
       and conversions.touchpoint_kind = 'task_only'

),

task_only_channels as (

    {{ calltrail.assign_channel('task_only_input', 'task_id') }}

),

conversion_touchpoints as (

    select
        case
            when conversions.conversion_kind = 'task'
                then {{ dbt.hash(dbt.concat(["'task|'", "conversions.task_id"])) }}
            else {{ dbt.hash(dbt.concat(["'form|'", "conversions.event_id"])) }}
        end as touchpoint_id,
        case
            when conversions.conversion_kind = 'form' then 'web_form'
            when conversions.touchpoint_kind = 'session' then 'task_in_session'
            else 'task_only'
        end as touchpoint_origin,
        conversions.task_id,
        conversions.event_id,
        case when conversions.touchpoint_kind = 'session' then conversions.session_id end as session_id,
        conversions.bizible_id,
        case
            when conversions.conversion_kind = 'form' then 'Web Form'
            else coalesce(tasks.task_type_clean, 'Web Visit')
        end as touchpoint_type,
        case
            when conversions.conversion_kind = 'form' then sessions.utm_medium
            when conversions.touchpoint_kind = 'session' then coalesce(tasks.task_type_clean, sessions.utm_medium)
            else tasks.task_type_clean
        end as medium,
        case
            when conversions.touchpoint_kind = 'session' then sessions.marketing_channel
            else coalesce(task_only_channels.marketing_channel, 'Other')
        end as marketing_channel,
        case
            when conversions.touchpoint_kind = 'session' then sessions.marketing_subchannel
            else task_only_channels.marketing_subchannel
        end as marketing_subchannel,
        case
            when conversions.touchpoint_kind = 'session' then sessions.touchpoint_source
            else 'CRM Activity'
        end as touchpoint_source,
        sessions.utm_campaign as campaign,
        case
            when conversions.touchpoint_kind = 'session' then sessions.utm_content
            else tasks.subject
        end as ad_content,
        case when conversions.touchpoint_kind = 'task_only' then conversions.task_id end as ad_id,
        sessions.utm_term as keyword,
        sessions.landing_page,
        sessions.landing_page_raw,
        sessions.referrer_page,
        form_events.form_url,
        conversions.converted_at as touchpoint_at,
        conversions.match_status,
        case when conversions.touchpoint_kind = 'session' then tasks.seconds_after_session_start end
            as seconds_after_session_start,
        case when conversions.conversion_kind = 'task' then 0 else 1 end as kind_priority
    from conversions
    left join tasks
        on conversions.task_id = tasks.task_id
    left join sessions
        on conversions.session_id = sessions.session_id
       and conversions.touchpoint_kind = 'session'
    left join form_events
        on conversions.event_id = form_events.event_id
    left join task_only_channels
        on conversions.task_id = task_only_channels.task_id
       and conversions.touchpoint_kind = 'task_only'

),

lead_creation as (

    select
        conversion_touchpoints.*,
        row_number() over (
            partition by bizible_id
            order by touchpoint_at, kind_priority, touchpoint_id
        ) as conversion_order
    from conversion_touchpoints

),

visitors as (

    select
        lead_creation.bizible_id,
        lead_creation.touchpoint_at as first_conversion_at,
        first_sessions.session_id as first_session_id,
        first_sessions.session_start_at as first_session_start_at,
        (
            first_sessions.session_id is not null
            and first_sessions.session_start_at <= lead_creation.touchpoint_at
        ) as journey_starts_on_the_web
    from lead_creation
    left join sessions as first_sessions
        on lead_creation.bizible_id = first_sessions.bizible_id
       and first_sessions.session_number = 1
    where lead_creation.conversion_order = 1

),

positioned_conversions as (

    select
        lead_creation.*,
        case
            when visitors.journey_starts_on_the_web
                then lead_creation.session_id is not null and lead_creation.session_id = visitors.first_session_id
            else lead_creation.conversion_order = 1
        end as is_first_touch,
        lead_creation.conversion_order = 1 as is_lead_creation
    from lead_creation
    inner join visitors
        on lead_creation.bizible_id = visitors.bizible_id

),

first_visits as (

    select
        {{ dbt.hash(dbt.concat(["'visit|'", "sessions.session_id"])) }} as touchpoint_id,
        'web_visit' as touchpoint_origin,
        cast(null as {{ dbt.type_string() }}) as task_id,
        cast(null as {{ dbt.type_string() }}) as event_id,
        sessions.session_id,
        sessions.bizible_id,
        'Web Visit' as touchpoint_type,
        sessions.utm_medium as medium,
        sessions.marketing_channel,
        sessions.marketing_subchannel,
        sessions.touchpoint_source,
        sessions.utm_campaign as campaign,
        sessions.utm_content as ad_content,
        cast(null as {{ dbt.type_string() }}) as ad_id,
        sessions.utm_term as keyword,
        sessions.landing_page,
        sessions.landing_page_raw,
        sessions.referrer_page,
        cast(null as {{ dbt.type_string() }}) as form_url,
        sessions.session_start_at as touchpoint_at,
        cast(null as {{ dbt.type_string() }}) as match_status,
        cast(null as {{ dbt.type_bigint() }}) as seconds_after_session_start,
        true as is_first_touch,
        false as is_lead_creation
    from visitors
    inner join sessions
        on visitors.first_session_id = sessions.session_id
    where visitors.journey_starts_on_the_web
      and not exists (
          select 1 from conversion_touchpoints
          where conversion_touchpoints.session_id = visitors.first_session_id
      )

),

all_touchpoints as (

    select
        touchpoint_id, touchpoint_origin, task_id, event_id, session_id, bizible_id, touchpoint_type, medium,
        marketing_channel, marketing_subchannel, touchpoint_source, campaign, ad_content, ad_id, keyword,
        landing_page, landing_page_raw, referrer_page, form_url, touchpoint_at, match_status,
        seconds_after_session_start, is_first_touch, is_lead_creation, true as is_conversion
    from positioned_conversions

    union all

    select
        touchpoint_id, touchpoint_origin, task_id, event_id, session_id, bizible_id, touchpoint_type, medium,
        marketing_channel, marketing_subchannel, touchpoint_source, campaign, ad_content, ad_id, keyword,
        landing_page, landing_page_raw, referrer_page, form_url, touchpoint_at, match_status,
        seconds_after_session_start, is_first_touch, is_lead_creation, false as is_conversion
    from first_visits

),

final as (

    select
        touchpoint_id,
        touchpoint_origin,
        task_id,
        event_id,
        session_id,
        bizible_id,
        touchpoint_type,
        medium,
        marketing_channel,
        marketing_subchannel,
        touchpoint_source,
        campaign,
        ad_content,
        ad_id,
        keyword,
        landing_page,
        landing_page_raw,
        referrer_page,
        form_url,
        touchpoint_at,
        case
            when is_first_touch and is_lead_creation then 'FT, LC'
            when is_first_touch and is_conversion then 'FT, Post LC'
            when is_first_touch then 'FT'
            when is_lead_creation then 'LC'
            else 'Post LC'
        end as touchpoint_position,
        is_first_touch,
        is_lead_creation,
        match_status,
        seconds_after_session_start
    from all_touchpoints

)

select * from final
