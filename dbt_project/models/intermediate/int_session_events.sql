{#- Web events with the session they belong to (DOMAIN.md, Web sessions).

    A new session starts at a visitor's first event, at an event more than
    calltrail__session_inactivity_minutes after the previous one (exactly that long does not
    split), and at a page view that brings a source whose signature differs from the current
    session's. A page view brings a source when it has a utm_* value, an ad click id or an external
    referrer; its signature is those values. The current session's signature is the signature of
    the latest event that started a block or brought a source, so it can be found with window
    functions alone. Form submits split only on inactivity. -#}

with events as (

    select * from {{ ref('stg_web__events') }}

),

ordered as (

    select
        events.*,
        row_number() over (
            partition by bizible_id
            order by occurred_at, case when event_type = 'page_view' then 0 else 1 end, event_id
        ) as event_seq,
        (
            event_type = 'page_view'
            and (
                utm_source is not null or utm_medium is not null or utm_campaign is not null
                or utm_content is not null or utm_term is not null
                or gclid is not null or msclkid is not null or fbclid is not null
                or external_referrer_host is not null
            )
        ) as brings_source
    from events

),

signed as (

    select
        ordered.*,
        case
            when brings_source then {{ dbt.concat([
                "coalesce(utm_source, '')", "'|'", "coalesce(utm_medium, '')", "'|'",
                "coalesce(utm_campaign, '')", "'|'", "coalesce(utm_content, '')", "'|'",
                "coalesce(utm_term, '')", "'|'", "coalesce(gclid, '')", "'|'",
                "coalesce(msclkid, '')", "'|'", "coalesce(fbclid, '')", "'|'",
                "coalesce(external_referrer_host, '')"]) }}
            else ''
        end as source_signature,
        lag(occurred_at) over (partition by bizible_id order by event_seq) as previous_event_at
    from ordered

),

gaps as (

    select
        signed.*,
        (
            previous_event_at is null
            or occurred_at > {{ dbt.dateadd('minute', var('calltrail__session_inactivity_minutes'), 'previous_event_at') }}
        ) as starts_after_gap
    from signed

),

anchors as (

    select
        bizible_id,
        event_seq,
        lag(source_signature) over (partition by bizible_id order by event_seq) as previous_anchor_signature
    from gaps
    where starts_after_gap or brings_source

),

starts as (

    select
        gaps.*,
        (
            gaps.starts_after_gap
            or (gaps.brings_source and gaps.source_signature <> coalesce(anchors.previous_anchor_signature, ''))
        ) as starts_session
    from gaps
    left join anchors
        on gaps.bizible_id = anchors.bizible_id
       and gaps.event_seq = anchors.event_seq

),

numbered as (

    select
        starts.*,
        sum(case when starts_session then 1 else 0 end) over (
            partition by bizible_id order by event_seq rows between unbounded preceding and current row
        ) as session_number
    from starts

),

keyed as (

    select
        numbered.*,
        first_value(event_id) over (
            partition by bizible_id, session_number order by event_seq
            rows between unbounded preceding and unbounded following
        ) as session_first_event_id
    from numbered

),

final as (

    select
        {{ dbt.hash(dbt.concat(["bizible_id", "'|'", "session_first_event_id"])) }} as session_id,
        bizible_id,
        session_number,
        event_seq,
        event_id,
        event_type,
        occurred_at,
        page_url,
        referrer_url,
        email,
        form_url,
        page_host,
        external_referrer_host,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_content,
        utm_term,
        gclid,
        msclkid,
        fbclid,
        brings_source,
        starts_session
    from keyed

)

select * from final
