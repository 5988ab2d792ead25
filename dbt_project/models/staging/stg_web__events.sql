{#- Web events, one row per event id, with the BizibleId normalised and the URL pieces the
    session rules need: utm_* values, ad click ids and the external referrer. -#}

with source as (

    select * from {{ calltrail.lake_source('web_events') }}

),

typed as (

    {#- Ingestion guarantees one row per event_id across the lake (tested below as unique), and
        a valid BizibleId on every row. -#}
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
        {{ calltrail.lake_loaded_at() }} as loaded_at
    from source

),

parsed as (

    {#- Every URL goes through the regular expressions: wrapped in a CASE that skips URLs without
        a query string, DuckDB ran them slower (make bench). An empty referrer is null by now. -#}
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
        loaded_at,
        {{ calltrail.url_source_fields('page_url', 'referrer_url') }}
    from typed

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
        {{ calltrail.external_referrer_host('page_host', 'referrer_host_any') }} as external_referrer_host,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_content,
        utm_term,
        gclid,
        msclkid,
        fbclid,
        loaded_at
    from parsed

)

select * from final
