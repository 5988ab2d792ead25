{#- Web events, one row per event id, with the BizibleId normalised and the URL pieces the
    session rules need: utm_* values, ad click ids and the external referrer. -#}

with source as (

    select * from {{ source('lake', 'web_events') }}

),

typed as (

    select
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(bizible_id as {{ dbt.type_string() }}) as bizible_id_raw,
        {{ calltrail.normalise_bizible_id('cast(bizible_id as ' ~ dbt.type_string() ~ ')') }} as bizible_id,
        cast(event_type as {{ dbt.type_string() }}) as event_type,
        cast(occurred_at as {{ dbt.type_timestamp() }}) as occurred_at,
        cast(page_url as {{ dbt.type_string() }}) as page_url,
        nullif(cast(referrer_url as {{ dbt.type_string() }}), '') as referrer_url,
        cast(email as {{ dbt.type_string() }}) as email,
        cast(form_url as {{ dbt.type_string() }}) as form_url,
        row_number() over (partition by event_id order by occurred_at) as copy_number
    from source

),

parsed as (

    select
        event_id,
        bizible_id_raw,
        bizible_id,
        event_type,
        occurred_at,
        page_url,
        referrer_url,
        email,
        form_url,
        {{ calltrail.url_host('page_url') }} as page_host,
        {{ calltrail.url_host('referrer_url') }} as referrer_host_any,
        {{ calltrail.url_param('page_url', 'utm_source') }} as utm_source,
        {{ calltrail.url_param('page_url', 'utm_medium') }} as utm_medium,
        {{ calltrail.url_param('page_url', 'utm_campaign') }} as utm_campaign,
        {{ calltrail.url_param('page_url', 'utm_content') }} as utm_content,
        {{ calltrail.url_param('page_url', 'utm_term') }} as utm_term,
        {{ calltrail.url_param('page_url', 'gclid') }} as gclid,
        {{ calltrail.url_param('page_url', 'msclkid') }} as msclkid,
        {{ calltrail.url_param('page_url', 'fbclid') }} as fbclid
    from typed
    where copy_number = 1
      and {{ calltrail.regexp_matches('bizible_id', "'^[0-9a-f]{32}$'") }}

),

final as (

    select
        event_id,
        bizible_id_raw,
        bizible_id,
        event_type,
        occurred_at,
        page_url,
        referrer_url,
        email,
        form_url,
        page_host,
        case
            when referrer_host_any is not null
             and referrer_host_any <> coalesce(page_host, '')
                then referrer_host_any
        end as external_referrer_host,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_content,
        utm_term,
        gclid,
        msclkid,
        fbclid
    from parsed

)

select * from final
